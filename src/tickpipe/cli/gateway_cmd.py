"""`tickpipe gateway`: run the reference gateway, VTS/1 or a venue dialect (wiring only; see
tickpipe.gateway and tickpipe.gateway.dialects)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import sys
from typing import Any

from tickpipe.errors import ConfigError
from tickpipe.gateway.dialects import DIALECTS, dialect_for_venue

EPILOG = """\
keys: --key-file PATH (KEY:SECRET lines, chmod 600) and/or --key, else TICKPIPE_KEY and
TICKPIPE_SECRET (both, or neither), else the demo pair demo/demo-secret (the client's default);
the gateway says which at start. --key and --admin-token show in `ps`: prefer --key-file, the
TICKPIPE_KEY/TICKPIPE_SECRET and TICKPIPE_ADMIN_TOKEN variables. The public demo pair is
refused on a non-loopback --host unless --allow-demo-key. Limits: docs/security.md.
admin API: http://127.0.0.1:ADMIN_PORT/admin/... with header X-Admin-Token (see docs/protocol.md).
tls: --tls-cert FILE --tls-key FILE (PEM; both or neither) serve the stream and REST as wss:// and
https:// (the URLs printed and in --ready-json say so; the admin API stays plain HTTP on loopback);
a client trusts a private CA with `tickpipe watch --ca-file CA.pem` (docs/security.md).
faults: --faults calm|flaky|chaos|FILE.json, then --fault NAME=VALUE (JSON value) on top, e.g.
  --fault drop_delta=0.01 --fault 'silence_channel=["ticker:AAPL"]' --fault snapshot_rate_limit=5
metrics: --metrics-port P serves tickpipe_gateway_* at http://127.0.0.1:P/metrics (0: any free
port, named at start and as "metrics_port" in --ready-json). --log-format json: stderr as one
JSON object a line (the admin token is then left out: take it from --ready-json or set it).
replay: --replay PATH... serves a recording (tickpipe record) instead of the simulator: its
symbols and grids, each synced book change one delta (exact), its trades; every --dialect and
fault applies; --speed X|max (1 = as recorded), --replay-loop starts over at the end (else the
final books stay served). The dialect defaults to the recording's venue. docs/recording.md.
dialects (the same markets in a venue's wire format; no orders or keys; the stream URL printed
is the base to pass as watch --stream-url; details docs/dialects.md):
  binance       Binance spot (BTC-USD -> BTCUSDT; /ws, /stream, /api/v3/depth, exchangeInfo;
                weight 6000/min, 429/418; pings every 20 s; 24 h connection age)
  binance-usdm  Binance USD-M futures (depth with pu links, aggTrade, bookTicker; /fapi/v1/depth;
                weight 2400/min; pings every 180 s)
  okx           OKX v5 public (BTC-USD -> BTC-USDT; /ws/v5/public books/trades/tickers with
                seqId/prevSeqId and checksums, text ping/pong, 30 s idle close)
  bybit         Bybit v5 public spot and linear (BTC-USD -> BTCUSDT; /v5/public/spot and
                /v5/public/linear orderbook.200/publicTrade/tickers with u, {"op":"ping"})
  kraken        Kraken spot WebSocket v2 (BTC-USD -> BTC/USD; /v2 book at depth 10-1000 with
                CRC-32 checksums, trade, ticker, heartbeats, ping/pong; /0/public/AssetPairs)
  coinbase      Coinbase Advanced Trade (BTC-USD; level2, market_trades, ticker, heartbeats;
                sequence_num per connection, no checksum)
  knobs: --dialect-option NAME=VALUE, e.g. max_connection_age_s=30.
