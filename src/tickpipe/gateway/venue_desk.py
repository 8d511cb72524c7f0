"""What every dialect's order endpoints share (issue 17): the venue's dead man's switch, and
faults on the order path. Orders themselves live in the gateway's :class:`OrderDesk` (one per
gateway, keyed by API key; they rest and fill against the simulated market as VTS/1's do); a
dialect only speaks its venue's endpoints, signatures and answers over it.

- :class:`DeadManTimers`: a venue's own cancel-all timer, per API key and, where the venue
  arms it per symbol (Binance USD-M ``countdownCancelAll``), per symbol: :meth:`arm` with a
  timeout (0 disarms); when it runs out, every open order of the key (the symbol's) is
  cancelled (reason ``dead_man``). What the tests check "orders die at the venue even when the
  client cannot reach it" against.
- :class:`OrderFaults`: one-shot faults a dialect's order handlers consume
  (:meth:`take`): ``order_5xx`` (answer 503), ``order_timeout`` (no answer for
  ``duration_ms``), ``order_rate_limit`` (the venue's 429 with a wait), ``cancel_fails_once``
  (the next cancel answers 503). Triggered with ``Gateway.trigger(name, count=N)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from tickpipe.errors import ConfigError
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.orders import OrderDesk

ORDER_FAULTS = ("order_5xx", "order_timeout", "order_rate_limit", "cancel_fails_once")


class DeadManTimers:
    def __init__(self, desk: OrderDesk) -> None:
        self.desk = desk
        self._timers: dict[tuple[str, str | None], asyncio.TimerHandle] = {}
        self.armed = 0  # arm calls with a timeout
        self.fired = 0  # timers that ran out
        self.cancelled = 0  # orders they cancelled

    def arm(self, key: str, symbol: str | None, timeout_s: float) -> None:
        """(Re)start the timer of ``key`` (``symbol``'s, or the whole key's for None);
        ``timeout_s`` 0 disarms it."""
        old = self._timers.pop((key, symbol), None)
        if old is not None:
            old.cancel()
        if timeout_s <= 0:
            return
        self.armed += 1
        loop = asyncio.get_running_loop()
        self._timers[(key, symbol)] = loop.call_later(timeout_s, self._fire, key, symbol)

    def is_armed(self, key: str, symbol: str | None = None) -> bool:
        return (key, symbol) in self._timers

    def _fire(self, key: str, symbol: str | None) -> None:
        self._timers.pop((key, symbol), None)
        ids = self.desk.cancel_all(key, symbol, reason="dead_man")
        self.fired += 1
        self.cancelled += len(ids)
        log_event(
            "dead_man_fired", level=logging.WARNING, key=key, symbol=symbol, cancelled=len(ids)
        )

    def close(self) -> None:
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "armed_now": len(self._timers),
            "arm_calls": self.armed,
            "fired": self.fired,
            "cancelled": self.cancelled,
        }


class OrderFaults:
    """One-shot faults on the order path, taken by the dialects' order handlers in order."""

    def __init__(self) -> None:
        self._queue: deque[tuple[str, int]] = deque()  # (fault, duration_ms)
        self.taken: dict[str, int] = dict.fromkeys(ORDER_FAULTS, 0)

    def queue(self, fault: str, count: int = 1, duration_ms: int = 0) -> None:
        if fault not in ORDER_FAULTS:
            raise ConfigError(f"unknown order fault {fault!r}: one of {', '.join(ORDER_FAULTS)}")
        if not 1 <= count <= 10_000:
            raise ConfigError(f"{fault}: count must be 1..10000, got {count}")
        for _ in range(count):
            self._queue.append((fault, duration_ms))

    def take(self, call: str) -> tuple[str, int] | None:
        """The next fault for an order call (``place``, ``cancel``, ``list``, ``other``):
        ``cancel_fails_once`` only hits a cancel; the others hit any call."""
        for i, (fault, ms) in enumerate(self._queue):
            if fault == "cancel_fails_once" and call != "cancel":
                continue
            del self._queue[i]
            self.taken[fault] += 1
            return fault, ms
        return None

    def pending(self) -> int:
        return len(self._queue)
