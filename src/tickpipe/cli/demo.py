"""``tickpipe demo``: the reference gateway, a client and a live dashboard, in one command.

With no ``--stream-url`` the demo starts the reference gateway as a child process on loopback
(:mod:`tickpipe.cli.dashboard_gateway`), subscribes one client to order books, tickers and
trades across asset classes on one connection, runs a small strategy that rests orders
(:mod:`tickpipe.cli.strategy`) and shows everything on a rich dashboard
(:mod:`tickpipe.cli.dashboard`). Keys inject the gateway's faults through its admin API
(:mod:`tickpipe.cli.dashboard_faults`). ``--stream-url``/``--rest-url`` point it at another
gateway and start nothing.

Threads and tasks: the client reads the socket on the event loop; one task copies a plain
snapshot out of it ``--refresh`` times a second; rich's own thread renders that snapshot, so
drawing never sits on the read path. Ctrl-C, SIGTERM, SIGHUP, ``q`` and ``--duration`` all end
the same way: tasks cancelled, client closed, gateway stopped and reaped, terminal restored,
exit 0. When start-up fails (the gateway cannot start, the stream or its REST API cannot be
reached) only the error is printed, naming the step that failed: exit 1 (3 if the key is
refused). Channels the gateway refuses are named with the reason; the demo goes on with the
others, or exits 2 when none is left.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from tickpipe.cli.dashboard import render
from tickpipe.cli.dashboard_faults import (
    ACTIONS_BY_KEY,
    FAULT_ACTIONS,
    QUIT_KEYS,
    AdminClient,
    FaultAction,
    ScheduledFault,
    aims_at_a_book,
    parse_inject,
)
from tickpipe.cli.dashboard_gateway import EmbeddedGateway, GatewayStartError
from tickpipe.cli.dashboard_keys import KeyReader
from tickpipe.cli.dashboard_model import ConnectionRow, DashboardSnapshot, KeyHelp, StrategyRow
from tickpipe.cli.dashboard_source import book_row, connection_row, format_event, quote_row
from tickpipe.cli.logfmt import add_observe_args, log_event, setup_logging
from tickpipe.cli.strategy import DemoStrategy, StrategyConfig
from tickpipe.client import Client, SubscribeResult
from tickpipe.errors import AuthError, ConfigError, TickpipeError
from tickpipe.gateway.dialects import DIALECTS
from tickpipe.protocol import frames
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import Continuity, Seeding
from tickpipe.venues.base import Venue
from tickpipe.venues.registry import venue_named

DEFAULT_BOOKS = ("BTC-USD", "ETH-USD", "AAPL", "MSFT", "NVDA", "XAU-USD", "EUR-USD")
DEFAULT_CHANNELS = (
    *(f"orderbook:{s}" for s in DEFAULT_BOOKS),
    "ticker:BTC-USD",
    "ticker:AAPL",
    "ticker:EUR-USD",
    "trades:ETH-USD",
    "trades:XAU-USD",
)
STRATEGY_SYMBOLS = ("BTC-USD", "AAPL", "EUR-USD")
EVENTS_KEPT = 200

log = logging.getLogger("tickpipe.cli.demo")

EPILOG = """\
keys (shown on screen; fault keys need an admin endpoint):
{keys}
  q   quit (as does Ctrl-C)

exit status: 0 on q, Ctrl-C or --duration; 1 when start-up fails (only the error is
printed, naming what failed); 2 on a bad flag or when the gateway refuses every channel
(a refused channel is named with its reason, the others go on); 3 when the key is refused.

examples:
  tickpipe demo                                   embedded gateway, default channels
  tickpipe demo --faults flaky                    the gateway injects a fault profile by itself
  tickpipe demo --duration 20 --inject disconnect@5 --inject drop_delta@10
  tickpipe demo --dialect binance                 the same markets, served and read as Binance
  tickpipe demo --stream-url ws://HOST:PORT/v1/stream --rest-url http://HOST:PORT \\
                --admin-url http://127.0.0.1:APORT    (token in $TICKPIPE_ADMIN_TOKEN)
