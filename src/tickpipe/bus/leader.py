"""Active-passive election of collectors (``tickpipe publish --group NAME``) on a JetStream
key-value bucket: one key per group, whose holder is the active collector.

Every ``lease_s / 3`` (the bucket's TTL is the lease, 3 s by default):

- the active renews: ``update(key, last=revision)``, revision-checked, so it can only extend
  its own lease. A renewal that finds another's revision makes it standby at once.
- a standby tries ``create(key)``, which succeeds only when the key is absent: expired (the
  active died or lost NATS), or deleted (the active stopped cleanly and released it).

Fencing by time: a lease won or renewed by a request sent at ``t`` (this process's monotonic
clock) ends for the server no earlier than ``t + lease_s``; the holder stops publishing at
``t + fence_fraction * lease_s`` (0.8) unless renewed by then, from a timer, whatever NATS is
doing. So two collectors never publish the same books at once, up to the clocks' drift over one
lease. A killed active is replaced within about ``lease_s + lease_s / 3`` (expiry, then the
standby's next try); one that releases its key on close within ``lease_s / 3``.

A request that timed out may still have succeeded: when a create or update is refused, the
key is read and, if it names this holder, its revision adopted (no needless failover).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable

import nats.errors as natserr
import nats.js.errors as jserr
from nats.js.kv import KeyValue

from tickpipe.errors import ConfigError

log = logging.getLogger("tickpipe.bus.leader")

FENCE_FRACTION = 0.8
_GROUP_RE = re.compile(r"^[-_A-Za-z0-9]{1,64}$")

# failures of one request: retried on the next tick (the fence timer guards the lease)
_TRANSIENT = (
    TimeoutError,
    natserr.Error,  # timeouts, no responders, connection closed or reconnecting, ...
    jserr.Error,
    OSError,
)


def check_group(group: str) -> str:
    """``--group``: 1-64 letters, digits, ``-`` or ``_`` (a key of the leader bucket)."""
    if not isinstance(group, str) or not _GROUP_RE.match(group):
        raise ConfigError(
            f"--group {group!r}: use 1-64 letters, digits, '-' or '_' (e.g. binance-a)"
        )
    return group


class Leadership:
    """One collector's side of the election of ``group`` in ``kv``; see the module doc.

    ``on_change(active)`` is called (synchronously, on the event loop) when this holder becomes
    active or stops being so. ``holder`` names it in the key's value (the collector id).
    ``lease_s``: the bucket's TTL. ``op_timeout_s`` (default ``lease_s / 3``): bound of each
    request.
    """

    def __init__(
        self,
        kv: KeyValue,
        group: str,
        holder: str,
        lease_s: float,
        on_change: Callable[[bool], None],
        *,
        fence_fraction: float = FENCE_FRACTION,
        op_timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_s > 0:
            raise ConfigError(f"lease_s must be > 0, got {lease_s!r}")
        if not 0 < fence_fraction < 1:
            raise ConfigError(f"fence_fraction must be in (0, 1), got {fence_fraction!r}")
        self.kv = kv
        self.group = check_group(group)
        self.holder = holder
        self.lease_s = lease_s
        self.on_change = on_change
        self.fence_fraction = fence_fraction
        self.op_timeout_s = op_timeout_s if op_timeout_s is not None else lease_s / 3
        self.clock = clock
        self.active = False
        self.revision: int | None = None
        self.fenced = 0  # times the lease ran out before a renewal
        self._fence: asyncio.TimerHandle | None = None
        self._value = json.dumps({"holder": holder}).encode()

    async def run(self) -> None:
        """Try (standby) or renew (active) every ``lease_s / 3``, until cancelled."""
        every = self.lease_s / 3
        while True:
            started = self.clock()
            await self.step()
            await asyncio.sleep(max(0.0, every - (self.clock() - started)))

    async def step(self) -> None:
        """One try or renewal."""
        sent = self.clock()
        try:
            rev = await self._write(self.revision if self.active else None)
        except jserr.KeyWrongLastSequenceError:
            own = await self._own_revision()
            if own is None:
                self._lost()
                return
            # ours: a request that timed out was stored; renew it (only a write extends it)
            sent = self.clock()
            try:
                rev = await self._write(own)
            except jserr.KeyWrongLastSequenceError:
                self._lost()
                return
            except _TRANSIENT as exc:
                log.debug("group %s: lease request failed: %r", self.group, exc)
                return
        except _TRANSIENT as exc:
            log.debug("group %s: lease request failed: %r", self.group, exc)
            return
        self.revision = rev
        self._arm(sent)
        if not self.active:
            self._set(True)

    async def _write(self, last: int | None) -> int:
        """Create the key (``last`` None) or update it from revision ``last``."""
        if last is None:
            return await asyncio.wait_for(
                self.kv.create(self.group, self._value), self.op_timeout_s
            )
        return await asyncio.wait_for(
            self.kv.update(self.group, self._value, last=last), self.op_timeout_s
        )

    def _lost(self) -> None:
        """Another collector holds the key."""
        if self.active:
            log.warning("group %s: the lease was taken by another collector", self.group)
            self._set(False)

    async def _own_revision(self) -> int | None:
        """The key's revision if it names this holder (a request that timed out but was
        stored), else None."""
        try:
            entry = await asyncio.wait_for(self.kv.get(self.group), self.op_timeout_s)
        except (*_TRANSIENT, ValueError):
            return None
        try:
            holder = json.loads(entry.value or b"{}").get("holder")
        except (ValueError, AttributeError):
            return None
        return entry.revision if holder == self.holder else None

    def _arm(self, sent: float) -> None:
        if self._fence is not None:
            self._fence.cancel()
        left = sent + self.fence_fraction * self.lease_s - self.clock()
        self._fence = asyncio.get_running_loop().call_later(max(0.0, left), self._expire)

    def _expire(self) -> None:
        self._fence = None
        if self.active:
            self.fenced += 1
            log.warning(
                "group %s: lease not renewed in time: stopped publishing (standby)", self.group
            )
            self._set(False)

    def _set(self, active: bool) -> None:
        self.active = active
        if not active:
            self.revision = None
            if self._fence is not None:
                self._fence.cancel()
                self._fence = None
        self.on_change(active)

    async def release(self) -> None:
        """Stop being active and delete the key (revision-checked, bounded by
        ``op_timeout_s``) so a standby takes over at its next try."""
        if self._fence is not None:
            self._fence.cancel()
            self._fence = None
        if not self.active:
            return
        rev = self.revision
        self.active = False
        self.revision = None
        self.on_change(False)
        with contextlib.suppress(*_TRANSIENT):
            await asyncio.wait_for(self.kv.delete(self.group, last=rev), self.op_timeout_s)

    def cancel(self) -> None:
        """Forget the fence timer (closing without release: the lease just runs out)."""
        if self._fence is not None:
            self._fence.cancel()
            self._fence = None
