"""The venues the client speaks, by their ``--venue`` name. Pure."""

from __future__ import annotations

from collections.abc import Callable

from tickpipe.errors import ConfigError
from tickpipe.venues.base import Venue
from tickpipe.venues.binance.adapter import BinanceSpotVenue, BinanceUsdmVenue
from tickpipe.venues.bybit.adapter import BybitLinearVenue, BybitVenue
from tickpipe.venues.coinbase.adapter import CoinbaseVenue
from tickpipe.venues.kraken.adapter import KrakenVenue
from tickpipe.venues.okx.adapter import OkxVenue
from tickpipe.venues.vts.adapter import Vts1Venue

VENUES: dict[str, Callable[[], Venue]] = {
    "vts": Vts1Venue,
    "binance": BinanceSpotVenue,
    "okx": OkxVenue,
    "binance-usdm": BinanceUsdmVenue,
    "bybit": BybitVenue,
    "bybit-linear": BybitLinearVenue,
    "kraken": KrakenVenue,
    "coinbase": CoinbaseVenue,
}


def venue_named(name: str) -> Venue:
    """A fresh adapter for ``name``; ConfigError listing the known names otherwise."""
    make = VENUES.get(name) if isinstance(name, str) else None
    if make is None:
        raise ConfigError(f"unknown venue {name!r}: one of {', '.join(VENUES)}")
    return make()