"""


def register(sub: Any) -> None:
    width = max(len(a.label) for a in FAULT_ACTIONS)
    keys = "\n".join(f"  {a.key}   {a.label:<{width}}  --inject {a.name}@S" for a in FAULT_ACTIONS)
    p: argparse.ArgumentParser = sub.add_parser(
        "demo",
        help="live dashboard: gateway + client + strategy; inject faults with keys",
        description=textwrap.fill(
            "Start the reference gateway on loopback (unless --stream-url is given), subscribe "
            "one client to order books, tickers and trades across asset classes on ONE "
            "connection, and show a live dashboard: per book the top levels, spread, seq, sync "
            "state and age; per connection its state, heartbeat age, frames/s, latency p50/p99, "
            "gaps, resyncs, reconnects, backoff, snapshot requests, 429s and what the kill "
            "switch cancelled. Press keys to inject the gateway's faults and watch the client "
            "go stale, cancel, back off, reconnect and re-seed. --dialect NAME serves the same "
            "markets in a venue's wire format and reads them with that venue's client.",
            width=78,
        ),
        epilog=EPILOG.format(keys=keys),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("where the data comes from")
    src.add_argument(
        "--dialect",
        default="vts",
        choices=list(DIALECTS),
        metavar="NAME",
        help=f"wire format: the embedded gateway serves it (`tickpipe gateway --dialect`) and "
        f"the client reads it as the venue of that name; one of {', '.join(DIALECTS)} "
        "(default vts; with --stream-url: the venue the stream speaks). Symbols are the "
        "venue's (binance: BTCUSDT, okx: BTC-USDT, kraken: BTC/USD); venues without orders "
        "run no strategy; a fault the dialect does not have is refused on screen",
    )
    src.add_argument(
        "--stream-url",
        metavar="URL",
        help="a VTS/1 stream (ws://.../v1/stream; with --dialect the venue's ws://HOST:PORT, "
        "its documented path appended); default: start the embedded gateway",
    )
    src.add_argument(
        "--rest-url",
        metavar="URL",
        help="its REST base URL (http://host:port); default: same host and port as the stream",
    )
    src.add_argument(
        "--admin-url",
        metavar="URL",
        help="admin API of a reference gateway, for fault keys (default: the embedded one's)",
    )
    src.add_argument(
        "--admin-token",
        metavar="T",
        default=os.environ.get("TICKPIPE_ADMIN_TOKEN") or None,
        help="X-Admin-Token for --admin-url (default: $TICKPIPE_ADMIN_TOKEN; the environment "
        "keeps it out of ps)",
    )
    src.add_argument(
        "--key", metavar="K", help="API key (default: $TICKPIPE_KEY, else the demo key 'demo')"
    )
    src.add_argument(
        "--secret", metavar="S", help="API secret (default: $TICKPIPE_SECRET, else the demo's)"
    )

    gw = p.add_argument_group("embedded gateway (ignored with --stream-url)")
    gw.add_argument("--seed", type=int, default=1, metavar="N", help="market seed (default 1)")
    gw.add_argument(
        "--rate", type=float, metavar="R", help="market updates per second (gateway default)"
    )
    gw.add_argument(
        "--heartbeat-ms",
        type=int,
        default=1000,
        metavar="MS",
        help="gateway ping interval (default 1000: a lost heartbeat shows within 2.5 s; "
        "the gateway's own default is 5000)",
    )
    gw.add_argument(
        "--faults",
        metavar="PROFILE",
        help="fault profile the gateway runs by itself (see `tickpipe gateway --help`)",
    )
    gw.add_argument(
        "--gateway-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `tickpipe gateway` (repeatable), "
        "e.g. --gateway-arg=--heartbeat-ms=1000",
    )

    run = p.add_argument_group("what runs")
    run.add_argument(
        "--channels",
        nargs="+",
        metavar="CH",
        default=None,
        help="channels to subscribe (KIND:SYMBOL, the venue's symbols with --dialect); "
        "default: 7 books over crypto, equities, metal and FX, 3 tickers, 2 trade streams "
        "(renamed to the dialect's symbols)",
    )
    run.add_argument(
        "--no-strategy",
        action="store_true",
        help="do not run the built-in strategy (it rests orders on BTC-USD, AAPL, EUR-USD "
        "so the kill switch has something to cancel)",
    )
    run.add_argument(
        "--inject",
        action="append",
        default=[],
        metavar="FAULT@SECONDS",
        help="inject FAULT that many seconds after start (repeatable); names as in the key list",
    )
    run.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="end by itself after this long (default: run until q or Ctrl-C)",
    )
    run.add_argument(
        "--refresh",
        type=float,
        default=5.0,
        metavar="HZ",
        help="screen refreshes per second (default 5; 4-10 is comfortable)",
    )
    add_observe_args(run)
    p.set_defaults(func=run_demo)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Validated command line of ``tickpipe demo``."""

    stream_url: str | None
    rest_url: str | None
    admin_url: str | None
    admin_token: str | None
    key: str | None
    secret: str | None
    gateway_args: list[str]
    channels: list[str]
    strategy: bool
    injects: list[ScheduledFault]
    duration_s: float | None
    refresh_hz: float
    faults_profile: str | None = None
    metrics_port: int | None = None  # --metrics-port: the client's /metrics on 127.0.0.1
    log_format: str = "text"
    dialect: str = "vts"  # --dialect: the gateway's wire format = the client's venue
    strategy_off: str = ""  # why the strategy is off when the venue has no orders


