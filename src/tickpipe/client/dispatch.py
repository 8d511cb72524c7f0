"""User code runs here, on its own task, fed from bounded queues: never on the read path.

The read path (``client/channels.py``) only *marks* things for the user:

- a book that changed is put in an ordered "dirty" set, one slot per book. However fast
  deltas arrive, a consumer sees the latest state of each book, and the memory is bounded
  by the number of books: book triggers *coalesce*, they never queue up;
- tickers, trades and state events go into one bounded ``deque`` (``data_queue_size``).
  When a consumer is so slow that it fills, the oldest items are dropped, counted
  (``Metrics.overflow_dropped``) and *reported* with an ``overflow`` event: never silent,
  and never pushed back into the socket (a slow strategy must not make books lag).

The dispatcher task drains them and calls the user's callbacks (plain functions or
coroutines; a coroutine is awaited, so it delays only later callbacks). A callback that
raises is counted (``Metrics.callback_errors``, and per callback in
:attr:`Dispatcher.callback_error_counts`) and the next item goes on. Its *first* error is logged
with the full traceback; later ones only as a one-line summary ("raised N more times") at most
every ``error_log_every_s`` (10 s) per callback, so a callback failing on every book update
cannot flood the log (a last summary is logged at close).

Book triggers (``on_book``, ``on_top_of_book``, :meth:`Dispatcher.stream` of kind ``book``)
fire only while that book is synced, checked at the moment of the call, and carry its seq:
a book that went stale or resyncing between the delta and the call does not fire.

Async iterators (:class:`Feed`) are bounded the same way (and ``book_updates()`` coalesces
per book, like the callbacks): each holds at most ``maxsize``
items, drops the oldest past it and yields an ``overflow`` event first when it did.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tickpipe.client.events import ClientEvent, Overflow
from tickpipe.client.metrics import Metrics
from tickpipe.protocol import frames

if TYPE_CHECKING:
    from tickpipe.client.views import BookView

log = logging.getLogger("tickpipe.client.dispatch")

T = TypeVar("T")
Callback = Callable[[Any], Any]
KINDS = ("book", "top_of_book", "ticker", "trade", "state")


@dataclass(frozen=True, slots=True)
class TickerUpdate:
    channel: str
    symbol: str
    seq: int
    ts: int
    bid: Decimal | None  # None where the venue's ticker has no best bid/ask (Bybit spot)
    bid_size: Decimal | None
    ask: Decimal | None
    ask_size: Decimal | None
    last: Decimal | None  # None where the venue's ticker has none (Binance bookTicker)
    volume: Decimal | None

    @classmethod
    def from_frame(cls, f: frames.Ticker) -> TickerUpdate:
        return cls(
            f.channel,
            f.channel.partition(":")[2],
            f.seq,
            f.ts,
            Decimal(f.bid),
            Decimal(f.bid_size),
            Decimal(f.ask),
            Decimal(f.ask_size),
            Decimal(f.last),
            Decimal(f.volume),
        )


@dataclass(frozen=True, slots=True)
class TradeUpdate:
    channel: str
    symbol: str
    seq: int
    ts: int
    id: str
    price: Decimal
    size: Decimal
    side: str

    @classmethod
    def from_frame(cls, f: frames.Trade) -> TradeUpdate:
        return cls(
            f.channel,
            f.channel.partition(":")[2],
            f.seq,
            f.ts,
            f.id,
            Decimal(f.price),
            Decimal(f.size),
            f.side,
        )


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """Best bid and ask of a synced book at ``seq`` (None for an empty side)."""

    channel: str
    symbol: str
    seq: int
    bid: tuple[Decimal, Decimal] | None
    ask: tuple[Decimal, Decimal] | None


@dataclass(slots=True)
class _CallbackErrors:
    """Errors of one registered callback (``fn`` is kept so that its id is not reused)."""

    name: str
    fn: Callback = field(repr=False)
    count: int = 0
    unlogged: int = 0  # errors since the last line logged about this callback
    last_log: float = 0.0
    last_error: str = ""


def _callback_name(kind: str, fn: Callback) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(type(fn), "__qualname__", "callback")
    return f"{kind}:{name}"


class Feed(Generic[T]):
    """A bounded async iterator. ``close()`` ends it; past ``maxsize`` the oldest are dropped."""

    def __init__(
        self,
        name: str,
        maxsize: int,
        on_close: Callable[[Feed[T]], None],
        key: Callable[[T], object] | None = None,
    ) -> None:
        self.name = name
        self.maxsize = maxsize
        self._key = key  # coalesce: an item whose key is already queued is not queued again
        self._queued: set[object] = set()
        self._items: deque[T] = deque()
        self._dropped = 0
        self.dropped_total = 0
        self._ready = asyncio.Event()
        self._closed = False
        self._on_close = on_close

    def put(self, item: T) -> None:
        if self._closed:
            return
        if self._key is not None:
            k = self._key(item)
            if k in self._queued:
                return  # a live view of it is already waiting: the consumer sees the latest
            self._queued.add(k)
        if len(self._items) >= self.maxsize:
            self._forget(self._items.popleft())
            self._dropped += 1
            self.dropped_total += 1
        self._items.append(item)
        self._ready.set()

    def _forget(self, item: T) -> T:
        if self._key is not None:
            self._queued.discard(self._key(item))
        return item

    def __len__(self) -> int:
        return len(self._items)

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> T | Overflow:
        while True:
            if self._dropped:
                n, self._dropped = self._dropped, 0
                return Overflow(queue=self.name, dropped=n)
            if self._items:
                return self._forget(self._items.popleft())
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    def get_nowait(self) -> T | Overflow | None:
        """The next item if one is ready (for tests and polling consumers)."""
        if self._dropped:
            n, self._dropped = self._dropped, 0
            return Overflow(queue=self.name, dropped=n)
        return self._forget(self._items.popleft()) if self._items else None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._ready.set()
            self._on_close(self)

    async def aclose(self) -> None:
        self.close()


class Dispatcher:
    """Owns the user-facing queues and the task that runs callbacks."""

    error_log_every_s = 10.0  # at most one summary line a callback per this many seconds

    def __init__(
        self,
        metrics: Metrics,
        data_queue_size: int,
        feed_size: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._errors: dict[tuple[str, int], _CallbackErrors] = {}
        self._data_queue_size = data_queue_size
        self._feed_size = feed_size
        self._callbacks: dict[str, list[Callback]] = {k: [] for k in KINDS}
        self._feeds: dict[str, list[Feed[Any]]] = {k: [] for k in (*KINDS, "events")}
        # the four lists book_changed reads on every applied delta, held directly (they are
        # only ever changed in place): no dict lookup on the hot path
        self._book_wanted = (
            self._callbacks["book"],
            self._callbacks["top_of_book"],
            self._feeds["book"],
            self._feeds["top_of_book"],
        )
        self._dirty: dict[str, BookView] = {}
        self._items: deque[tuple[str, Any]] = deque()
        self._dropped = 0
        self._last_top: dict[str, tuple[Any, Any]] = {}
        self._wake = asyncio.Event()
        self.dispatched = 0

    # -- registration ----------------------------------------------------------------------
    def add_callback(self, kind: str, fn: Callback) -> Callable[[], None]:
        """Register ``fn`` for ``kind``; returns a function that removes it."""
        if kind not in self._callbacks:
            raise ValueError(f"unknown callback kind {kind!r}; known: {', '.join(KINDS)}")
        self._callbacks[kind].append(fn)
        return lambda: self._callbacks[kind].remove(fn) if fn in self._callbacks[kind] else None

    def feed(self, kind: str, maxsize: int | None = None) -> Feed[Any]:
        """A new bounded async iterator of ``kind`` (``events`` or one of KINDS)."""
        if kind not in self._feeds:
            raise ValueError(f"unknown feed kind {kind!r}")
        key = (lambda v: v.channel) if kind == "book" else None  # live views only
        f: Feed[Any] = Feed(kind, maxsize or self._feed_size, self._feeds[kind].remove, key)
        self._feeds[kind].append(f)
        return f

    def close_feeds(self) -> None:
        for feeds in self._feeds.values():
            for f in list(feeds):
                f.close()

    @property
    def queue_depth(self) -> int:
        return len(self._items) + len(self._dirty)

    # -- inputs from the read path (O(1), never block, never call user code) ---------------
    def event(self, ev: ClientEvent) -> None:
        for f in self._feeds["events"]:
            f.put(ev)
        if self._callbacks["state"] or self._feeds["state"]:
            self._push(("state", ev))

    def book_changed(self, view: BookView) -> None:
        cb_book, cb_top, feed_book, feed_top = self._book_wanted
        if cb_book or cb_top or feed_book or feed_top:
            self._dirty[view.channel] = view
            self._wake.set()

    def book_lost(self, channel: str) -> None:
        """The book is no longer synced: drop its pending trigger and its last top."""
        self._dirty.pop(channel, None)
        self._last_top.pop(channel, None)

    def ticker(self, f: frames.Ticker | TickerUpdate) -> None:
        if self._callbacks["ticker"] or self._feeds["ticker"]:
            self._push(("ticker", f))

    def trade(self, f: frames.Trade | TradeUpdate) -> None:
        if self._callbacks["trade"] or self._feeds["trade"]:
            self._push(("trade", f))

    def _push(self, item: tuple[str, Any]) -> None:
        items = self._items
        if len(items) >= self._data_queue_size:
            items.popleft()
            self._dropped += 1
            self._metrics.overflow_dropped += 1
        items.append(item)
        self._wake.set()

    # -- the task --------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()  # set again by anything queued while we drain
            await self._drain()

    async def _drain(self) -> None:
        """One pass serves what was queued when it began (items, then dirty books), so that
        neither a flood of trades nor books re-dirtied during a slow callback starve the other."""
        while self._items or self._dirty or self._dropped:
            if self._dropped:
                n, self._dropped = self._dropped, 0
                ev = Overflow(queue="callbacks", dropped=n)
                for f in self._feeds["events"]:
                    f.put(ev)
                await self._call("state", ev)
            for _ in range(len(self._items)):
                if not self._items:
                    break
                kind, obj = self._items.popleft()
                # venues hand over built updates; VTS/1 frames are converted here
                if kind == "ticker" and type(obj) is not TickerUpdate:
                    obj = TickerUpdate.from_frame(obj)
                elif kind == "trade" and type(obj) is not TradeUpdate:
                    obj = TradeUpdate.from_frame(obj)
                for f in self._feeds[kind]:
                    f.put(obj)
                await self._call(kind, obj)
            batch, self._dirty = self._dirty, {}
            for channel, view in batch.items():
                await self._book(channel, view)

    async def _book(self, channel: str, view: BookView) -> None:
        if not view.synced:  # checked at the moment of the call: never on a stale book
            return
        for f in self._feeds["book"]:
            f.put(view)
        await self._call("book", view)
        if (self._callbacks["top_of_book"] or self._feeds["top_of_book"]) and view.synced:
            top = view.top_of_book()
            key = (top.bid, top.ask)
            if self._last_top.get(channel) != key:
                self._last_top[channel] = key
                for f in self._feeds["top_of_book"]:
                    f.put(top)
                await self._call("top_of_book", top)

    async def _call(self, kind: str, obj: Any) -> None:
        for fn in list(self._callbacks[kind]):
            try:
                r = fn(obj)
                if inspect.isawaitable(r):
                    await r
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # user code: isolate it, never let it reach the client
                self._metrics.callback_errors += 1
                self._callback_failed(kind, fn, exc)
            self.dispatched += 1

    # -- callback errors: the first in full, then counted and summarised -------------------
    def _callback_failed(self, kind: str, fn: Callback, exc: Exception) -> None:
        now = self._clock()
        key = (kind, id(fn))
        st = self._errors.get(key)
        if st is None:
            st = self._errors[key] = _CallbackErrors(_callback_name(kind, fn), fn, last_log=now)
            st.count = 1
            log.error(
                "%s callback raised (traceback logged once; further errors are counted in "
                "stats().callback_errors and summarised at most every %.0fs)",
                st.name,
                self.error_log_every_s,
                exc_info=exc,
            )
            return
        st.count += 1
        st.unlogged += 1
        st.last_error = f"{type(exc).__name__}: {exc}"[:200]
        if now - st.last_log >= self.error_log_every_s:
            self._summarise(st, now)

    def _summarise(self, st: _CallbackErrors, now: float) -> None:
        log.error(
            "%s callback raised %d more times in the last %.1fs (%d in all; last: %s)",
            st.name,
            st.unlogged,
            now - st.last_log,
            st.count,
            st.last_error,
        )
        st.unlogged = 0
        st.last_log = now

    def flush_error_summaries(self) -> None:
        """Log what was counted since the last summary (the client calls this at close)."""
        now = self._clock()
        for st in self._errors.values():
            if st.unlogged:
                self._summarise(st, now)

    @property
    def callback_error_counts(self) -> dict[str, int]:
        """Errors per callback, by ``kind:qualified name`` (summed when two share a name)."""
        out: dict[str, int] = {}
        for st in self._errors.values():
            out[st.name] = out.get(st.name, 0) + st.count
        return out
