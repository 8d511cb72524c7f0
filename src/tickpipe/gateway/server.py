"""The reference VTS/1 gateway: wiring of the market, the stream, REST, orders, faults, admin.

    async with Gateway(GatewayConfig(port=0, admin_port=0, seed=1, rate=50)) as gw:
        gw.stream_url, gw.rest_url, gw.admin_url, gw.admin_token
        gw.true_book("AAPL", seq)       # the book as published at seq (tests compare with it)
        gw.set_faults({"drop_delta": 0.01}); gw.trigger("disconnect", close_frame=False)

One asyncio task runs the market (all instruments, ``rate`` steps a second, or flat out with
back-pressure when ``rate`` is 0); every connection has a reader, a writer and a pinger
(:mod:`tickpipe.gateway.session`); a housekeeping task rolls the ``disconnect`` dice each second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import secrets
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tickpipe.errors import ConfigError
from tickpipe.gateway.admin import Admin
from tickpipe.gateway.config import GatewayConfig, check_exposure, resolve_keys
from tickpipe.gateway.dialects import dialect_markets, make_dialect
from tickpipe.gateway.faults import (
    DELTA_FAULTS,
    Faults,
    FaultSettings,
)
from tickpipe.gateway.guard import ConnectionGuard, ReplayGuard, clip
from tickpipe.gateway.httputil import Handler, json_errors
from tickpipe.gateway.hub import Hub
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.orders import OrderDesk
from tickpipe.gateway.rest import Rest
from tickpipe.gateway.session import CLOSE_GOING_AWAY, CLOSE_POLICY, Session
from tickpipe.gateway.venue_desk import ORDER_FAULTS, DeadManTimers, OrderFaults
from tickpipe.protocol import frames
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument

if TYPE_CHECKING:
    from tickpipe.gateway.replay_source import ReplaySource

MARKET_TURN_S = 0.005
"""The market task yields to the event loop after at most this long of stepping (one step of
every instrument costs ~15 us), so signals, sockets and admin calls are served at any rate."""

STREAM_AUTH_FAILED = (
    "auth failed: unknown key, bad signature or a reused auth frame; sig must be hex "
    "HMAC-SHA256(secret, f'{ts}GET/v1/stream') with a fresh ts"
)


class Gateway:
    """A running (after :meth:`start`) reference gateway. See the module docstring."""

    def __init__(self, config: GatewayConfig | None = None) -> None:
        config = config or GatewayConfig()
        recording = None
        if config.replay_paths:  # the recording's markets (ConfigError naming a bad file)
            from tickpipe.gateway.replay_source import open_recording

            recording = open_recording(config.replay_paths)
            config = dataclasses.replace(config, markets=recording.specs)
        if config.dialect != "vts":  # the same markets under the venue's symbols
            config = dataclasses.replace(
                config, markets=dialect_markets(config.dialect, config.markets)
            )
        self.config = config
        self.keys, self.key_source = resolve_keys(config.keys)
        if config.dialect == "vts":  # a venue dialect has no key-authenticated endpoint
            check_exposure(config.host, self.keys, config.allow_public_demo_key)
        self.admin_token = config.admin_token or secrets.token_urlsafe(18)
        self.replay = ReplayGuard(config.max_skew_ms, config.replay_cache_entries)
        self.replays_refused = 0
        self.conn_guard = ConnectionGuard(
            config.max_connections_per_address,
            config.header_timeout_s,
            lambda event, **f: log_event(event, level=logging.WARNING, **f),
        )
        self.faults = Faults(config.faults, config.seed)
        self.replay_source: ReplaySource | None = None
        if recording is None:
            self.hub = Hub(config, self.faults)
        else:
            from tickpipe.gateway.replay_source import ReplaySource

            src = ReplaySource(recording, config.replay_speed, config.replay_loop)
            # recorded symbol -> served symbol (a dialect renames, in the same order)
            served = {
                i.symbol: m.instrument.symbol
                for i, m in zip(recording.instruments, config.markets, strict=True)
            }
            self.hub = Hub(config, self.faults, {served[s]: sim for s, sim in src.sims.items()})
            hub = self.hub
            src.publish = lambda symbol, res: hub.publish(served[symbol], res)
            self.replay_source = src
        self.desk = OrderDesk(finished_per_key=config.finished_orders_per_key)
        self.hub.trade_listeners.append(self.desk.on_trades)
        # a real venue's order endpoints (the dialects): its dead man's switch, order faults,
        # and a network partition (every request dropped, every stream cut, for a while)
        self.dead_man = DeadManTimers(self.desk)
        self.order_faults = OrderFaults()
        self.partitioned_until = 0.0
        self.dialect = make_dialect(self)  # None: VTS/1, served below
        self.hub.dialect = self.dialect
        self.sessions: dict[str, Session] = {}
        self.disconnects: Counter[str] = Counter()
        self.started_at = time.monotonic()
        self.port = 0
        self.admin_port: int | None = None
        self._runner: web.AppRunner | None = None
        self._admin_runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = asyncio.Event()
        self._running.set()
        self._live_sessions: set[Session] = set()
        self._tls = config.tls_cert_file is not None

    # -- addresses ----------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def stream_url(self) -> str:
        if self.dialect is not None:  # the venue's base URL: clients append its paths
            url = self.dialect.base_stream_url(_url_host(self.host), self.port)
        else:
            url = f"ws://{_url_host(self.host)}:{self.port}{frames.STREAM_PATH}"
        return "wss://" + url.removeprefix("ws://") if self._tls else url

    @property
    def rest_url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{_url_host(self.host)}:{self.port}"

    @property
    def admin_url(self) -> str | None:
        return None if self.admin_port is None else f"http://127.0.0.1:{self.admin_port}"

    @property
    def key(self) -> str:
        """The first configured key (the one a test or demo uses)."""
        return next(iter(self.keys))

    @property
    def secret(self) -> str:
        return self.keys[self.key]

    @property
    def instruments(self) -> list[Instrument]:
        return [m.instrument for m in self.hub.markets.values()]

    # -- life ---------------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config
        tls = cfg.tls_context()  # before binding: a bad file is a ConfigError, no port held
        app = web.Application(
            middlewares=[self._request_started, json_errors], client_max_size=1024 * 1024
        )
        if self.dialect is not None:
            app.router.add_routes(self.dialect.routes())
        else:
            app.router.add_get(frames.STREAM_PATH, self._stream)
            app.router.add_routes(Rest(self).routes())
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=1.0,
            keepalive_timeout=cfg.idle_timeout_s,
        )
        await self._runner.setup()
        assert self._runner.server is not None
        self.conn_guard.install(self._runner.server)
        await web.TCPSite(self._runner, cfg.host, cfg.port, ssl_context=tls).start()
        self.port = int(self._runner.addresses[0][1])
        if cfg.admin_port is not None:
            admin = Admin(self)
            admin_app = web.Application(middlewares=[json_errors, admin.require_token])
            admin_app.router.add_routes(admin.routes())
            self._admin_runner = web.AppRunner(
                admin_app, handle_signals=False, access_log=None, shutdown_timeout=1.0
            )
            await self._admin_runner.setup()
            await web.TCPSite(self._admin_runner, "127.0.0.1", cfg.admin_port).start()
            self.admin_port = int(self._admin_runner.addresses[0][1])
        self.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        market = (
            self._market_loop()
            if self.replay_source is None
            else self.replay_source.run(self._running)
        )
        self._tasks = [
            loop.create_task(market),
            loop.create_task(self._housekeeping()),
        ]
        if self.dialect is not None:
            await self.dialect.start()
        log_event(
            "start",
            stream_url=self.stream_url,
            rest_url=self.rest_url,
            admin_url=self.admin_url,
            keys=sorted(self.keys),
            key_source=self.key_source,
            seed=cfg.seed,
            dialect=cfg.dialect,
            rate=cfg.rate,
            heartbeat_ms=cfg.heartbeat_ms,
            faults=cfg.faults.to_json(),
            replay=list(cfg.replay_paths) or None,
        )

    async def stop(self) -> None:
        """Close every connection (1001), stop the market, release the ports."""
        self.dead_man.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for s in list(self._live_sessions):
            s.kill(CLOSE_GOING_AWAY, "gateway going away", reason="gateway_stop")
        if self.dialect is not None:
            await self.dialect.stop()
        for runner in (self._runner, self._admin_runner):
            if runner is not None:
                await runner.cleanup()
        self._runner = self._admin_runner = None
        log_event("stop", disconnects=dict(self.disconnects))

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the market ---------------------------------------------------------------------------
    def pause_market(self) -> None:
        """Stop stepping the market (tests: freeze it; :meth:`step_market` still works)."""
        self._running.clear()

    def resume_market(self) -> None:
        self._running.set()

    def step_market(self, steps: int = 1) -> None:
        """Advance every market ``steps`` times now, publishing as usual."""
        for _ in range(steps):
            self.hub.step()

    async def _market_loop(self) -> None:
        rate = self.config.rate
        hub = self.hub
        if rate <= 0:
            while True:
                await self._running.wait()
                for _ in range(4):
                    hub.step()
                await self._wait_for_room()
                await asyncio.sleep(0)
        burst = max(1, math.ceil(rate / 50))  # at most ~20 ms of steps without yielding
        t0, done = time.monotonic(), 0
        clock = time.monotonic
        while True:
            if not self._running.is_set():
                await self._running.wait()
                t0, done = time.monotonic(), 0
            now = time.monotonic()
            due = int((now - t0) * rate) - done
            if due > rate:  # more than a second behind: do not try to catch up
                log_event("market_behind", level=logging.WARNING, behind_steps=due)
                t0, done, due = now, 0, 1
            turn_end = now + MARKET_TURN_S  # steps can be slow: bound the turn by time too
            for _ in range(min(due, burst)):
                hub.step()
                done += 1
                if clock() >= turn_end:
                    break
            await asyncio.sleep(max(0.0, t0 + (done + 1) / rate - time.monotonic()))

    async def _wait_for_room(self) -> None:
        """Flat-out mode: wait (0.5 s at most a round) for connections whose queue is over
        half full; one that has not drained for ``slow_consumer_s`` is closed instead, so a
        client that stopped reading cannot hold the market back."""
        deadline = time.monotonic() + 0.5
        for s in list(self._live_sessions):
            if s.room.is_set() or s.closing:
                continue
            if time.monotonic() - s.room_lost_at > self.config.slow_consumer_s:
                s.kill(
                    CLOSE_POLICY,
                    f"slow consumer: not draining for {self.config.slow_consumer_s} s",
                    reason="slow_consumer",
                )
                continue
            left = deadline - time.monotonic()
            if left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(s.room.wait(), left)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            chance = self.faults.settings.disconnect
            if not chance.rate:
                continue
            for s in list(self._live_sessions):
                if s.key is not None and not s.closing and self.faults.rng.random() < chance.rate:
                    self._disconnect(s, self.faults.settings.close_frame)

    @web.middleware
    async def _request_started(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A complete request head arrived: the connection met its header deadline. While a
        ``partition`` lasts, the connection is dropped with no answer (REST and upgrades)."""
        self.conn_guard.request_started(request.protocol)
        if time.monotonic() < self.partitioned_until:
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        return await handler(request)

    # -- stream -------------------------------------------------------------------------------
    async def _stream(self, request: web.Request) -> web.StreamResponse:
        session = Session(self, request)
        self._live_sessions.add(session)
        try:
            return await session.run()
        finally:
            self._live_sessions.discard(session)

    def check_stream_auth(self, frame: frames.Auth) -> str | None:
        """None when the auth frame is good, else why not (sent in the auth_failed error).

        An unknown key, a bad signature and a replayed frame (a signature already accepted
        within the skew window) get the same text: no key-name oracle, nothing for a replayer.
        Only a correctly signed frame learns about its clock skew."""
        secret = self.keys.get(frame.key)
        sig = frame.sig
        ts_ok = 0 <= frame.ts < 10**15
        expected = frames.sign_stream_auth(
            secret or "tickpipe-no-such-key", frame.ts if ts_ok else 0
        )
        good = sig.isascii() and len(sig) <= 128 and frames.verify_signature(expected, sig)
        if secret is None or not ts_ok or not good:
            return STREAM_AUTH_FAILED
        skew = abs(frame.ts - time.time_ns() // 1_000_000)
        if skew > self.config.max_skew_ms:
            return f"clock skew of {skew} ms is over the {self.config.max_skew_ms} ms allowed"
        seen = self.replay.check_and_add(f"stream:{frame.key}:{sig.lower()}")
        if seen is not None:
            self.replays_refused += 1
            log_event(
                "replay_refused",
                level=logging.WARNING,
                where="stream",
                key=clip(frame.key),
                cache=seen,
            )
            return STREAM_AUTH_FAILED
        return None

    def note_replay(self, where: str, key: str, request: web.Request) -> None:
        self.replays_refused += 1
        log_event(
            "replay_refused", level=logging.WARNING, where=where, key=clip(key), peer=request.remote
        )

    def on_session_authenticated(self, s: Session) -> None:
        self.sessions[s.id] = s
        log_event("connect", session=s.id, key=s.key, peer=s.peer)

    def on_pong_timeout(self, s: Session, age_s: float) -> None:
        log_event(
            "pong_timeout",
            level=logging.WARNING,
            session=s.id,
            key=s.key,
            last_pong_age_ms=round(age_s * 1000),
        )

    def on_session_end(self, s: Session) -> None:
        self.hub.drop_subscriber(s, s.channels)
        if self.sessions.pop(s.id, None) is None:
            return
        self.disconnects[s.end_reason] += 1
        cancelled: list[str] = []
        if s.cancel_on_disconnect and s.key is not None:
            cancelled = self.desk.cancel_all(s.key, reason="cancel_on_disconnect")
        log_event(
            "session_end",
            session=s.id,
            key=s.key,
            reason=s.end_reason,
            cancel_on_disconnect=s.cancel_on_disconnect,
            cancelled=cancelled,
        )

    def _disconnect(self, s: Session, close_frame: bool) -> None:
        self.faults.record("disconnect", session=s.id, close_frame=close_frame)
        s.kill(
            CLOSE_GOING_AWAY,
            "fault: disconnect",
            reason="fault_disconnect",
            close_frame=close_frame,
        )

    # -- truth --------------------------------------------------------------------------------
    def true_book(self, symbol: str, seq: int | None = None) -> OrderBook:
        """The book of ``orderbook:symbol`` as published at ``seq`` (default: latest).

        Raises KeyError for an unknown symbol, :class:`~tickpipe.gateway.history.SeqUnknown`
        for a seq not yet published or older than the history kept.
        """
        return self.hub.markets[symbol].history.book_at(seq)

    def seq(self, channel: str) -> int:
        """The last seq published on ``channel``."""
        return self.hub.channels[channel].seq

    # -- faults -------------------------------------------------------------------------------
    def set_faults(self, patch: dict[str, Any] | None = None, **settings: Any) -> FaultSettings:
        """Merge continuous fault settings (names as in ``POST /admin/faults``)."""
        before = self.faults.settings
        merged = before.merged({**(patch or {}), **settings})
        self.faults.settings = merged
        for channel in merged.silence_channel:
            if channel not in before.silence_channel and channel in self.hub.channels:
                self.faults.record("silence_channel", channel=channel, seq=self.seq(channel))
        if merged.stop_pings and not before.stop_pings:
            self.faults.record("stop_pings", session="all")
        log_event("faults_set", level=logging.WARNING, settings=merged.to_json())
        return merged

    def reset_faults(self) -> None:
        self.faults.settings = FaultSettings()
        self.faults.clear_pending()
        log_event("faults_reset", level=logging.WARNING)

    def faults_json(self) -> dict[str, Any]:
        return {
            "settings": self.faults.settings.to_json(),
            "pending": self.faults.pending_json(),
            "counts": dict(self.faults.counts),
        }

    def trigger(self, fault: str, **params: Any) -> dict[str, Any]:
        """Fire a one-shot fault now (or on the next frame/snapshot it targets).

        ``disconnect`` (``close_frame`` = True, ``session``), ``stall`` / ``stop_pings``
        (``duration_ms`` = 60000, 0 ends it; ``session``), frame faults (``channel``, ``count`` =
        1), snapshot faults (``symbol`` = any, ``count`` = 1), ``silence_channel`` (``channel``,
        ``duration_ms`` = until cleared). ConfigError names a bad fault or parameter.
        """
        if self.dialect is not None:  # connection faults on its own connections
            handled = self.dialect.trigger(fault, params)
            if handled is not None:
                log_event("trigger", level=logging.WARNING, **handled)
                return handled
        p = _Params(fault, params)
        out: dict[str, Any] = {"triggered": fault}
        if fault == "partition":
            duration = p.int("duration_ms", 10_000)
            p.done()
            if not 1 <= duration <= 3_600_000:
                raise ConfigError(f"trigger partition: duration_ms 1..3600000, got {duration}")
            self.partitioned_until = time.monotonic() + duration / 1000
            if self.dialect is not None:  # every stream cut, no close frame
                self.dialect.trigger("disconnect", {"close_frame": False})
            for s in list(self.sessions.values()):
                self._disconnect(s, False)
            out.update(duration_ms=duration)
        elif fault in ORDER_FAULTS:
            count = p.int("count", 1)
            duration = p.int("duration_ms", 15_000 if fault == "order_timeout" else 0)
            p.done()
            self.order_faults.queue(fault, count, duration)
            out.update(count=count, duration_ms=duration)
        elif fault in ("disconnect", "stall", "stop_pings"):
            close_frame = p.bool("close_frame", True) if fault == "disconnect" else True
            duration = p.int("duration_ms", 60_000) if fault != "disconnect" else 0
            sid = p.str("session", None)
            p.done()
            targets = [s for s in self.sessions.values() if sid is None or s.id == sid]
            if sid is not None and not targets:
                raise ConfigError(f"trigger {fault}: no session {sid!r}")
            for s in targets:
                if fault == "disconnect":
                    self._disconnect(s, close_frame)
                    continue
                until = time.monotonic() + duration / 1000 if duration else 0.0
                if fault == "stall":
                    s.stalled_until = until
                else:
                    s.pings_stopped_until = until
                self.faults.record(fault, session=s.id, duration_ms=duration)
            out["sessions"] = [s.id for s in targets]
        elif fault in (*DELTA_FAULTS, "malformed_frame"):
            channel = p.str("channel", None)
            count = p.int("count", 1)
            p.done()
            ch = self.hub.channels.get(channel or "")
            if ch is None:
                raise ConfigError(
                    f'trigger {fault}: needs "channel": a known channel, got {channel!r}'
                )
            if fault != "malformed_frame" and ch.kind != "orderbook":
                raise ConfigError(
                    f"trigger {fault}: applies to orderbook channels, not {channel!r}"
                )
            if not 1 <= count <= 10_000:
                raise ConfigError(f"trigger {fault}: count must be 1..10000, got {count}")
            self.faults.queue_frame_fault(fault, ch.name, count)
            out.update(channel=ch.name, count=count, after_seq=ch.seq)
        elif fault in ("snapshot_error", "stale_snapshot"):
            symbol = p.str("symbol", None)
            count = p.int("count", 1)
            p.done()
            if symbol is not None and symbol not in self.hub.markets:
                raise ConfigError(f"trigger {fault}: unknown symbol {symbol!r}")
            if not 1 <= count <= 10_000:
                raise ConfigError(f"trigger {fault}: count must be 1..10000, got {count}")
            self.faults.queue_snapshot_fault(fault, symbol, count)
            out.update(symbol=symbol, count=count)
        elif fault == "silence_channel":
            channel = p.str("channel", None)
            duration = p.int("duration_ms", 0)
            p.done()
            if channel not in self.hub.channels:
                raise ConfigError(f"trigger silence_channel: unknown channel {channel!r}")
            silent = self.faults.settings.silence_channel
            self.set_faults(
                silence_channel=[*silent, channel] if channel not in silent else list(silent)
            )
            if duration:
                asyncio.get_running_loop().call_later(duration / 1000, self._unsilence, channel)
            out.update(channel=channel, duration_ms=duration)
        elif fault in ("snapshot_delay_ms", "snapshot_rate_limit"):
            raise ConfigError(f"{fault} is a continuous setting: set it with POST /admin/faults")
        else:
            raise ConfigError(f"unknown fault {fault!r}")
        log_event("trigger", level=logging.WARNING, **out)
        return out

    def _unsilence(self, channel: str) -> None:
        silent = [c for c in self.faults.settings.silence_channel if c != channel]
        self.set_faults(silence_channel=silent)

    # -- stats --------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        sent: dict[str, int] = dict.fromkeys(("orderbook", "ticker", "trades"), 0)
        for ch in self.hub.channels.values():
            sent[ch.kind] += ch.sent
        return {
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "seed": self.config.seed,
            "rate": self.config.rate,
            "connections": len(self.sessions),
            "sessions": [
                {
                    "session": s.id,
                    "key": s.key,
                    "peer": s.peer,
                    "channels": sorted(s.channels),
                    "queued": len(s.queue),
                    "frames_sent": s.frames_sent,
                    "cancel_on_disconnect": s.cancel_on_disconnect,
                    "stalled": s.stalled(),
                    "dropped_while_stalled": s.dropped_while_stalled,
                }
                for s in self.sessions.values()
            ],
            "frames_generated": dict(self.hub.generated),
            "frames_sent": sent,
            "frames_sent_by_channel": {
                name: ch.sent for name, ch in self.hub.channels.items() if ch.sent
            },
            "seqs": {name: ch.seq for name, ch in self.hub.channels.items()},
            "orders": self.desk.counts(),
            "dead_man": self.dead_man.stats(),
            "order_faults": dict(self.order_faults.taken),
            "abuse": {
                "replays_refused": self.replays_refused,
                "connections_refused": self.conn_guard.refused,
                "header_timeouts": self.conn_guard.timed_out,
            },
            "faults": dict(self.faults.counts),
            "disconnects": dict(self.disconnects),
            **({"dialect": self.dialect.stats()} if self.dialect is not None else {}),
            **({"replay": self.replay_source.stats()} if self.replay_source is not None else {}),
        }


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class _Params:
    """Typed reading of a trigger's parameters; ConfigError names the bad one."""

    def __init__(self, fault: str, params: dict[str, Any]) -> None:
        self.fault = fault
        self.left = dict(params)

    def bool(self, name: str, default: bool) -> bool:
        v = self.left.pop(name, default)
        if not isinstance(v, bool):
            raise ConfigError(f"trigger {self.fault}: {name} must be true or false, got {v!r}")
        return v

    def int(self, name: str, default: int) -> int:
        v = self.left.pop(name, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"trigger {self.fault}: {name} must be an integer >= 0, got {v!r}")
        return v

    def str(self, name: str, default: str | None) -> str | None:
        v = self.left.pop(name, default)
        if v is not None and not isinstance(v, str):
            raise ConfigError(f"trigger {self.fault}: {name} must be a string, got {v!r}")
        return v

    def done(self) -> None:
        if self.left:
            raise ConfigError(f"trigger {self.fault}: unknown parameter(s) {sorted(self.left)}")
