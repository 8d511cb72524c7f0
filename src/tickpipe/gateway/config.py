"""Gateway settings: one frozen :class:`GatewayConfig`, and where the API keys come from."""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tickpipe.errors import ConfigError
from tickpipe.gateway.dialects import DIALECTS
from tickpipe.gateway.faults import FaultSettings
from tickpipe.gateway.markets import DEFAULT_MARKETS, MarketSpec

DEMO_KEY = "demo"
DEMO_SECRET = "demo-secret"
MAX_RATE = 100_000.0
"""Highest ``rate`` (steps a second per instrument) accepted. One gateway process publishes at
most ~50,000 frames/s in all (README), so a higher pace could only be "as fast as possible",
which is ``rate`` 0; the bound keeps inf/nan and typos such as 1e9 out."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Every knob of the reference gateway, with its default and what it costs.

    - ``host`` ("127.0.0.1"), ``port`` (8765; 0 = any free port): stream + REST listener.
    - ``admin_port`` (8766; 0 = any free port; None = no admin API). Admin always binds
      127.0.0.1 and needs ``X-Admin-Token: admin_token`` (None = a random token at start).
    - ``keys``: ``((key, secret), ...)``; empty = :func:`resolve_keys` (env, else demo pair).
    - ``seed`` (1): seeds every market (and the fault dice): same seed, same market.
    - ``rate`` (20.0): orderbook delta frames a second per instrument; 0 = as fast as the
      slowest subscribed connection can take (pushes back on the producer, never drops).
      Tickers go out at most ``ticker_hz`` (10) a second; trades when the market trades.
      At most ``MAX_RATE`` (100,000). Either way the market task steps for at most
      ``MARKET_TURN_S`` (5 ms, server.py) before it yields, so signals and sockets are served
      at any pace; a market that cannot keep up logs ``market_behind`` and skips ahead.
    - ``heartbeat_ms`` (5000): WebSocket ping interval, announced at auth. A connection that
      answers no ping for ``pong_timeout_factor`` (2.5) x that is closed (4008) and counts as
      a disconnect for cancel_on_disconnect.
    - ``auth_timeout_s`` (5.0), ``max_skew_ms`` (5000): VTS/1 section 3 and 7.
    - ``max_channels`` (200), ``max_frame_bytes`` (65536), ``max_frames_per_s`` (50):
      section 1 limits. A frame above ``hard_frame_bytes`` (4 MiB) is not read at all: the
      WebSocket layer closes 1009.
    - ``max_queue_frames`` (10,000): outbound frames buffered per connection; a connection
      whose queue is full is closed 1008 ``slow consumer``. Worst case ~ 10,000 x 0.3 KiB =
      3 MiB a connection. With ``rate`` 0 the market waits for connections over half full,
      and closes one that has not drained for ``slow_consumer_s`` (2.0) seconds.
    - ``depth`` (300): simulated levels a side; ``history_deltas`` (10,000): deltas of truth
      kept per instrument for ``GET /admin/book?seq=`` (about 1-2 MiB an instrument).
    - ``markets``: the simulated instruments (default: 11 across crypto, equity, metal, fx).
    - ``faults``: initial :class:`FaultSettings` (default: none).
    - ``dialect`` ("vts"): the wire format served: ``vts`` (VTS/1) or a venue's
      (``binance``, ``okx``, ``binance-usdm``; docs/dialects.md). A venue dialect serves the
      same markets under the venue's symbols, no orders and no keys.
    - ``dialect_options`` (()): ``((name, value), ...)`` knobs of the dialect (for
      ``binance``: ``BinanceOptions``, ``okx``: ``OkxOptions``, ``binance-usdm``:
      ``BinanceUsdmOptions``, defaults = the venue's
      documented limits); an unknown name or a bad value is a ConfigError at start.
    - ``tls_cert_file`` / ``tls_key_file`` (None = plain ``ws://`` / ``http://``): PEM
      certificate chain and private key; both given = the stream + REST listener speaks TLS
      (``wss://`` / ``https://`` in ``stream_url`` / ``rest_url``), for rehearsing a client
      against a TLS venue (tests use a local CA). The admin API stays plain HTTP on loopback.
      Costs a TLS handshake per connection and encryption of every frame. A missing or bad
      file is a ConfigError naming the field at start.
    - ``replay_paths`` (() = simulate): recording parts or directories (``tickpipe record``)
      served instead of the simulator (``tickpipe gateway --replay``,
      :mod:`tickpipe.gateway.replay_source`): the markets are the recording's symbols, every
      wire format and fault applies. A missing, empty or corrupt recording is a ConfigError
      naming the file when the Gateway is built. Costs the recording's size in memory per
      part read (a part is read whole, kept compressed) and a copy of each book (the truth).
    - ``replay_speed`` (1.0): multiple of the recorded pace; None = as fast as the CPU allows
      (yielding every 5 ms; a slow connection is closed as usual, never waited for).
    - ``replay_loop`` (False): start the recording over at its end; False = keep serving the
      final books unchanged (log ``replay_end``) until stopped.

    Abuse limits (docs/security.md, "Gateway"):

    - ``replay_cache_entries`` (100,000): signatures (stream auth and signed REST) remembered
      for 2 x ``max_skew_ms`` to refuse replays; ~225 bytes each, so ~22 MiB when full. When
      full, signed calls get ``429`` / auth fails until entries expire (fail closed).
    - ``max_order_requests_per_s`` (100): signed ``/v1/orders`` place/list/get calls a key may
      make in any one-second window; over it ``429 rate_limited`` with ``Retry-After``.
      Cancels are not limited (a mass cancel is never throttled). 0 = no limit.
    - ``finished_orders_per_key`` (1,000): filled/cancelled orders kept per key (the oldest
      finished are forgotten, with their ``client_order_id``); with ``max_open_per_key``
      (1,000) it bounds ``GET /v1/orders`` and the order memory (~1 KiB an order).
    - ``max_connections_per_address`` (128): open TCP connections (stream + REST) from one IP
      address on the main port; the next gets ``503`` and is closed.
    - ``header_timeout_s`` (10.0): a connection that has not sent a complete first request
      head within this is aborted (slowloris).
    - ``idle_timeout_s`` (60.0): a kept-alive HTTP connection idle (or holding a partial next
      request) this long is closed; longer than aiohttp clients' 15 s pool keep-alive.
    - ``allow_public_demo_key`` (False): binding a non-loopback ``host`` while the public demo
      pair is a valid key is refused unless this is True.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    admin_port: int | None = 8766
    admin_token: str | None = field(default=None, repr=False)
    keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    seed: int = 1
    rate: float = 20.0
    ticker_hz: float = 10.0
    heartbeat_ms: int = 5000
    pong_timeout_factor: float = 2.5
    auth_timeout_s: float = 5.0
    max_skew_ms: int = 5000
    max_channels: int = 200
    max_frame_bytes: int = 65536
    hard_frame_bytes: int = 4 * 1024 * 1024
    max_frames_per_s: int = 50
    max_queue_frames: int = 10_000
    slow_consumer_s: float = 2.0
    depth: int = 300
    history_deltas: int = 10_000
    markets: tuple[MarketSpec, ...] = DEFAULT_MARKETS
    faults: FaultSettings = field(default_factory=FaultSettings)
    replay_cache_entries: int = 100_000
    max_order_requests_per_s: int = 100
    finished_orders_per_key: int = 1_000
    max_connections_per_address: int = 128
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0
    allow_public_demo_key: bool = False
    dialect: str = "vts"
    # not in the repr: an option may be a credential (OKX's passphrase)
    dialect_options: tuple[tuple[str, str | float | int], ...] = field(default=(), repr=False)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    replay_paths: tuple[str, ...] = ()
    replay_speed: float | None = 1.0
    replay_loop: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, value: object, what: str) -> None:
            if not ok:
                raise ConfigError(f"{name} must be {what}, got {value!r}")

        need(0 <= self.port <= 65535, "port", self.port, "0..65535")
        need(
            self.admin_port is None or 0 <= self.admin_port <= 65535,
            "admin_port",
            self.admin_port,
            "0..65535 or None",
        )
        need(
            0 <= self.rate <= MAX_RATE,
            "rate",
            self.rate,
            f"0..{MAX_RATE:,.0f} steps/s per instrument (0 = as fast as possible)",
        )
        need(self.ticker_hz > 0, "ticker_hz", self.ticker_hz, "> 0")
        need(self.heartbeat_ms >= 10, "heartbeat_ms", self.heartbeat_ms, ">= 10")
        need(self.pong_timeout_factor >= 1, "pong_timeout_factor", self.pong_timeout_factor, ">= 1")
        need(self.auth_timeout_s > 0, "auth_timeout_s", self.auth_timeout_s, "> 0")
        need(self.max_channels >= 1, "max_channels", self.max_channels, ">= 1")
        need(self.max_frame_bytes >= 256, "max_frame_bytes", self.max_frame_bytes, ">= 256")
        need(self.max_frames_per_s >= 1, "max_frames_per_s", self.max_frames_per_s, ">= 1")
        need(self.max_queue_frames >= 16, "max_queue_frames", self.max_queue_frames, ">= 16")
        need(10 <= self.depth <= 5000, "depth", self.depth, "10..5000")
        need(self.history_deltas >= 10, "history_deltas", self.history_deltas, ">= 10")
        need(len(self.markets) >= 1, "markets", self.markets, "non-empty")
        need(self.dialect in DIALECTS, "dialect", self.dialect, " or ".join(DIALECTS))
        need(
            self.replay_cache_entries >= 100,
            "replay_cache_entries",
            self.replay_cache_entries,
            ">= 100",
        )
        need(
            self.max_order_requests_per_s >= 0,
            "max_order_requests_per_s",
            self.max_order_requests_per_s,
            ">= 0 (0 = no limit)",
        )
        need(
            self.finished_orders_per_key >= 1,
            "finished_orders_per_key",
            self.finished_orders_per_key,
            ">= 1",
        )
        need(
            self.max_connections_per_address >= 1,
            "max_connections_per_address",
            self.max_connections_per_address,
            ">= 1",
        )
        need(self.header_timeout_s > 0, "header_timeout_s", self.header_timeout_s, "> 0")
        need(self.idle_timeout_s > 0, "idle_timeout_s", self.idle_timeout_s, "> 0")
        for key, secret in self.keys:
            need(bool(key) and bool(secret), "keys", (key, "***"), "non-empty key and secret")
        need(
            (self.tls_cert_file is None) == (self.tls_key_file is None),
            "tls_cert_file and tls_key_file",
            (self.tls_cert_file, self.tls_key_file),
            "both given or both None",
        )
        need(
            self.replay_speed is None or 0 < self.replay_speed < float("inf"),
            "replay_speed",
            self.replay_speed,
            "a number > 0 (1 = the recorded pace) or None (as fast as possible)",
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """The listener's TLS context (None without ``tls_cert_file``); ConfigError naming the
        field when a file is missing or not a PEM certificate chain / matching key."""
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        except (OSError, ssl.SSLError) as exc:  # never echo the key's content
            raise ConfigError(
                f"tls_cert_file {self.tls_cert_file!r} / tls_key_file {self.tls_key_file!r}: "
                f"cannot load a PEM certificate chain and its key ({type(exc).__name__}: "
                f"{exc.strerror or exc})"
            ) from None
        return ctx


def parse_key_arg(text: str) -> tuple[str, str]:
    """``"KEY:SECRET"`` -> (key, secret); ConfigError when either part is missing."""
    key, sep, secret = text.partition(":")
    if not sep or not key or not secret:
        # never echo the text whole: with no colon it may well be a secret pasted alone
        got = (
            "a value with no ':'"
            if not sep
            else "an empty KEY"
            if not key
            else f"key {key!r} with an empty SECRET"
        )
        raise ConfigError(
            f"--key expects KEY:SECRET, both non-empty (e.g. --key bot1:s3cret), got {got}"
        )
    return key, secret


def read_key_file(path: str) -> tuple[tuple[str, str], ...]:
    """``KEY:SECRET`` lines of a file (blank lines and ``#`` comments skipped).

    The file must not be accessible by group or others (``chmod 600``): a secrets file anyone
    on the machine can read is refused, as ssh does. ConfigError names the file and line, never
    a secret.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"--key-file {path}: {exc.strerror or exc}") from None
    if os.name == "posix" and st.st_mode & 0o077:
        raise ConfigError(
            f"--key-file {path}: permissions {stat.filemode(st.st_mode)} let group or others "
            f"access the secrets; run: chmod 600 {path}"
        )
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read(1024 * 1024).splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--key-file {path}: cannot read: {type(exc).__name__}") from None
    keys: list[tuple[str, str]] = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, secret = text.partition(":")
        if not sep or not key.strip() or not secret.strip():
            raise ConfigError(f"--key-file {path}: line {n} is not KEY:SECRET")
        keys.append((key.strip(), secret.strip()))
    if not keys:
        raise ConfigError(f"--key-file {path}: no KEY:SECRET line")
    return tuple(keys)


