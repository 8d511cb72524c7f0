"""tickpipe's reference VTS/1 gateway: a local venue to stream from, trade against and break.

    from tickpipe.gateway import Gateway, GatewayConfig
    async with Gateway(GatewayConfig(port=0, admin_port=0, seed=1, rate=50)) as gw: ...

Modules: ``config`` (knobs), ``markets`` + ``simulator`` (the market), ``history`` (truth at a
seq), ``hub`` (channels, fan-out), ``session`` (one stream connection), ``rest`` (REST),
``orders`` (the order desk), ``faults`` (fault settings and log), ``admin`` (admin API),
``server`` (wiring), ``testing`` (:class:`~tickpipe.gateway.testing.GatewayProcess`).
"""

from __future__ import annotations

from tickpipe.gateway.config import GatewayConfig
from tickpipe.gateway.faults import FaultSettings, load_profile
from tickpipe.gateway.server import Gateway

__all__ = ["FaultSettings", "Gateway", "GatewayConfig", "load_profile"]
