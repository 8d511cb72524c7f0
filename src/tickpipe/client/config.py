"""Every knob of the client in one frozen, validated object.

Each field has a unit in its name, a concrete default, and a note on what it bounds and what it
costs. A bad value raises :class:`~tickpipe.errors.ConfigError` naming the field, at
construction: a typo or a negative timeout never passes silently.

Worst-case memory set by these knobs (per client):

- books: ``sync.max_buffered_deltas`` deltas per book while its snapshot is awaited
  (~0.4 KiB each: 10,000 x 200 books = ~800 MiB in the absolute worst case, only while every
  book awaits its snapshot with 10,000 of its deltas read meanwhile; a synced book buffers
  nothing, and under back-pressure the whole client reads ~76k frames/s, so one snapshot
  round trip of 100 ms buffers ~8k deltas across all books);
- user queues: ``event_queue_size`` events per ``events()`` iterator, ``data_queue_size``
  trades/tickers waiting for callbacks; book triggers are coalesced (one pending slot per book);
- the socket: ``max_frame_bytes`` for one frame in picows' read buffer.
- a fragmented message being reassembled: ``max_frame_bytes`` too;
- REST: ``max_rest_body_bytes`` per answer being read (``snapshot_concurrency`` of them at once
  at most for snapshots), and the objects of one decoded snapshot of at most
  ``max_snapshot_levels`` levels a side.
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass, field
from typing import Literal

from tickpipe.errors import ConfigError
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.protocol.sync import SyncConfig

CancelScope = Literal["own", "key", "none"]


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client TLS context (certificate and host name, TLS >= 1.2): the system's
    CA store (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured), or only the CAs of ``ca_file``.
    ConfigError naming ``ca_file`` when that file cannot be loaded."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"ca_file {ca_file!r}: cannot load CA certificates from it ({type(exc).__name__}: "
            f"{exc.strerror or exc})"
        ) from None


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


def _positive_int(name: str, value: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Client knobs. Pass them as keyword arguments to :class:`tickpipe.Client`.

    Connection
    - ``connect_timeout_s`` (5.0 s): TCP + WebSocket handshake, and again the wait for the
      auth answer. Longer only delays noticing a dead gateway.
    - ``first_connect_timeout_s`` (10.0 s): how long ``async with Client(...)`` keeps trying
      (with the reconnect backoff) before raising :class:`~tickpipe.errors.StreamError`.
    - ``heartbeat_timeout_factor`` (2.5): no gateway ping within this many ``heartbeat_ms``
      (announced at auth) = the link is dead (VTS/1 section 6). Lower finds a dead link
      sooner but risks false alarms on a loaded machine.
    - ``heartbeat_timeout_s`` (None): an absolute override of the above.
    - ``reconnect`` (base 0.5 s, cap 30 s, equal jitter, healthy after 10 s): section 8 delays.
    - ``cancel_on_disconnect`` (True): arm the gateway's dead man's switch after auth.
    - ``cancel_orders_on_blind`` ("own"): on going blind, cancel this client's own open orders
      by id ("own"), every open order of the key ("key", only when the key is this client's
      alone) or nothing ("none"). Costs one REST call per open order on each loss.
    - ``cancel_orders_on_gap`` (False): VTS/1 section 8 also goes blind "on a gap of a book
      that a strategy depends on": when True, a gap on ``orderbook:S`` cancels this client's
      own open orders in ``S`` (reported as ``orders_cancelled`` with scope ``gap:S``). Costs
      one REST call per such order on each gap.
    - ``dead_man_timeout_s`` (60.0 s; None: not armed): on a real venue with a dead man's
      switch (Binance USD-M, OKX, Bybit, Kraken: issue 17), the venue cancels every order of
      the key this long after our last refresh; the client refreshes it while the stream is
      healthy and stops when it goes blind, so orders die even if our network is what failed.
      Shorter: orders die sooner after a silent failure; costs one REST call (per symbol with
      orders, Binance USD-M) every refresh period of the venue (at most a third of this).
    - ``credentials_file`` (None): a JSON file (mode 0600) with a real venue's ``key``,
      ``secret`` and ``passphrase``, used when neither ``key=``/``secret=`` nor
      ``TICKPIPE_<VENUE>_KEY``/``_SECRET`` is set.
    - ``max_frame_bytes`` (1 MiB): a larger frame closes the connection (then reconnect).
    - ``read_slice_s`` (0.005 s): socket work per event-loop turn. Past it, the rest of a
      socket read is processed on later turns (reading paused meanwhile), so REST replies
      (snapshots), timers and user tasks are never stuck behind a flood: without it one read
      held 76,212 frames and blocked the loop 4.9 s. Lower: snappier REST and timers under a
      flood, a little more loop overhead; the rest of a read is copied (~0.1 µs a frame).
    - ``subscribe_timeout_s`` (10.0 s): wait for ``subscribed`` after a subscribe.
    - ``rotation_margin_s`` (600.0 s): for a venue that closes every connection at a fixed
      age (the adapter's ``max_connection_age_s``: Binance 24 h), the next connection is
      opened this long before the cut (at most half the age before it), every channel handed
      over to it and the old one closed by the client: no blind spell. Longer leaves more time
      for a failed try to be retried (every ``max(0.5, min(10, time left / 4))`` s); costs
      one more connection for the handover's few hundred ms, once per age.
    - ``rotation_handover_timeout_s`` (30.0 s): the most a rotation's handover waits for
      every channel to move to the new connection; then the rest move at once (a book that
      could not be joined by its update ids re-seeds, ``stale`` reason ``rotation``). Bounds
      the time two connections carry the same channels (twice the bytes meanwhile).
    - ``ca_file`` (None = the system's CA store): a PEM file of CA certificates that
      ``wss://`` and ``https://`` peers are verified against *instead of* the system store
      (a testnet or a local gateway behind a private CA). Certificates and host names are
      always verified: no setting turns that off. With None, OpenSSL's defaults apply, so
      ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` in the environment are honoured. An unreadable
      file or one without a certificate is a ConfigError at construction. Costs loading the
      CAs once per client (~25 ms for the system store), only for ``wss://`` / ``https://``.

    Books and channels
    - ``sync``: per-book :class:`~tickpipe.protocol.sync.SyncConfig` (keeps the newest 10,000
      deltas while seeding, checksum on, snapshot retry backoff 0.25 s..10 s).
    - ``stale_after_s`` (None = off): a channel silent longer than this while the socket is
      healthy is flagged ``stale`` (reason ``silent``); the book stays synced but not usable.
      Costs one check per channel every ``stale_after_s / 4``.
    - ``stream_snapshot_timeout_s`` (10.0 s): venues that send a book's snapshot on the stream
      after a subscribe (OKX): a book whose snapshot has not come this long after its
      (re)subscribe counts as a failed seed and is re-subscribed after the book's snapshot
      retry backoff. Bounds how long a lost snapshot leaves a book blind; shorter costs
      needless re-subscribes on a slow venue (each is two of OKX's 480 operations an hour).

    Snapshot scheduler (shared by every book; see ``client/snapshots.py``)
    - ``snapshot_concurrency`` (8): fetches in flight at once. One slow book holds one slot;
      also the most requests one 429 wave can refuse.
    - ``snapshot_rate_per_s`` (50.0) and ``snapshot_burst`` (50): token bucket over all
      fetches. 50 books seed at once and 200 in ~3 s. A 429 pauses every fetch for its
      ``Retry-After`` and halves the rate (doubling back after 30 s without one), so a
      gateway with a lower limit costs one refused wave, not a storm; set them under the
      gateway's limit for the key (``rate + burst`` within any 1 s) and none is refused.
      Books never synced are served before re-seeds of books that were.
    - ``snapshot_jitter_s`` (0.25 s): each fetch is delayed by U(0, this) so that clients that
      reconnect together do not fetch in lock step. Adds at most this to a re-seed.
    - ``snapshot_depth`` (None = whole book; Binance: 1000): depth asked for. A book seeded by
      N levels is exact only to those: ``BookView.exact_depth`` says N, ``usable(levels=L)``
      is False for L > N, ``final_book`` carries ``exact_depth``. Cheaper under a weight
      budget (Binance depth 100 weighs 5, not 50: 200 books seed in one window).
    - A venue with a request-weight window (Binance: ``weight_budget``) is spent window by
      window on top of the token bucket: up to the window's weight less the venue's reserve,
      corrected by its used-weight header; see ``client/snapshots.py``.

    REST
    - ``rest_timeout_s`` (10.0 s): per request, total.
    - ``order_retry`` (base 0.5 s, cap 5 s): background retries of cancels that failed while
      going blind, until they succeed or the client closes.

    Consumers (see ``client/dispatch.py``)
    - ``event_queue_size`` (10,000): events held per ``events()`` iterator; past it the oldest
      are dropped and an ``overflow`` event says how many.
    - ``data_queue_size`` (10,000): ticker/trade/state items waiting for callbacks; past it
      the oldest are dropped, counted and reported (``overflow``). Never stalls the socket.

    Against a hostile or broken gateway (docs/security.md)
    - ``max_rest_body_bytes`` (16 MiB): any REST answer body is read incrementally and refused
      past this (``RestError`` code ``body_too_large``, retried like a 5xx: a book backs off).
      Bounds the memory of one answer; a 10,000-level-a-side snapshot is ~0.6 MiB.
    - ``max_retry_after_s`` (60.0 s): a 429's ``Retry-After`` is clamped to this; a value that
      is not a finite number >= 0 (``inf``, ``nan``, ``-1``) counts as 1 s. Both are said in
      the ``snapshot_error`` message and logged once. Bounds how long one 429 pauses fetches.
    - ``max_snapshot_levels`` (10,000 a side): a snapshot with more levels on a side is refused
      (``snapshot_error``; the book backs off and asks again). Bounds the memory and the event
      loop time of decoding and applying one snapshot (real venues send <= 5,000).
    - ``max_fragmented_message_s`` (5.0 s): a fragmented message not complete within this
      closes the connection (then reconnect), as a message over ``max_frame_bytes`` does.
      Bounds how long a peer can hold the socket with no message delivered while pings flow.
    """

    connect_timeout_s: float = 5.0
    first_connect_timeout_s: float = 10.0
    heartbeat_timeout_factor: float = 2.5
    heartbeat_timeout_s: float | None = None
    reconnect: BackoffPolicy = field(default_factory=BackoffPolicy)
    cancel_on_disconnect: bool = True
    cancel_orders_on_blind: CancelScope = "own"
    cancel_orders_on_gap: bool = False
    max_frame_bytes: int = 1 << 20
    read_slice_s: float = 0.005
    subscribe_timeout_s: float = 10.0
    rotation_margin_s: float = 600.0
    rotation_handover_timeout_s: float = 30.0
    sync: SyncConfig = field(default_factory=SyncConfig)
    stale_after_s: float | None = None
    stream_snapshot_timeout_s: float = 10.0
    snapshot_concurrency: int = 8
    snapshot_rate_per_s: float = 50.0
    snapshot_burst: int = 50
    snapshot_jitter_s: float = 0.25
    snapshot_depth: int | None = None
    rest_timeout_s: float = 10.0
    order_retry: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(base_s=0.5, cap_s=5.0, healthy_after_s=0.0)
    )
    event_queue_size: int = 10_000
    data_queue_size: int = 10_000
    max_rest_body_bytes: int = 16 << 20
    max_retry_after_s: float = 60.0
    max_snapshot_levels: int = 10_000
    max_fragmented_message_s: float = 5.0
    ca_file: str | None = None
    dead_man_timeout_s: float | None = 60.0
    credentials_file: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "connect_timeout_s",
            "first_connect_timeout_s",
            "heartbeat_timeout_factor",
            "subscribe_timeout_s",
            "snapshot_rate_per_s",
            "read_slice_s",
            "rest_timeout_s",
            "stream_snapshot_timeout_s",
            "rotation_margin_s",
            "rotation_handover_timeout_s",
        ):
            _positive(name, getattr(self, name))
        for opt in ("heartbeat_timeout_s", "stale_after_s", "dead_man_timeout_s"):
            v = getattr(self, opt)
            if v is not None:
                _positive(opt, v)
        for iname in (
            "max_frame_bytes",
            "snapshot_concurrency",
            "snapshot_burst",
            "event_queue_size",
            "data_queue_size",
        ):
            _positive_int(iname, getattr(self, iname))
        if self.snapshot_depth is not None:
            _positive_int("snapshot_depth", self.snapshot_depth)
        if not (
            isinstance(self.snapshot_jitter_s, int | float)
            and math.isfinite(self.snapshot_jitter_s)
            and self.snapshot_jitter_s >= 0
        ):
            raise ConfigError(f"snapshot_jitter_s must be >= 0, got {self.snapshot_jitter_s!r}")
        if self.cancel_orders_on_blind not in ("own", "key", "none"):
            raise ConfigError(
                "cancel_orders_on_blind must be 'own', 'key' or 'none', "
                f"got {self.cancel_orders_on_blind!r}"
            )
        if not isinstance(self.reconnect, BackoffPolicy):
            raise ConfigError(f"reconnect must be a BackoffPolicy, got {self.reconnect!r}")
        if not isinstance(self.order_retry, BackoffPolicy):
            raise ConfigError(f"order_retry must be a BackoffPolicy, got {self.order_retry!r}")
        if not isinstance(self.sync, SyncConfig):
            raise ConfigError(f"sync must be a SyncConfig, got {self.sync!r}")
        for hname in ("max_rest_body_bytes", "max_snapshot_levels"):
            _positive_int(hname, getattr(self, hname))
        for fname in ("max_retry_after_s", "max_fragmented_message_s"):
            _positive(fname, getattr(self, fname))
        if self.ca_file is not None:
            if not (isinstance(self.ca_file, str) and self.ca_file):
                raise ConfigError(f"ca_file must be a path to a PEM file, got {self.ca_file!r}")
            tls_context(self.ca_file)  # a bad file fails here, not at the first connection

    def heartbeat_timeout(self, heartbeat_ms: int) -> float:
        """Seconds without a ping that make the link dead, for the announced interval."""
        if self.heartbeat_timeout_s is not None:
            return self.heartbeat_timeout_s
        return heartbeat_ms / 1000.0 * self.heartbeat_timeout_factor

    @classmethod
    def from_kwargs(cls, **knobs: object) -> ClientConfig:
        """Build from keyword arguments; an unknown name is a ConfigError naming it."""
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(knobs) - names)
        if unknown:
            raise ConfigError(
                f"unknown client setting(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(names))}"
            )
        return cls(**knobs)  # type: ignore[arg-type]
