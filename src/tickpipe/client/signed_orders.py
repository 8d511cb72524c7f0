"""Orders on a real venue: the shell around a venue's pure :class:`OrderCodec` (issue 17).

:class:`SignedOrders` is an :class:`~tickpipe.client.orders.OrderBackend`: it asks the codec
for a signed call, sends it (``RestClient.send_call``) and hands the answer back to the codec.
What it adds, the same for every venue:

- **Clock**: the venue's time (``codec.time_call``) is read before the first signed call and
  every ``clock_sync_every_s`` (300 s); our clock is corrected by the offset, measured at the
  middle of the round trip, so a drifting host never signs out of the venue's ``recvWindow``;
  an answer the codec reads as ``clock_skew`` (the venue refused the timestamp: our clock
  stepped) makes the next call read the venue's clock again.
- **Order rate**: a token bucket at the venue's ``orders_per_s`` / ``orders_burst``: a call
  waits for a token rather than being refused by the venue.
- **Credentials**: a :class:`CredentialsRejected` answer is fatal: remembered, and every later
  call raises it at once without a request (no retry loop against a wrong key). Until the
  venue has taken the key once (a signed answer decoded), signed calls go one at a time, so a
  wrong key costs exactly one refused request even when an order and the dead man's switch
  start together.
- **Duplicates**: a place the venue refuses as a duplicate client order id
  (:class:`DuplicateOrderError`: an earlier try went through but its answer was lost) is that
  earlier order: read back by client order id when the codec can (an optional
  ``get_order_by_client_id(creds, ts_ms, symbol, client_order_id)``), and returned when it is
  the same order (symbol, side, price, size); otherwise the refusal is raised.
- **Dead man's switch**: :meth:`arm_dead_man` arms (refreshes) the venue's own timer; the
  client refreshes it every ``codec.dead_man_refresh_s`` while the stream is healthy and stops
  when it goes blind, so orders die at the venue even when our network is what failed.
- **A repeated client order id**: a venue that refuses a client order id it already has (OKX
  51016) answers a place retry after a lost answer with
  :class:`~tickpipe.errors.DuplicateOrderError`; when the codec can look an order up by its
  client order id (an optional ``find_by_client_id(creds, ts_ms, symbol, client_order_id)``),
  the shell does, and returns that order: one order however many tries (one more request).
- **Cancel all**: a codec without a one-call cancel-all for the scope (``cancel_all`` None:
  Coinbase, OKX spot, Kraken with a symbol, Binance spot without one) gets the key's open
  orders listed and cancelled one by one.
- **Nonces** (a codec with ``serial_nonce`` True: Kraken, whose nonce is ``ts_ms`` and must
  rise with every call of a key): calls are sent one at a time, each with a ``ts_ms`` above the
  last one's, so two calls in one millisecond, or two in flight at once, never present Kraken
  with a nonce it must refuse. Costs: a call waits for the one before it to be answered.
- Answers that do not say it (Kraken's CancelOrder answers a count): the order id asked for is
  filled in; venues that list every order (Kraken's OpenOrders has no pair filter) are
  filtered to the symbol asked for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from tickpipe.client.rest import RestClient
from tickpipe.client.snapshots import TokenBucket
from tickpipe.errors import (
    CredentialsRejected,
    DuplicateOrderError,
    RestError,
    UnknownOrderError,
)
from tickpipe.venues.trading import Credentials, HttpCall, NewOrder, Order, OrderCodec

CLOCK_SYNC_EVERY_S = 300.0
CLOCK_SKEW = "clock_skew"  # a codec's RestError code: the venue refused the request's timestamp
log = logging.getLogger("tickpipe.client.signed_orders")
T = TypeVar("T")


class SignedOrders:
    def __init__(
        self,
        rest: RestClient,
        codec: OrderCodec,
        creds: Credentials,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self._rest = rest
        self.codec = codec
        self._creds = creds
        self._clock = clock
        self._wall_ms = wall_ms
        self.offset_ms = 0  # venue clock - ours
        self._synced_at: float | None = None
        self._bucket = TokenBucket(codec.orders_per_s, codec.orders_burst, clock())
        self._rejected: CredentialsRejected | None = None
        self.calls = 0
        self.dead_man_armed = 0
        # a venue whose nonce is ts_ms (Kraken): one call at a time, ts strictly increasing
        self._serial = asyncio.Lock() if getattr(codec, "serial_nonce", False) else None
        self._last_ts = 0
        # one call at a time, too, until the venue has taken the key once (_key_ok): a wrong
        # key is then one refused request, not one per call already in flight
        self._unproven = asyncio.Lock()
        self._key_ok = False

    # -- the venue's clock ----------------------------------------------------------------------
    async def sync_clock(self) -> None:
        call = self.codec.time_call()
        if call is None:
            return
        t0 = self._wall_ms()
        status, body = await self._rest.send_call(call)
        t1 = self._wall_ms()
        venue_ms = self.codec.decode_time(status, body)
        self.offset_ms = venue_ms - (t0 + t1) // 2
        self._synced_at = self._clock()

    async def _ts(self) -> int:
        if self._synced_at is None or self._clock() - self._synced_at > CLOCK_SYNC_EVERY_S:
            await self.sync_clock()
        return self._wall_ms() + self.offset_ms

    async def _send(self, build: Callable[[int], HttpCall | None]) -> tuple[int, bytes] | None:
        if self._rejected is not None:
            raise self._rejected
        while not self._bucket.take(self._clock()):
            await asyncio.sleep(self._bucket.wait_time(self._clock()))
        if self._serial is None and self._key_ok:
            call = build(await self._ts())
            if call is None:
                return None
            self.calls += 1
            return await self._rest.send_call(call)
        # the caller decodes the answer (and remembers a refused key) before a waiter runs
        async with self._serial or self._unproven:
            if self._rejected is not None:  # the call before this one found the key refused
                raise self._rejected
            ts = max(await self._ts(), self._last_ts + 1)
            call = build(ts)
            if call is None:
                return None
            self._last_ts = ts
            self.calls += 1
            return await self._rest.send_call(call)

    @property
    def rejected(self) -> CredentialsRejected | None:
        """The venue refused the key (every call now raises this at once), or None."""
        return self._rejected

    def _remember(self, exc: CredentialsRejected) -> None:
        self._rejected = exc

    # -- OrderBackend -----------------------------------------------------------------------------
    async def place(self, order: NewOrder) -> Order:
        got = await self._send(lambda ts: self.codec.place(self._creds, ts, order))
        assert got is not None
        try:
            return self._decode(lambda: self.codec.decode_order(got[0], got[1], order))
        except DuplicateOrderError as exc:
            found = await self._earlier_try(order)
            if found is None:
                raise
            log.info(
                "place %s: the venue already has it (%s): an earlier try went through",
                order.client_order_id,
                exc.message,
            )
            return found

    async def _earlier_try(self, order: NewOrder) -> Order | None:
        """The open order placed under ``order``'s client order id, when the codec can read it
        back and it is the same order; else None."""
        find = getattr(self.codec, "get_order_by_client_id", None) or getattr(
            self.codec, "find_by_client_id", None
        )
        if find is None:
            return None
        got = await self._send(
            lambda ts: find(self._creds, ts, order.symbol, order.client_order_id)
        )
        assert got is not None
        found = self._decode(lambda: self.codec.decode_order(got[0], got[1], order))
        try:
            same = (
                found.symbol == order.symbol
                and found.side == order.side
                and Decimal(found.price) == Decimal(order.price)
                and Decimal(found.size) == Decimal(order.size)
            )
        except InvalidOperation:
            same = False
        return found if same else None

    async def open_orders(self, symbol: str | None) -> list[Order]:
        got = await self._send(lambda ts: self.codec.open_orders(self._creds, ts, symbol))
        assert got is not None
        orders = self._decode(lambda: self.codec.decode_orders(*got))
        return orders if symbol is None else [o for o in orders if o.symbol == symbol]

    async def get(self, order_id: str, symbol: str | None) -> Order:
        got = await self._send(lambda ts: self.codec.get_order(self._creds, ts, symbol, order_id))
        assert got is not None
        return self._decode(lambda: self.codec.decode_order(got[0], got[1], None))

    async def cancel(self, order_id: str, symbol: str | None) -> Order:
        got = await self._send(lambda ts: self.codec.cancel(self._creds, ts, symbol, order_id))
        assert got is not None
        order = self._decode(lambda: self.codec.decode_order(got[0], got[1], None))
        if not order.order_id:  # the answer names no order (Kraken's: a count)
            order = dataclasses.replace(
                order, order_id=order_id, symbol=order.symbol or symbol or ""
            )
        return order

    async def cancel_all(self, symbol: str | None) -> list[str]:
        """Every open order of the key (``symbol``'s only, when given). Where the codec builds
        no call for that scope, the key's open orders are listed and, per symbol, cancelled with
        the venue's per-symbol cancel-all where it has one (Binance: none across symbols; where
        its answer names no ids, those listed are returned), else one by one (Coinbase, OKX
        spot, Kraken with a symbol; an order already gone is skipped, any other failure raises
        as a failed cancel-all would)."""
        got = await self._send(lambda ts: self.codec.cancel_all(self._creds, ts, symbol))
        if got is not None:
            return self._decode(lambda: self.codec.decode_cancel_all(*got))
        listed = await self.open_orders(symbol)
        ids: list[str] = []
        for sym in sorted({o.symbol for o in listed}):
            mine = [o for o in listed if o.symbol == sym]
            per_symbol = None
            if symbol is None and sym:
                per_symbol = await self._send(
                    lambda ts, s=sym: self.codec.cancel_all(self._creds, ts, s)  # type: ignore[misc]
                )
            if per_symbol is not None:
                done = self._decode(
                    lambda a=per_symbol: self.codec.decode_cancel_all(*a)  # type: ignore[misc]
                )
                ids.extend(done or [o.order_id for o in mine])
                continue
            for order in mine:
                try:
                    cancelled = await self.cancel(order.order_id, order.symbol or symbol)
                except UnknownOrderError:
                    continue  # filled or cancelled meanwhile
                if cancelled.status == "cancelled":
                    ids.append(order.order_id)
        return ids

    async def arm_dead_man(self, timeout_s: float, symbol: str | None = None) -> bool:
        """Arm or refresh the venue's timer (``symbol``'s where it is per symbol); False where
        the venue has none."""
        got = await self._send(
            lambda ts: self.codec.arm_dead_man(self._creds, ts, timeout_s, symbol)
        )
        if got is None:
            return False
        self._decode(lambda: self.codec.decode_ack(*got))
        self.dead_man_armed += 1
        return True

    def _decode(self, fn: Callable[[], T]) -> T:
        try:
            out = fn()
            self._key_ok = True
            return out
        except CredentialsRejected as exc:
            self._remember(exc)
            raise
        except RestError as exc:
            if exc.code == CLOCK_SKEW:
                self._synced_at = None  # the venue refused our timestamp: re-read its clock
            raise
