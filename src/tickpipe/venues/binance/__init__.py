"""Binance spot (``binance``) and USD-M futures (``binance-usdm``): one codec, two markets.

- :mod:`.endpoints` — URLs, paths, stream names, subscribe messages, heartbeat, sync rules
  (``SPOT``: Continuity.RANGE, ``USDM``: Continuity.LINK; both seeded over REST).
- :mod:`.codec` — frames and REST bodies <-> ``protocol.normalised`` values, both ways.
- :mod:`.limits` — documented request weights, snapshot costs, connection limits.

Binance defines no book checksum: integrity rests on the update ids alone.
"""
