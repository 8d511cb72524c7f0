"""tickpipe: resilient, low-latency streaming market data over one multiplexed WebSocket."""

from __future__ import annotations

__version__ = "0.1.0"

from tickpipe.client import (
    BookView,
    Client,
    ClientConfig,
    ClientEvent,
    ClientStats,
    Order,
    SubscribeResult,
    TickerUpdate,
    TopOfBook,
    TradeUpdate,
)

__all__ = [
    "BookView",
    "Client",
    "ClientConfig",
    "ClientEvent",
    "ClientStats",
    "Order",
    "SubscribeResult",
    "TickerUpdate",
    "TopOfBook",
    "TradeUpdate",
    "__version__",
]