def dialect_symbols(dialect: str) -> dict[str, str]:
    """The embedded gateway's symbols (``BTC-USD``) -> the dialect's (``BTCUSDT``)."""
    from tickpipe.gateway.config import GatewayConfig
    from tickpipe.gateway.dialects import dialect_markets

    markets = GatewayConfig().markets
    renamed = dialect_markets(dialect, markets)
    return {a.instrument.symbol: b.instrument.symbol for a, b in zip(markets, renamed, strict=True)}


def default_channels(dialect: str) -> list[str]:
    """:data:`DEFAULT_CHANNELS` under the dialect's symbols."""
    names = dialect_symbols(dialect)
    out = []
    for ch in DEFAULT_CHANNELS:
        kind, _, symbol = ch.partition(":")
        out.append(f"{kind}:{names.get(symbol, symbol)}")
    return out


def options_from_args(args: argparse.Namespace) -> DemoOptions:
    """Check the flags together; ConfigError names the one that is wrong."""
    injects = sorted(parse_inject(t) for t in args.inject)
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration!r}")
    metrics_port = getattr(args, "metrics_port", None)
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        raise ConfigError(f"--metrics-port must be 0..65535 (0: any free), got {metrics_port}")
    if not 0.5 <= args.refresh <= 30:
        raise ConfigError(f"--refresh must be between 0.5 and 30 Hz, got {args.refresh!r}")
    dialect = getattr(args, "dialect", "vts")
    venue = venue_named(dialect)  # every dialect is served as the venue of the same name
    channels = args.channels if args.channels is not None else default_channels(dialect)
    for ch in channels:
        try:
            kind, _ = frames.split_channel(ch)
            if dialect != "vts":
                venue.parse_channel(ch)
        except (TickpipeError, ValueError) as exc:
            raise ConfigError(f"--channels: {exc}") from None
        if kind not in ("orderbook", "ticker", "trades"):
            raise ConfigError(f"--channels: {ch!r}: kind must be orderbook, ticker or trades")
    rest_url = args.rest_url
    if args.stream_url is None and rest_url is not None:
        raise ConfigError("--rest-url needs --stream-url (without them the demo embeds a gateway)")
    if args.stream_url is not None and rest_url is None:
        rest_url = rest_url_for(args.stream_url)
    if not 100 <= args.heartbeat_ms <= 60_000:
        raise ConfigError(f"--heartbeat-ms must be 100..60000, got {args.heartbeat_ms!r}")
    gateway_args = [
        f"--seed={args.seed}",
        f"--heartbeat-ms={args.heartbeat_ms}",
        "--log-level=WARNING",
    ]
    if args.rate is not None:
        gateway_args.append(f"--rate={args.rate}")
    if args.faults is not None:
        gateway_args.append(f"--faults={args.faults}")
    if dialect != "vts":
        gateway_args.append(f"--dialect={dialect}")
    if (args.key is None) != (args.secret is None):
        raise ConfigError("--key and --secret go together")
    # the pair reaches the embedded gateway through its environment (argv shows in ps)
    gateway_args += args.gateway_arg  # last: they override the ones above
    if args.stream_url is not None and (args.faults or args.rate is not None or args.gateway_arg):
        raise ConfigError(
            "--faults, --rate and --gateway-arg configure the embedded gateway; "
            "with --stream-url no gateway is started"
        )
    if (args.admin_url is None) != (args.admin_token is None) and args.stream_url is not None:
        raise ConfigError("--admin-url and --admin-token go together")
    return DemoOptions(
        stream_url=args.stream_url,
        rest_url=rest_url,
        admin_url=args.admin_url,
        admin_token=args.admin_token,
        key=args.key,
        secret=args.secret,
        gateway_args=gateway_args,
        channels=list(dict.fromkeys(channels)),
        strategy=not args.no_strategy and venue.supports_orders,
        injects=injects,
        duration_s=args.duration,
        refresh_hz=args.refresh,
        faults_profile=args.faults,
        metrics_port=metrics_port,
        log_format=getattr(args, "log_format", "text"),
        dialect=dialect,
        strategy_off=""
        if venue.supports_orders
        else f"off: {venue.title} has no orders in the demo",
    )


