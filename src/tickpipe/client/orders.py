"""Orders through the client, so that it knows which open orders are its own (VTS/1 section 7).

- ``place_limit_order`` sends a ``client_order_id`` (a fresh UUID unless given) and retries a
  call that got no answer or a 5xx with the *same* id: the gateway returns the first order on
  a repeat, so a retry never places a second one.
- The client remembers the orders it placed that may still be open. On going blind
  (section 8) :meth:`OrderManager.cancel_own` cancels them by id and reports which were and were
  not cancelled; the ones that failed are retried in the background (``order_retry`` backoff)
  until they succeed or the client closes.
- After :meth:`OrderManager.close` every call raises
  :class:`~tickpipe.errors.ClientClosedError` before any request (a place retry in flight
  stops there too): nothing is sent, no HTTP session is opened again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from tickpipe.client.rest import RestClient, is_retryable
from tickpipe.errors import ClientClosedError, ConfigError, RestError, UnknownOrderError
from tickpipe.protocol.backoff import Backoff, BackoffPolicy
from tickpipe.venues.trading import NewOrder, Order

__all__ = ["CancelReport", "Order", "OrderBackend", "OrderManager", "VtsOrders", "vts_order"]

log = logging.getLogger("tickpipe.client.orders")

PLACE_TRIES = 3


def vts_order(obj: Any) -> Order:
    """An order as VTS/1 describes it (a JSON object)."""
    if not isinstance(obj, dict) or "order_id" not in obj:
        raise RestError(200, "bad_body", f"not an order: {obj!r:.200}")
    return Order(
        order_id=str(obj["order_id"]),
        client_order_id=str(obj.get("client_order_id", "")),
        symbol=str(obj.get("symbol", "")),
        side=str(obj.get("side", "")),
        price=str(obj.get("price", "")),
        size=str(obj.get("size", "")),
        status=str(obj.get("status", "")),
        filled_size=str(obj.get("filled_size", "0")),
        raw=obj,
    )


class OrderBackend(Protocol):
    """Where orders go: VTS/1's REST API (:class:`VtsOrders`) or a venue's signed API
    (``client/signed_orders.py``). ``symbol`` is given where the client knows it (its own
    orders): venues whose cancel names the symbol need it."""

    async def place(self, order: NewOrder) -> Order: ...

    async def open_orders(self, symbol: str | None) -> list[Order]: ...

    async def get(self, order_id: str, symbol: str | None) -> Order: ...

    async def cancel(self, order_id: str, symbol: str | None) -> Order: ...

    async def cancel_all(self, symbol: str | None) -> list[str] | None:
        """The ids cancelled; None: the venue has no one-call cancel-all for this scope (OKX
        spot; a venue whose cancel-all needs a symbol, called without one): the manager then
        cancels each own order."""
        ...


class VtsOrders:
    """VTS/1 section 7 over the client's REST session."""

    def __init__(self, rest: RestClient) -> None:
        self._rest = rest

    async def place(self, order: NewOrder) -> Order:
        body = {
            "symbol": order.symbol,
            "side": order.side,
            "type": "limit",
            "price": order.price,
            "size": order.size,
            "client_order_id": order.client_order_id,
        }
        return vts_order(await self._rest.place_order(body))

    async def open_orders(self, symbol: str | None) -> list[Order]:
        body = await self._rest.list_orders("open", symbol)
        raw = body.get("orders", []) if isinstance(body, dict) else []
        return [vts_order(o) for o in raw]

    async def get(self, order_id: str, symbol: str | None) -> Order:
        return vts_order(await self._rest.get_order(order_id))

    async def cancel(self, order_id: str, symbol: str | None) -> Order:
        return vts_order(await self._rest.cancel_order(order_id))

    async def cancel_all(self, symbol: str | None) -> list[str]:
        body = await self._rest.cancel_all(symbol)
        return [str(i) for i in body.get("cancelled", [])] if isinstance(body, dict) else []


