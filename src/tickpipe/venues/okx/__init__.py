"""OKX v5 public market data (venue ``okx``): pure codec, checksum, endpoints and limits.

- :mod:`.codec` — ``/ws/v5/public`` frames (``books``, ``trades``, ``tickers``, ``event``
  answers, ``pong``) and the REST bodies (``/api/v5/public/instruments``,
  ``/api/v5/market/books``) into ``protocol.normalised`` values; encoders for the gateway dialect.
- :mod:`.checksum` — OKX's signed CRC-32 of the top 25 levels, computed from an ``OrderBook``.
- :mod:`.endpoints` — URLs, channel <-> ``{"channel", "instId"}`` mapping, subscribe builders,
  heartbeat style, continuity (``LINK`` on ``prevSeqId``/``seqId``) and seeding (``IN_BAND``).
- :mod:`.limits` — documented connection, subscription and REST limits.
"""
