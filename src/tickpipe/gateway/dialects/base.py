"""The seam between the hub and a venue dialect, and the parts every dialect shares.

The hub (``tickpipe.gateway.hub``) owns the markets, their update ids and the truth history. With
a dialect set (``hub.dialect``), each market step's published changes go to the dialect instead
of the VTS/1 channels:

- :meth:`MarketSink.on_book` — one orderbook update: ``update_id`` is the channel's seq (one per
  step that changed the book, contiguous per symbol, the id ``GET /admin/book/{symbol}?seq=N``
  answers for), ``bids``/``asks`` map price units -> new size units (0 = removed);
- :meth:`MarketSink.on_trade` — one print, ``trade_id`` contiguous per symbol.

The dialect turns them into ``protocol.normalised`` values, encodes them with its venue's codec
(``tickpipe.venues.<name>.codec``: the client decodes with the same one), batches them as the
venue does (Binance: one diff event per 100 ms), applies the frame faults, and fans out to its
own connections. The gateway gives the dialect its HTTP routes, start/stop, the connection
faults (``disconnect``, ``stall``, ``stop_pings``) and a ``stats`` block.

Shared helpers here: :func:`parse_options` (typed ``NAME=VALUE`` knobs into a frozen dataclass)
and :class:`IncomingRate` (a sliding one-second window of a connection's incoming messages).
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import web

from tickpipe.errors import ConfigError

if TYPE_CHECKING:
    from tickpipe.gateway.hub import Market
    from tickpipe.gateway.simulator import SimTrade


class MarketSink(Protocol):
    """What the hub calls for each published change (see the module docstring)."""

    def on_book(
        self, market: Market, update_id: int, bids: dict[int, int], asks: dict[int, int]
    ) -> None: ...

    def on_trade(self, market: Market, trade_id: int, trade: SimTrade) -> None: ...


class Dialect(MarketSink, Protocol):
    """A venue dialect as the gateway drives it."""

    name: str

    def routes(self) -> list[web.RouteDef]: ...

    def base_stream_url(self, host: str, port: int) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def trigger(self, fault: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Handle ``fault`` if it is the dialect's to handle (connection faults), refuse with a
        ConfigError one that does not apply to the venue; None = the gateway handles it."""
        ...

    def stats(self) -> dict[str, Any]: ...


T = TypeVar("T")


def parse_options(cls: type[T], pairs: Sequence[tuple[str, str | float | int]], what: str) -> T:
    """``cls`` (a frozen dataclass of int/float knobs) with ``pairs`` applied over its defaults;
    ConfigError names an unknown knob or a value that is not a positive number."""
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for name, raw in pairs:
        f = known.get(name)
        if f is None:
            raise ConfigError(f"{what}: unknown option {name!r}; known: {', '.join(sorted(known))}")
        kind = int if f.type in (int, "int") else float
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{what}: option {name} must be {'an integer' if kind is int else 'a number'}, "
                f"got {raw!r}"
            ) from None
        if not value > 0 or value != value or value == float("inf"):
            raise ConfigError(f"{what}: option {name} must be > 0 and finite, got {raw!r}")
        values[name] = value
    return cls(**values)


class IncomingRate:
    """Messages a connection sent in the last second (a sliding window): :meth:`admit` is False
    once more than ``limit`` arrived within one second."""

    __slots__ = ("limit", "times")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: deque[float] = deque()

    def admit(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        q = self.times
        while q and now - q[0] >= 1.0:
            q.popleft()
        q.append(now)
        return len(q) <= self.limit
