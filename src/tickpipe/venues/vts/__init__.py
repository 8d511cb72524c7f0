"""VTS/1, tickpipe's own protocol (docs/protocol.md), as one venue among the others: the
frames and rules live in ``tickpipe.protocol.frames`` and ``protocol.sync`` (VTS1_RULES); the
adapter (:mod:`.adapter`) exposes them to the generic client shell."""