def _decimal_text(name: str, value: str | Decimal | int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise ConfigError(f"{name} must be a decimal string, Decimal or int, got {value!r}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{name} {value!r} is not a decimal number") from None
    if not d.is_finite() or d <= 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    return value if isinstance(value, str) else format(d, "f")


@dataclass(frozen=True, slots=True)
class CancelReport:
    cancelled: list[str]
    failed: list[str]
    scope: str


class OrderManager:
    """Places and cancels orders and remembers this client's own open ones."""

    def __init__(
        self, backend: OrderBackend, retry: BackoffPolicy, random: Callable[[], float]
    ) -> None:
        self._backend = backend
        self._retry = retry
        self._random = random
        self.own: dict[str, Order] = {}
        self._retry_task: asyncio.Task[None] | None = None
        self._to_retry: set[str] = set()
        self.on_background_report: Callable[[CancelReport], None] | None = None
        self.last_report: CancelReport | None = None
        self.closed = False

    def _check_open(self, what: str) -> None:
        if self.closed:
            raise ClientClosedError(f"client is closed: {what} refused")

    async def place_limit_order(
        self,
        symbol: str,
        side: str,
        price: str | Decimal | int,
        size: str | Decimal | int,
        client_order_id: str | None = None,
    ) -> Order:
        if side not in ("buy", "sell"):
            raise ConfigError(f"side must be 'buy' or 'sell', got {side!r}")
        if not isinstance(symbol, str) or not symbol:
            raise ConfigError(f"symbol must be a non-empty string, got {symbol!r}")
        new = NewOrder(
            symbol,
            side,
            _decimal_text("price", price),
            _decimal_text("size", size),
            client_order_id or uuid.uuid4().hex,
        )
        backoff = Backoff(self._retry, self._random)
        for attempt in range(PLACE_TRIES):
            self._check_open("place_limit_order")
            try:
                order = await self._backend.place(new)
                break
            except RestError as exc:
                if not is_retryable(exc) or attempt == PLACE_TRIES - 1:
                    raise
                delay = getattr(exc, "retry_after_s", None) or backoff.next_delay()
                log.warning(
                    "place %s failed (%s), retrying in %.2fs", new.client_order_id, exc, delay
                )
                await asyncio.sleep(delay)
        if order.is_open:
            self.own[order.order_id] = order
        return order

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        self._check_open("open_orders")
        return await self._backend.open_orders(symbol)

    async def get_order(self, order_id: str) -> Order:
        self._check_open("get_order")
        known = self.own.get(order_id)
        order = await self._backend.get(order_id, known.symbol if known else None)
        if not order.is_open:
            self.own.pop(order_id, None)  # filled (or cancelled by the gateway): not at risk
        return order

    async def cancel_order(self, order_id: str) -> Order:
        self._check_open("cancel_order")
        try:
            known = self.own.get(order_id)
            order = await self._backend.cancel(order_id, known.symbol if known else None)
        except UnknownOrderError:
            self.own.pop(order_id, None)
            self._to_retry.discard(order_id)
            raise
        self.own.pop(order_id, None)
        self._to_retry.discard(order_id)
        return order

    async def cancel_all_orders(self, symbol: str | None = None) -> list[str]:
        self._check_open("cancel_all_orders")
        ids = await self._backend.cancel_all(symbol)
        if ids is None:
            # no one-call cancel-all at this venue: cancel each own order; those that fail stay
            # own and are retried in the background
            targets = sorted(i for i, o in self.own.items() if symbol is None or o.symbol == symbol)
            cancelled, failed = await self._cancel_ids(targets)
            if failed:
                self._to_retry.update(failed)
                self._ensure_retry_task()
            return cancelled
        for oid in list(self.own):
            if symbol is None or self.own[oid].symbol == symbol:
                self.own.pop(oid, None)
                self._to_retry.discard(oid)
        return ids

    # -- going blind -----------------------------------------------------------------------
    async def cancel_own(self, scope: str, symbol: str | None = None) -> CancelReport:
        """Cancel this client's open orders now (only ``symbol``'s when given); failures are
        retried in the background."""
        if symbol is not None:
            ids = sorted(i for i, o in self.own.items() if o.symbol == symbol)
            cancelled, failed = await self._cancel_ids(ids)
            self._to_retry.update(failed)
            report = CancelReport(cancelled, failed, f"gap:{symbol}")
        elif scope == "key":
            try:
                before = set(self.own)
                ids = await self.cancel_all_orders()
                # failures of a venue without a one-call cancel-all (cancelled one by one)
                still = sorted(before & set(self.own) & self._to_retry)
                report = CancelReport(ids, still, scope)
            except (RestError, ClientClosedError) as exc:
                log.warning("cancel-all while blind failed: %s", exc)
                failed = sorted(self.own)
                self._to_retry.update(failed)
                report = CancelReport([], failed, scope)
        else:
            cancelled, failed = await self._cancel_ids(sorted(self.own))
            self._to_retry.update(failed)
            report = CancelReport(cancelled, failed, scope)
        self.last_report = report
        if self._to_retry:
            self._ensure_retry_task()
        return report

    async def _cancel_ids(self, ids: list[str]) -> tuple[list[str], list[str]]:
        results = await asyncio.gather(*(self._cancel_one(i) for i in ids))
        cancelled = [i for i, r in zip(ids, results, strict=True) if r == "cancelled"]
        failed = [i for i, r in zip(ids, results, strict=True) if r == "failed"]
        return cancelled, failed

    async def _cancel_one(self, order_id: str) -> str:
        """'cancelled', 'final' (already done or unknown: nothing to cancel) or 'failed'."""
        try:
            order = await self.cancel_order(order_id)
        except UnknownOrderError:
            return "final"
        except ClientClosedError:
            return "failed"
        except RestError as exc:
            log.warning("cancel %s failed: %s", order_id, exc)
            return "failed"
        return "cancelled" if order.status == "cancelled" else "final"

    def retry_cancel(self, order: Order) -> None:
        """Keep cancelling ``order`` in the background until it is done (or the client closes)."""
        self.own[order.order_id] = order
        self._to_retry.add(order.order_id)
        self._ensure_retry_task()

    def _ensure_retry_task(self) -> None:
        if self.closed:
            return
        if self._retry_task is None or self._retry_task.done():
            self._retry_task = asyncio.create_task(self._retry_loop(), name="order cancel retry")

    async def _retry_loop(self) -> None:
        backoff = Backoff(self._retry, self._random)
        while self._to_retry:
            await asyncio.sleep(backoff.next_delay())
            ids = sorted(self._to_retry)
            cancelled, failed = await self._cancel_ids(ids)
            self._to_retry = set(failed) & self._to_retry | (self._to_retry - set(ids))
            done = [i for i in ids if i not in failed]
            if done:
                report = CancelReport(cancelled, failed, "own")
                self.last_report = report
                if self.on_background_report is not None:
                    self.on_background_report(report)

    @property
    def pending_retries(self) -> int:
        return len(self._to_retry)

    async def close(self) -> None:
        self.closed = True
        t = self._retry_task
        if t is not None and not t.done():
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._retry_task = None
