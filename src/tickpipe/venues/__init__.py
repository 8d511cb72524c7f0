"""One folder per venue: its pure codec (frames and REST bodies -> ``protocol.normalised``
values), endpoints, limits and checksum. The purity test covers every module here except a
venue's I/O helpers, which live in the client shell (issue 14 builds it up venue by venue)."""