"""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "gateway",
        help="run the reference VTS/1 gateway (a local venue with faults on demand)",
        description="Serve VTS/1 (stream + REST + orders) from simulated markets, or with "
        "--dialect the same markets in a venue's wire format, with faults that can be set at "
        "start or at run time through a loopback admin API.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="stream + REST port; 0 = any free (8765)")
    p.add_argument(
        "--admin-port", type=int, default=8766, help="admin API port on 127.0.0.1; 0 = any (8766)"
    )
    p.add_argument("--no-admin", action="store_true", help="do not serve the admin API")
    p.add_argument(
        "--admin-token",
        help="admin API token, visible in ps (default: $TICKPIPE_ADMIN_TOKEN, else random, "
        "printed at start)",
    )
    p.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY:SECRET",
        help="an API key and its secret, visible in ps; repeatable (default: --key-file, "
        "env, else demo:demo-secret)",
    )
    p.add_argument(
        "--key-file",
        metavar="PATH",
        help="KEY:SECRET lines (# comments); must not be readable by group or others",
    )
    p.add_argument(
        "--allow-demo-key",
        action="store_true",
        help="allow the public demo key pair on a non-loopback --host (anyone can sign)",
    )
    p.add_argument(
        "--dialect",
        default=None,
        choices=list(DIALECTS),
        help="wire format served: vts (VTS/1) or a venue's, named as --venue names it "
        "(docs/dialects.md) (vts; with --replay: the recording's venue)",
    )
    p.add_argument(
        "--dialect-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a knob of the dialect, e.g. ping_interval_s=5; repeatable (docs/dialects.md)",
    )
    p.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="serve the stream and REST over TLS (wss://, https://) with this PEM certificate "
        "chain; needs --tls-key (default: plain ws:// and http://; docs/security.md)",
    )
    p.add_argument(
        "--tls-key",
        metavar="FILE",
        help="the PEM private key of --tls-cert (keep it chmod 600; never logged)",
    )
    p.add_argument("--seed", type=int, default=1, help="market seed: same seed, same market (1)")
    p.add_argument(
        "--rate",
        default="20",
        help="orderbook deltas a second per instrument, up to 100000; 0 or 'max' = as fast "
        "as possible (20)",
    )
    p.add_argument(
        "--heartbeat-ms", type=int, default=5000, help="ping interval announced at auth (5000)"
    )
    p.add_argument("--depth", type=int, default=300, help="simulated levels a book side (300)")
    p.add_argument(
        "--faults", metavar="PROFILE", help="fault profile: calm, flaky, chaos or a JSON file"
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one fault setting (JSON value) on top of the profile; repeatable",
    )
    p.add_argument(
        "--replay",
        nargs="+",
        default=None,
        metavar="PATH",
        help="serve a recording (tickpipe record: part files or directories) instead of the "
        "simulator, over --dialect (any), with the usual faults; --rate/--seed/--depth do "
        "not apply (docs/recording.md)",
    )
    p.add_argument(
        "--speed",
        default=None,
        metavar="X|max",
        help="with --replay: X times the recorded pace, max = as fast as possible (1)",
    )
    p.add_argument(
        "--replay-loop",
        action="store_true",
        help="with --replay: start over at the end (default: keep serving the final books)",
    )
    p.add_argument(
        "--ready-json",
        action="store_true",
        help='print one JSON line {"event": "ready", ...} on stdout once serving',
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (INFO)",
    )
    from tickpipe.cli.logfmt import add_observe_args

    add_observe_args(p)
    p.set_defaults(func=run)


def _parse_rate(text: str) -> float:
    """``--rate``: a finite number 0..MAX_RATE, or ``max`` (= 0, as fast as possible)."""
    from tickpipe.gateway.config import MAX_RATE

    accepted = f"a number from 0 to {MAX_RATE:,.0f} (deltas/s per instrument) or 'max'"
    if text.strip().lower() == "max":
        return 0.0
    try:
        rate = float(text)
    except ValueError:
        raise ConfigError(f"--rate must be {accepted}, got {text!r}") from None
    if not (math.isfinite(rate) and 0 <= rate <= MAX_RATE):
        raise ConfigError(f"--rate must be {accepted}, got {text!r}")
    return rate


def _tls_files(cert: str | None, key: str | None) -> tuple[str | None, str | None]:
    """``--tls-cert``/``--tls-key``: both or neither, each a readable PEM file of its kind
    (ConfigError naming the flag and the file; the key's content is never echoed)."""
    if cert is None and key is None:
        return None, None
    if cert is None or key is None:
        given, missing = ("--tls-cert", "--tls-key") if key is None else ("--tls-key", "--tls-cert")
        raise ConfigError(f"{given} needs {missing} too (both or neither)")
    for flag, path, marker, what in (
        ("--tls-cert", cert, "-----BEGIN CERTIFICATE-----", "a PEM certificate chain"),
        ("--tls-key", key, "PRIVATE KEY-----", "a PEM private key"),
    ):
        try:
            with open(path, "rb") as f:
                head = f.read(1 << 20)
        except OSError as exc:
            raise ConfigError(
                f"{flag} {path!r}: cannot read it ({exc.strerror or type(exc).__name__})"
            ) from None
        if marker.encode() not in head:
            raise ConfigError(f"{flag} {path!r}: not {what}")
    return cert, key


def _parse_speed(text: str | None) -> float | None:
    """``--speed``: a finite number > 0 (1 = the recorded pace) or ``max`` (None)."""
    if text is None:
        return 1.0
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = -1.0
    if not (math.isfinite(speed) and speed > 0):
        raise ConfigError(f"--speed must be max or a number > 0 (1 = as recorded), got {text!r}")
    return speed


def _replay_dialect(paths: list[str]) -> str:
    """The recording's venue when the gateway speaks it, else vts (a bad path: vts, and the
    Gateway names the file)."""
    from tickpipe.record import format as fmt
    from tickpipe.record.reader import PartReader, find_parts

    try:
        venue = PartReader(find_parts(list(paths))[0]).header.venue
    except (ConfigError, fmt.FormatError, OSError, IndexError):
        return "vts"
    return dialect_for_venue(venue) or "vts"


def build_config(args: argparse.Namespace) -> Any:
    """A GatewayConfig from parsed arguments; ConfigError names the bad flag."""
    from tickpipe.gateway import FaultSettings, GatewayConfig, load_profile
    from tickpipe.gateway.config import parse_key_arg, read_key_file

    faults = load_profile(args.faults) if args.faults else FaultSettings()
    patch: dict[str, Any] = {}
    for item in args.fault:
        name, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--fault expects NAME=VALUE, got {item!r}")
        try:
            patch[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            patch[name.strip()] = raw  # a bare word, e.g. a channel name
    faults = faults.merged(patch)
    replay = tuple(args.replay or ())
    if not replay and (args.speed is not None or args.replay_loop):
        raise ConfigError("--speed and --replay-loop need --replay PATH")
    speed = _parse_speed(args.speed)
    dialect = args.dialect or (_replay_dialect(list(replay)) if replay else "vts")
    options: list[tuple[str, str]] = []
    for item in args.dialect_option:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--dialect-option expects NAME=VALUE, got {item!r}")
        options.append((name.strip(), raw.strip()))
    if options and dialect == "vts":
        raise ConfigError("--dialect-option needs a venue --dialect (vts has no options)")
    tls_cert, tls_key = _tls_files(args.tls_cert, args.tls_key)
    keys = tuple(parse_key_arg(k) for k in args.key)
    if args.key_file:
        keys = read_key_file(args.key_file) + keys
    return GatewayConfig(
        host=args.host,
        port=args.port,
        admin_port=None if args.no_admin else args.admin_port,
        admin_token=args.admin_token or os.environ.get("TICKPIPE_ADMIN_TOKEN") or None,
        keys=keys,
        allow_public_demo_key=args.allow_demo_key,
        seed=args.seed,
        rate=_parse_rate(args.rate),
        heartbeat_ms=args.heartbeat_ms,
        depth=args.depth,
        faults=faults,
        dialect=dialect,
        dialect_options=tuple(options),
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        replay_paths=replay,
        replay_speed=speed,
        replay_loop=args.replay_loop,
    )


def run(args: argparse.Namespace) -> int:
    from tickpipe.cli.logfmt import setup_logging

    try:
        config = build_config(args)
        config.tls_context()  # a chain and key that do not load (or match): exit 2, no port held
    except ConfigError as exc:
        text = str(exc).replace("tls_cert_file", "--tls-cert").replace("tls_key_file", "--tls-key")
        print(f"tickpipe gateway: {text}", file=sys.stderr)
        return 2
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        print(
            f"tickpipe gateway: --metrics-port must be 0..65535 (0: any free), "
            f"got {args.metrics_port}",
            file=sys.stderr,
        )
        return 2
    secrets = [secret for _, secret in config.keys]
    env_secret = os.environ.get("TICKPIPE_SECRET")
    setup_logging(args.log_format, args.log_level, secrets=[*secrets, env_secret])
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        runner = asyncio.run
    try:
        return int(
            runner(_serve(config, args.ready_json, args.metrics_port, args.log_format == "json"))
        )
    except KeyboardInterrupt:
        return 0


async def _serve(
    config: Any, ready_json: bool, metrics_port: int | None = None, json_logs: bool = False
) -> int:
    from tickpipe.cli.logfmt import log_event
    from tickpipe.client.prometheus import MetricsServer
    from tickpipe.gateway import Gateway
    from tickpipe.gateway.metrics import gateway_registry

    try:
        gw = Gateway(config)
    except ConfigError as exc:  # key pair half set, demo pair public, a bad --replay file
        print(f"tickpipe gateway: {exc}", file=sys.stderr)
        return 2
    try:
        await gw.start()
    except OSError as exc:
        # the stream site starts first and sets gw.port: still 0 means it was the stream's
        if gw.port == 0:
            where = f"{config.host}:{config.port} (stream + REST; --port changes it)"
        else:
            where = (
                f"127.0.0.1:{config.admin_port} (admin API; --admin-port changes it, "
                "--no-admin turns it off)"
            )
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        print(f"tickpipe gateway: cannot listen on {where}: {why}", file=sys.stderr)
        await gw.stop()
        return 1
    metrics = None
    if metrics_port is not None:
        metrics = MetricsServer(gateway_registry(gw), metrics_port)
        try:
            await metrics.start()
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            print(
                f"tickpipe gateway: cannot listen on 127.0.0.1:{metrics_port} "
                f"(--metrics-port): {why}",
                file=sys.stderr,
            )
            await gw.stop()
            return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    err = sys.stderr
    if json_logs:
        glog = logging.getLogger("tickpipe.gateway")
        log_event(
            glog,
            "listening",
            "serving",
            stream_url=gw.stream_url,
            rest_url=gw.rest_url,
            admin_url=gw.admin_url,
            metrics_url=metrics.url if metrics is not None else None,
            keys=sorted(gw.keys),
            key_source=gw.key_source,
            seed=config.seed,
            dialect=config.dialect,
            rate=config.rate,
            instruments=len(gw.instruments),
        )
    else:
        print(f"tickpipe gateway: stream {gw.stream_url}  REST {gw.rest_url}", file=err)
        print(
            f"tickpipe gateway: keys {', '.join(sorted(gw.keys))} (from {gw.key_source})", file=err
        )
        if gw.admin_url:
            print(
                f"tickpipe gateway: admin {gw.admin_url}  X-Admin-Token: {gw.admin_token}",
                file=err,
            )
        if metrics is not None:
            print(f"tickpipe gateway: metrics {metrics.url}", file=err)
        if config.replay_paths:
            speed = "max" if config.replay_speed is None else f"{config.replay_speed:g}x"
            print(
                f"tickpipe gateway: replaying {' '.join(config.replay_paths)} at {speed} "
                f"({'looping' if config.replay_loop else 'then serving the final books'}), "
                f"{len(gw.instruments)} instruments; Ctrl-C stops",
                file=err,
            )
        else:
            print(
                f"tickpipe gateway: seed {config.seed}, rate {config.rate or 'max'}/s per "
                f"instrument, {len(gw.instruments)} instruments; Ctrl-C stops",
                file=err,
            )
    if ready_json:
        ready = {
            "event": "ready",
            "stream_url": gw.stream_url,
            "rest_url": gw.rest_url,
            "admin_url": gw.admin_url,
            "admin_token": gw.admin_token,
            "key": gw.key,
            "key_source": gw.key_source,
            "port": gw.port,
            "admin_port": gw.admin_port,
            "metrics_port": metrics.port if metrics is not None else None,
            "seed": config.seed,
            "dialect": config.dialect,
            "rate": config.rate,
            "heartbeat_ms": config.heartbeat_ms,
            "symbols": [i.symbol for i in gw.instruments],
            "replay": list(config.replay_paths) or None,
            "pid": os.getpid(),
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        if metrics is not None:
            await metrics.stop()
        await gw.stop()
    return 0
