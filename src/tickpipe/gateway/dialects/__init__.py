"""Venue dialects of the reference gateway: the same simulated markets in a venue's wire format.

``vts`` (the default) is the gateway's own VTS/1 (``tickpipe.gateway.session`` / ``rest``) and
has no module here. Every other dialect is one module built on :mod:`.base`:

- ``binance`` (:mod:`.binance`): Binance spot, encoded with ``tickpipe.venues.binance.codec``.
- ``okx`` (:mod:`.okx`): OKX v5 public market data, encoded with ``tickpipe.venues.okx.codec``.
- ``binance-usdm`` (:mod:`.binance_usdm`): Binance USD-M futures, the binance dialect with the
  USD-M spec.
- ``bybit`` (:mod:`.bybit`): Bybit v5 public spot and linear, with ``tickpipe.venues.bybit.codec``.
- ``kraken`` (:mod:`.kraken`): Kraken spot WebSocket v2, encoded with
  ``tickpipe.venues.kraken.codec``.
- ``coinbase`` (:mod:`.coinbase`): Coinbase Advanced Trade, ``tickpipe.venues.coinbase.codec``.

Pick one with ``GatewayConfig(dialect=...)`` / ``tickpipe gateway --dialect NAME``; its knobs
(``dialect_options``, ``--dialect-option NAME=VALUE``) are documented in docs/dialects.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tickpipe.errors import ConfigError

if TYPE_CHECKING:
    from tickpipe.gateway.dialects.base import Dialect
    from tickpipe.gateway.markets import MarketSpec
    from tickpipe.gateway.server import Gateway

DIALECTS = ("vts", "binance", "okx", "binance-usdm", "bybit", "kraken", "coinbase")
"""The names ``--dialect`` accepts."""


def dialect_for_venue(venue: str) -> str | None:
    """The dialect that serves the client venue ``venue`` (a venue's own name, except
    ``bybit-linear``: the ``bybit`` dialect serves spot and linear), or None."""
    name = "bybit" if venue == "bybit-linear" else venue
    return name if name in DIALECTS else None


def dialect_markets(name: str, markets: tuple[MarketSpec, ...]) -> tuple[MarketSpec, ...]:
    """The simulated markets renamed to the dialect's symbols (grids unchanged)."""
    if name == "vts":
        return markets
    if name == "binance":
        from tickpipe.gateway.dialects.binance import binance_markets

        return binance_markets(markets)
    if name == "okx":
        from tickpipe.gateway.dialects.okx import okx_markets

        return okx_markets(markets)
    if name == "binance-usdm":
        from tickpipe.gateway.dialects.binance_usdm import binance_usdm_markets

        return binance_usdm_markets(markets)
    if name == "bybit":
        from tickpipe.gateway.dialects.bybit import bybit_markets

        return bybit_markets(markets)
    if name == "kraken":
        from tickpipe.gateway.dialects.kraken import kraken_markets

        return kraken_markets(markets)
    if name == "coinbase":
        from tickpipe.gateway.dialects.coinbase import coinbase_markets

        return coinbase_markets(markets)
    raise ConfigError(f"dialect must be one of {', '.join(DIALECTS)}, got {name!r}")


def make_dialect(gw: Gateway) -> Dialect | None:
    """The dialect serving ``gw`` (None for ``vts``, served by the gateway itself)."""
    name = gw.config.dialect
    if name == "vts":
        return None
    if name == "binance":
        from tickpipe.gateway.dialects.binance import BinanceDialect

        return BinanceDialect(gw)
    if name == "okx":
        from tickpipe.gateway.dialects.okx import OkxDialect

        return OkxDialect(gw)
    if name == "binance-usdm":
        from tickpipe.gateway.dialects.binance_usdm import BinanceUsdmDialect

        return BinanceUsdmDialect(gw)
    if name == "bybit":
        from tickpipe.gateway.dialects.bybit import BybitDialect

        return BybitDialect(gw)
    if name == "kraken":
        from tickpipe.gateway.dialects.kraken import KrakenDialect

        return KrakenDialect(gw)
    if name == "coinbase":
        from tickpipe.gateway.dialects.coinbase import CoinbaseDialect

        return CoinbaseDialect(gw)
    raise ConfigError(f"dialect must be one of {', '.join(DIALECTS)}, got {name!r}")
