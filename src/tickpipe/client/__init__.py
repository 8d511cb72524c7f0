"""The streaming client (issue 8): one multiplexed socket, exact books, safe recovery."""

from tickpipe.client.client import BookStatus, Client, ClientStats
from tickpipe.client.config import ClientConfig
from tickpipe.client.dispatch import TickerUpdate, TopOfBook, TradeUpdate
from tickpipe.client.events import ClientEvent
from tickpipe.client.orders import Order
from tickpipe.client.supervisor import SubscribeResult
from tickpipe.client.views import BookView

__all__ = [
    "BookStatus",
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
]
