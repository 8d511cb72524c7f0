"""Dashboard keys -> gateway faults, through the reference gateway's admin API.

Each :class:`FaultAction` is one key on the dashboard, one ``--inject NAME@SECONDS`` name, and
the admin request(s) that cause it (shapes: ``docs/protocol.md``, "Reference gateway: admin
API"). :class:`AdminClient` sends them with the ``X-Admin-Token`` header and returns a one-line
result for the dashboard's notice line; it never raises for an HTTP or network failure (the
demo must survive a gateway that is down), only for a programming error.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tickpipe.errors import ConfigError

JsonObj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AdminRequest:
    method: str
    path: str
    body: JsonObj | None = None


@dataclass(frozen=True, slots=True)
class FaultAction:
    """One injectable fault: its key, its name (for ``--inject``), what it shows, how to ask."""

    key: str
    name: str
    label: str
    requests: tuple[AdminRequest, ...] = field(default_factory=tuple)
    expect: str = ""  # what the viewer should see next (shown in the notice line)
    short: str = ""  # the label in the on-screen key legend (default: ``label``)
    undo_after_s: float = 0.0  # > 0: settings it changes are restored this much later

    @property
    def legend(self) -> str:
        return self.short or self.label


TARGET = "{channel}"  # replaced by the order book channel a frame fault is aimed at
TARGET_SYMBOL = "{symbol}"  # replaced by that channel's symbol (snapshot faults)


def _trigger(fault: str, **params: Any) -> AdminRequest:
    return AdminRequest("POST", "/admin/trigger", {"fault": fault, **params})


def _settings(**patch: Any) -> AdminRequest:
    return AdminRequest("POST", "/admin/faults", patch)


FAULT_ACTIONS: tuple[FaultAction, ...] = (
    FaultAction(
        "d",
        "disconnect",
        "disconnect (no close frame)",
        (_trigger("disconnect", close_frame=False),),
        "books go stale, orders cancelled, backoff, reconnect, re-seed",
        short="disconnect",
    ),
    FaultAction(
        "c",
        "close",
        "clean close (close frame)",
        (_trigger("disconnect", close_frame=True),),
        "closed: stale, orders cancelled, reconnect, re-seed",
        short="close",
    ),
    FaultAction(
        "g",
        "drop_delta",
        "drop one delta (gap)",
        (_trigger("drop_delta", channel=TARGET, count=1),),
        "a seq gap on {channel}: that book resyncs, the others stay live",
        short="gap",
    ),
    FaultAction(
        "x",
        "bad_checksum",
        "bad checksum on one delta",
        (_trigger("bad_checksum", channel=TARGET, count=1),),
        "a CRC-32 mismatch on {channel}: it resyncs",
        short="checksum",
    ),
    FaultAction(
        "m",
        "malformed_frame",
        "malformed frame",
        (_trigger("malformed_frame", channel=TARGET, count=1),),
        "a frame that does not decode on {channel}: reported, book resyncs",
        short="malformed",
    ),
    FaultAction(
        "e",
        "snapshot_error",
        "snapshot errors (503 twice, then a gap)",
        (
            _trigger("snapshot_error", symbol=TARGET_SYMBOL, count=2),
            _trigger("drop_delta", channel=TARGET, count=1),
        ),
        "{channel} resyncs; its snapshot fails twice (503) and is retried with backoff",
        short="snap 503",
    ),
    FaultAction(
        "o",
        "stale_snapshot",
        "stale snapshot (too old to bridge, then a gap)",
        (
            _trigger("stale_snapshot", symbol=TARGET_SYMBOL, count=1),
            _trigger("drop_delta", channel=TARGET, count=1),
        ),
        "{channel} resyncs; the first snapshot cannot bridge the stream and is fetched again",
        short="stale snap",
    ),
    FaultAction(
        "p",
        "stop_pings",
        "stop pings (heartbeat loss)",
        (_trigger("stop_pings", duration_ms=60_000),),
        "no ping for the heartbeat timeout: the client drops the link and reconnects",
        short="no pings",
    ),
    FaultAction(
        "s",
        "stall",
        "stall the socket (TCP open, silent)",
        (_trigger("stall", duration_ms=60_000),),
        "nothing arrives, not even pings: heartbeat loss, then reconnect",
        short="stall",
    ),
    FaultAction(
        "r",
        "snapshot_rate_limit",
        "snapshot 429s (limit 1/s + reconnect)",
        (_settings(snapshot_rate_limit=1), _trigger("disconnect", close_frame=False)),
        "every book re-seeds at once and meets 429 Retry-After; the client waits it out",
        short="snap 429",
        undo_after_s=10.0,
    ),
)
QUIT_KEYS = ("q", "Q")
ACTIONS_BY_KEY = {a.key: a for a in FAULT_ACTIONS}
ACTIONS_BY_NAME = {a.name: a for a in FAULT_ACTIONS}


@dataclass(frozen=True, slots=True, order=True)
class ScheduledFault:
    """``--inject NAME@SECONDS``: inject ``action`` ``at_s`` seconds after the demo started."""

    at_s: float
    name: str

    @property
    def action(self) -> FaultAction:
        return ACTIONS_BY_NAME[self.name]


def parse_inject(text: str) -> ScheduledFault:
    """Parse ``NAME@SECONDS`` (for example ``disconnect@5``); ConfigError says what is wrong."""
    name, at, secs = text.partition("@")
    name = name.strip()
    if name not in ACTIONS_BY_NAME:
        known = ", ".join(ACTIONS_BY_NAME)
        raise ConfigError(f"--inject {text!r}: unknown fault {name!r}; known: {known}")
    if not at:
        raise ConfigError(f"--inject {text!r}: expected NAME@SECONDS, e.g. {name}@5")
    try:
        at_s = float(secs)
    except ValueError:
        raise ConfigError(f"--inject {text!r}: {secs!r} is not a number of seconds") from None
    if not at_s >= 0 or at_s != at_s or at_s == float("inf"):
        raise ConfigError(f"--inject {text!r}: seconds must be a finite number >= 0")
    return ScheduledFault(at_s, name)


class AdminClient:
    """Sends fault requests to ``admin_url`` with ``X-Admin-Token: token``.

    - ``timeout_s`` (3 s): per request; the gateway answers at once, so a slow answer means it
      is down or stalled, and the dashboard must not wait on it.
    """

    def __init__(self, admin_url: str, token: str | None, *, timeout_s: float = 3.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._undo_pending: dict[asyncio.Task[None], list[AdminRequest]] = {}

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for task, undo in list(self._undo_pending.items()):  # put settings back first
            task.cancel()
            for req in undo:
                await self.send(req)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def inject(self, action: FaultAction, channel: str = "") -> str:
        """Send the action's requests in order (frame faults aimed at ``channel``). A setting
        the action changes (``POST /admin/faults``) is put back as it was ``undo_after_s``
        later (or at :meth:`close`). Returns a one-line result; never raises for I/O.
        """
        undo: list[AdminRequest] = []
        for req in action.requests:
            if action.undo_after_s and req.path == "/admin/faults" and req.body:
                before = await self._current_settings(list(req.body))
                if before is None:
                    return f"{action.name}: admin API unreachable or refused GET /admin/faults"
                undo.append(AdminRequest("POST", "/admin/faults", before))
            ok, detail = await self.send(_aimed(req, channel))
            if not ok:
                return f"{action.name}: admin API refused: {detail}"
        if undo:
            task = asyncio.create_task(self._undo_later(action, undo), name=f"undo-{action.name}")
            self._undo_pending[task] = undo
            task.add_done_callback(self._forget)
        expect = action.expect.replace(TARGET, channel or "a book")
        return f"injected {action.name}: {expect}"

    async def _current_settings(self, names: list[str]) -> JsonObj | None:
        ok, text = await self.send(AdminRequest("GET", "/admin/faults"))
        if not ok:
            return None
        try:
            settings = json.loads(text)["settings"]
            return {n: settings[n] for n in names}
        except (ValueError, KeyError, TypeError):
            return None

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._undo_pending.pop(task, None)

    async def _undo_later(self, action: FaultAction, undo: list[AdminRequest]) -> None:
        await asyncio.sleep(action.undo_after_s)
        for req in undo:
            await self.send(req)

    async def send(self, req: AdminRequest) -> tuple[bool, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        headers = {"X-Admin-Token": self.token} if self.token else {}
        try:
            async with self._session.request(
                req.method,
                self.admin_url + req.path,
                json=req.body,
                headers=headers,
            ) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    return False, f"HTTP {resp.status} {_error_text(text)}"
                return True, text
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _aimed(req: AdminRequest, channel: str) -> AdminRequest:
    """``req`` with the ``{channel}`` and ``{symbol}`` placeholders filled in from ``channel``."""
    if req.body is None:
        return req
    fill = {TARGET: channel, TARGET_SYMBOL: channel.partition(":")[2]}
    body = {k: fill.get(v, v) if isinstance(v, str) else v for k, v in req.body.items()}
    return AdminRequest(req.method, req.path, body)


def aims_at_a_book(action: FaultAction) -> bool:
    """True when the action's requests name a book (frame or snapshot faults)."""
    return any(
        v in (TARGET, TARGET_SYMBOL) for r in action.requests for v in (r.body or {}).values()
    )


def _error_text(body: str) -> str:
    try:
        obj = json.loads(body)
    except ValueError:
        return body[:120]
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        err = obj["error"]
        return f"{err.get('code', '')}: {err.get('message', '')}"
    return body[:120]