def rest_url_for(stream_url: str) -> str:
    """``ws://h:p/v1/stream`` -> ``http://h:p`` (``wss`` -> ``https``)."""
    parts = urlsplit(stream_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(
            f"--stream-url must be ws://HOST:PORT/... or wss://..., got {stream_url!r}"
        )
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


def run_demo(args: argparse.Namespace) -> int:
    try:
        opts = options_from_args(args)
    except ConfigError as exc:
        print(f"tickpipe demo: error: {exc}", file=sys.stderr)
        return 2
    if opts.log_format == "json":
        setup_logging(
            "json", logging.INFO, secrets=[opts.secret, os.environ.get("TICKPIPE_SECRET")]
        )
        logging.getLogger("picows").setLevel(logging.WARNING)  # one line a connect otherwise
    try:
        return asyncio.run(DemoApp(opts).main())
    except KeyboardInterrupt:  # a Ctrl-C that landed outside the loop's handler
        return 0


class DemoApp:
    """One run of the demo. ``main()`` returns the exit code."""

    def __init__(self, opts: DemoOptions) -> None:
        self.opts = opts
        self.venue: Venue = venue_named(opts.dialect)
        self.console = Console(stderr=False)
        self.gateway: EmbeddedGateway | None = None
        self.admin: AdminClient | None = None
        self.client: Client | None = None
        self.strategy: DemoStrategy | None = None
        self.instruments: dict[str, Instrument] = {}
        self.events: collections.deque[str] = collections.deque(maxlen=EVENTS_KEPT)
        self.snap = DashboardSnapshot()
        self.notice = ""
        self.target = ""
        self.stop_reason = ""
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self._main_task: asyncio.Task[Any] | None = None
        self._dashboard_up = False
        self._log_handler: logging.Handler | None = None
        self._target_i = 0
        self.last_trade: dict[str, Any] = {}
        self.fatal: str | None = None
        self.exit_code = 0
        self.channels: list[str] = list(opts.channels)  # what the gateway accepted
        self.refused = ""  # the gateway's refusals, as shown
        self._step = "starting"  # what start-up is doing, for the error if it fails
        self._ran = False  # the dashboard came up: a summary is worth printing
        self.metrics_url = ""  # --metrics-port: where /metrics is served
        self._stderr_handler: logging.Handler | None = None  # off while the screen is up

    # -- lifecycle -------------------------------------------------------------------------
    async def main(self) -> int:
        loop = asyncio.get_running_loop()
        self._main_task = asyncio.current_task()
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        for sig in sigs:
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        try:
            await self._run()
        except asyncio.CancelledError:
            if not self.stop_reason:
                raise
        except NoChannelsError as exc:
            self.fatal, self.exit_code = str(exc), 2
        except (GatewayStartError, TickpipeError, OSError, aiohttp.ClientError) as exc:
            what = str(exc) or type(exc).__name__
            if isinstance(exc, OSError | aiohttp.ClientError):
                what = f"{type(exc).__name__}: {what}"
            self.fatal = what if self._ran else f"{self._step}: {what}"
            self.exit_code = 3 if isinstance(exc, AuthError) else 1
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)
            # a second Ctrl-C during cleanup must not leave the gateway running
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                await self._cleanup()
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)
        self._print_summary()
        return self.exit_code

    def request_stop(self, reason: str) -> None:
        """Ctrl-C, SIGTERM, SIGHUP, q or --duration: end the demo cleanly (idempotent)."""
        if self.stop_reason:
            return
        self.stop_reason = reason
        self._stop.set()
        if not self._dashboard_up and self._main_task is not None:
            self._main_task.cancel()  # still starting: interrupt whatever it waits on

    async def _run(self) -> None:
        opts = self.opts
        if opts.stream_url is None:
            self._say("starting the reference gateway on 127.0.0.1 ...")
            self._step = "cannot start the embedded gateway"
            key_env = (
                {"TICKPIPE_KEY": opts.key, "TICKPIPE_SECRET": opts.secret}
                if opts.key is not None and opts.secret is not None
                else {}
            )
            self.gateway = EmbeddedGateway(opts.gateway_args, env=key_env)
            ready = await self.gateway.start()
            stream_url, rest_url = ready.stream_url, ready.rest_url
            admin_url, admin_token = ready.admin_url, ready.admin_token
            key, secret = opts.key, opts.secret
            self.target = f"embedded gateway pid {ready.pid}  {stream_url}"
            if opts.dialect != "vts":
                self.target += f"  dialect {opts.dialect}"
            if self.opts.faults_profile:
                self.target += f"  faults: {self.opts.faults_profile}"
        else:
            assert opts.rest_url is not None
            stream_url, rest_url = opts.stream_url, opts.rest_url
            admin_url, admin_token = opts.admin_url, opts.admin_token
            key, secret = opts.key, opts.secret
            self.target = stream_url
        if admin_url:
            self.admin = AdminClient(admin_url, admin_token)
        if opts.dialect == "vts":
            self._step = f"cannot load the instruments from {rest_url.rstrip('/')}/v1/instruments"
            self.instruments = await fetch_instruments(rest_url)
        # a venue's instruments come from its own endpoint, loaded by the client at start
        self._say(f"connecting to {stream_url} ...")
        self._step = f"cannot connect to {stream_url}"
        client = Client(
            stream_url=stream_url, rest_url=rest_url, key=key, secret=secret, venue=self.venue
        )
        metrics = None
        if opts.metrics_port is not None:
            from tickpipe.client.prometheus import MetricsServer, client_registry

            self._step = f"cannot listen on 127.0.0.1:{opts.metrics_port} (--metrics-port)"
            metrics = MetricsServer(client_registry(client), opts.metrics_port)
            await metrics.start()
            self.metrics_url = metrics.url
            self.target += f"  metrics: {metrics.url}"
            self._say(f"metrics at {metrics.url}", "metrics", url=metrics.url, port=metrics.port)
            self._step = f"cannot connect to {stream_url}"
        events = client.events()  # before start: the first "connected" is shown too
        pumps = [asyncio.create_task(self._pump_events(events), name="demo-events")]
        try:
            async with client as c:
                self.client = c
                if opts.dialect != "vts":
                    self.instruments = c.instruments
                pumps.append(asyncio.create_task(self._pump_trades(c), name="demo-trades"))
                try:
                    self._step = f"cannot subscribe on {stream_url}"
                    self._accept(await c.subscribe(opts.channels))
                    await self._dashboard()
                finally:
                    if self.strategy is not None:
                        await self.strategy.stop()  # best effort, while the client is open
        finally:
            for t in pumps:
                t.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            if metrics is not None:
                await metrics.stop()

    def _accept(self, result: SubscribeResult) -> None:
        """Go on with the channels the gateway accepted; name each refused one and why."""
        refused = {ch: code for ch, code in result.refused.items() if ch in self.opts.channels}
        self.channels = [ch for ch in self.opts.channels if ch not in refused]
        if not refused:
            return
        text = refusal_text(refused, self.instruments)
        if not self.channels:
            raise NoChannelsError(f"no channel to show: {text}")
        self.refused = text
        self._say(f"{text}; going on with {', '.join(self.channels)}", "subscribe_error")
        self.notice = text

    async def _dashboard(self) -> None:
        opts = self.opts
        tasks: list[asyncio.Task[Any]] = []
        with KeyReader() as keys:
            self._capture_logs()
            live = Live(
                get_renderable=self._renderable,
                console=self.console,
                screen=self.console.is_terminal,
                auto_refresh=True,
                refresh_per_second=opts.refresh_hz,
                redirect_stdout=False,
                redirect_stderr=False,
                transient=False,
            )
            self.started = time.monotonic()
            self._refresh_snapshot()
            with live:
                self._dashboard_up = True
                self._ran = True
                if self.stop_reason:  # asked to stop while the screen came up
                    return
                tasks.append(asyncio.create_task(self._snapshot_loop(), name="demo-snapshot"))
                tasks.append(asyncio.create_task(self._key_loop(keys), name="demo-keys"))
                if opts.injects:
                    tasks.append(asyncio.create_task(self._inject_loop(), name="demo-inject"))
                if opts.duration_s is not None:
                    tasks.append(asyncio.create_task(self._timer(opts.duration_s), name="timer"))
                if opts.strategy and self.client is not None:
                    self.strategy = DemoStrategy(
                        self.client,
                        [s for s in STRATEGY_SYMBOLS if f"orderbook:{s}" in self.channels],
                        self.instruments,
                        StrategyConfig(),
                    )
                    tasks.append(asyncio.create_task(self.strategy.run(), name="demo-strategy"))
                for t in tasks:
                    t.add_done_callback(self._task_ended)
                try:
                    await self._stop.wait()
                finally:
                    self._dashboard_up = False
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    self._refresh_snapshot()
            self._release_logs()

    async def _cleanup(self) -> None:
        self._release_logs()
        if self.admin is not None:
            await self.admin.close()
        if self.gateway is not None:
            code = await self.gateway.stop()
            self.events.append(f"gateway pid {self.gateway.pid} stopped (exit {code})")

    def _task_ended(self, task: asyncio.Task[Any]) -> None:
        """A dashboard task that dies of a bug says so on screen instead of freezing it."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self.notice = f"internal error in {task.get_name()}: {type(exc).__name__}: {exc}"
        self.events.append(f"{time.strftime('%H:%M:%S')} log {self.notice}")

    # -- loops -----------------------------------------------------------------------------
    async def _timer(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.request_stop("duration")

    async def _snapshot_loop(self) -> None:
        period = 1.0 / self.opts.refresh_hz
        while True:
            self._refresh_snapshot()
            await asyncio.sleep(period)

    async def _pump_events(self, events: AsyncIterator[Any]) -> None:
        async for ev in events:
            self.events.append(format_event(ev))

    async def _pump_trades(self, client: Client) -> None:
        async for trade in client.trades():
            channel = getattr(trade, "channel", None)
            if channel is not None:
                self.last_trade[channel] = trade

    async def _key_loop(self, keys: KeyReader) -> None:
        while True:
            key = await keys.get()
            if key in QUIT_KEYS:
                self.request_stop("q")
                return
            action = ACTIONS_BY_KEY.get(key)
            if action is None:
                continue
            await self._inject(action, source=f"key {key!r}")

    async def _inject_loop(self) -> None:
        for sf in self.opts.injects:
            delay = self.started + sf.at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._inject(sf.action, source=f"--inject {sf.name}@{sf.at_s:g}")

    async def _inject(self, action: FaultAction, source: str) -> None:
        if self.admin is None:
            self.notice = f"{action.name}: no admin endpoint (pass --admin-url and --admin-token)"
            return
        books = [c for c in self.channels if c.startswith("orderbook:")]
        channel = ""
        if books:  # frame faults take turns over the books
            channel = books[self._target_i % len(books)]
            if aims_at_a_book(action):
                self._target_i += 1
        refused = self._not_on_this_venue(action)
        if refused:
            self.notice = f"{source}: {refused}"
            self.events.append(f"{time.strftime('%H:%M:%S')} >> {refused}")
            return
        self.notice = f"{source}: injecting {action.label} ..."
        self.events.append(f"{time.strftime('%H:%M:%S')} >> inject {action.name} ({source})")
        result = await self.admin.inject(action, channel)
        if channel and aims_at_a_book(action) and result.startswith("injected "):
            symbol = frames.split_channel(channel)[1]
            if self.venue.sync_rules(symbol).continuity is Continuity.CONNECTION:
                result = (  # one sequence for the whole connection: a lost frame is every book's
                    f"injected {action.name} on {channel}: {self.venue.title} counts one sequence "
                    "per connection, so every book re-seeds"
                )
        self.notice = f"{source}: {result}"

    def _not_on_this_venue(self, action: FaultAction) -> str:
        """Why ``action`` means nothing on this venue, or "". The gateway's trigger refuses a
        fault its dialect does not have (the refusal is shown); this covers the one setting it
        would accept and never use: a snapshot rate limit on a venue seeded in band."""
        touches_snapshots = any(
            r.path == "/admin/faults" and any(k.startswith("snapshot_") for k in (r.body or {}))
            for r in action.requests
        )
        if not touches_snapshots or not self.channels:
            return ""
        symbol = frames.split_channel(self.channels[0])[1]
        if self.venue.sync_rules(symbol).seeding is not Seeding.IN_BAND:
            return ""
        return (
            f"{action.name} does not apply to the {self.opts.dialect} dialect: "
            f"{self.venue.title} books are seeded in band (no snapshot requests to limit)"
        )

    # -- screen ----------------------------------------------------------------------------
    def _refresh_snapshot(self) -> None:
        """Copy the client's state into plain values (the event loop's only screen work)."""
        c = self.client
        books = []
        quotes = []
        conn = ConnectionRow()
        if c is not None:
            now_ns = time.time_ns()
            for ch in self.channels:
                kind, symbol = frames.split_channel(ch)
                inst = self.instruments.get(symbol)
                if kind == "orderbook":
                    books.append(book_row(symbol, c.book(symbol), inst))
                else:
                    last = c.ticker(symbol) if kind == "ticker" else self.last_trade.get(ch)
                    quotes.append(quote_row(ch, last, inst, now_ns))
            conn = connection_row(c.stats())
        gw = self.gateway
        if gw is not None and gw.proc is not None and gw.proc.returncode is not None:
            self.notice = f"the embedded gateway exited (code {gw.proc.returncode}); q to quit"
        admin_ok = self.admin is not None
        keys = tuple(KeyHelp(a.key, a.legend, admin_ok) for a in FAULT_ACTIONS)
        keys += (KeyHelp("q", "quit"),)
        duration = self.opts.duration_s
        uptime = time.monotonic() - self.started
        self.snap = DashboardSnapshot(
            target=self.target,
            uptime_s=uptime,
            books=tuple(books),
            quotes=tuple(quotes),
            connection=conn,
            strategy=self.strategy.row()
            if self.strategy
            else StrategyRow(status=self.opts.strategy_off or "off"),
            events=tuple(self.events),
            keys=keys,
            notice=self.notice or ("" if admin_ok else "fault keys off: no admin endpoint"),
            ends_in_s=None if duration is None else duration - uptime,
        )

    def _renderable(self) -> RenderableType:
        """Called on rich's refresh thread with the latest snapshot."""
        w, h = self.console.size
        try:
            return render(self.snap, w, h)
        except Exception as exc:  # the refresh thread must survive a bad frame; show it instead
            return Text(f"dashboard render failed: {type(exc).__name__}: {exc}", style="red")

    def _say(self, text: str, event: str = "status", **fields: Any) -> None:
        if self._dashboard_up:
            return
        if self.opts.log_format == "json":  # about an event: its JSONL name
            level = logging.WARNING if event.endswith("error") else logging.INFO
            log_event(log, event, text, level, **fields)
            return
        print(f"tickpipe demo: {text}", file=sys.stderr, flush=True)

    def _capture_logs(self) -> None:
        """While the dashboard is up, log records go to the events pane, not over the screen."""
        events = self.events

        class _ToPane(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                events.append(f"{time.strftime('%H:%M:%S')} log {record.getMessage()}")

        self._log_handler = _ToPane(logging.WARNING)
        root = logging.getLogger()
        root.addHandler(self._log_handler)
        if sys.stderr.isatty():  # --log-format json on the terminal: not over the screen
            for h in list(root.handlers):
                if h.get_name() == "tickpipe-cli":
                    self._stderr_handler = h
                    root.removeHandler(h)

    def _release_logs(self) -> None:
        root = logging.getLogger()
        if self._log_handler is not None:
            root.removeHandler(self._log_handler)
            self._log_handler = None
        if self._stderr_handler is not None:
            root.addHandler(self._stderr_handler)
            self._stderr_handler = None

    def _print_summary(self) -> None:
        if self.fatal and self.opts.log_format == "json":
            log_event(log, "error", self.fatal, logging.ERROR)
        elif self.fatal:
            print(f"tickpipe demo: error: {self.fatal}", file=sys.stderr, flush=True)
        why = {"SIGINT": "Ctrl-C", "q": "q pressed", "duration": "--duration reached"}.get(
            self.stop_reason, self.stop_reason or "done"
        )
        if not self._ran:  # no run to sum up: start-up failed or was interrupted
            if not self.fatal:
                print(f"tickpipe demo: stopped ({why}) while starting", flush=True)
            return
        c = self.snap.connection
        s = self.snap.strategy
        lines = [
            f"tickpipe demo: stopped ({why}) after {self.snap.uptime_s:.1f} s",
            f"  connection: reconnects {c.reconnects}, gaps {c.gaps}, resyncs {c.resyncs}, "
            f"snapshot requests {c.snapshot_requests}, 429s {c.rate_limited}",
            f"  kill switch: {c.kill_switch}",
        ]
        if self.refused:
            lines.append(f"  channels: {self.refused}")
        if s.enabled:
            lines.append(f"  strategy: placed {s.placed}, cancelled {s.cancelled}")
        if self.gateway is not None:
            alive = self.gateway.running
            lines.append(
                f"  gateway pid {self.gateway.pid}: {'STILL RUNNING' if alive else 'stopped'}"
            )
        lead = "" if self.console.is_terminal else "\n"  # after a plain final frame
        print(lead + "\n".join(lines), flush=True)


class NoChannelsError(ConfigError):
    """The gateway refused every channel asked for (exit 2)."""


REFUSAL_REASONS = {
    "unknown_channel": "unknown channel",
    "too_many_channels": "too many channels on one connection",
    "invalid_channel": "not a valid channel name",
}


def refusal_text(refused: dict[str, str], instruments: dict[str, Instrument]) -> str:
    """'refused orderbook:FOO (unknown channel; known symbols: AAPL, ...)'."""
    parts = []
    for ch, code in refused.items():
        reason = REFUSAL_REASONS.get(code, code)
        if code == "unknown_channel" and instruments:
            symbol = ch.partition(":")[2]
            if symbol not in instruments:
                reason = f"unknown symbol {symbol!r}"
        parts.append(f"{ch} ({reason})")
    known = f"; known symbols: {', '.join(sorted(instruments))}" if instruments else ""
    return f"refused {', '.join(parts)}{known}"


async def fetch_instruments(rest_url: str, timeout_s: float = 10.0) -> dict[str, Instrument]:
    """``GET /v1/instruments`` (public): symbol -> Instrument, for asset classes and ticks."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s,
        s.get(rest_url.rstrip("/") + "/v1/instruments") as resp,
    ):
        body = await resp.read()
        if resp.status != 200:
            raise TickpipeError(f"GET /v1/instruments answered {resp.status}: {body[:200]!r}")
    return {i.symbol: i for i in frames.decode_instruments(body)}