def resolve_keys(
    given: Sequence[tuple[str, str]], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], str]:
    """The key -> secret table and a phrase saying where it came from.

    Order: ``given`` (``--key`` / ``--key-file``), else ``TICKPIPE_KEY``/``TICKPIPE_SECRET``
    when both are set, else the demo pair ``demo``/``demo-secret`` (the client's default too).
    Only one of the two variables set is a ConfigError: the user meant their own key, and
    falling back to the public demo pair would serve it silently.
    """
    env = os.environ if environ is None else environ
    if given:
        return dict(given), "--key"
    key, secret = env.get("TICKPIPE_KEY"), env.get("TICKPIPE_SECRET")
    if key and secret:
        return {key: secret}, "TICKPIPE_KEY/TICKPIPE_SECRET"
    if key or secret:
        have, lack = (
            ("TICKPIPE_KEY", "TICKPIPE_SECRET") if key else ("TICKPIPE_SECRET", "TICKPIPE_KEY")
        )
        raise ConfigError(
            f"{have} is set but {lack} is not: set both (or neither, for the demo pair)"
        )
    return {DEMO_KEY: DEMO_SECRET}, "demo pair (no --key, no TICKPIPE_KEY/TICKPIPE_SECRET)"


def is_loopback(host: str) -> bool:
    """True for a host that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, keys: Mapping[str, str], allow_public_demo_key: bool) -> None:
    """ConfigError when a non-loopback ``host`` would accept the public demo pair."""
    if keys.get(DEMO_KEY) == DEMO_SECRET and not is_loopback(host) and not allow_public_demo_key:
        raise ConfigError(
            f"refusing to listen on {host!r} with the public demo key pair (anyone can sign "
            "with it): use your own key (--key-file, TICKPIPE_KEY/TICKPIPE_SECRET), a "
            "loopback --host, or --allow-demo-key to accept the risk"
        )
