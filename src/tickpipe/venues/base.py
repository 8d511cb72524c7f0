"""What the generic client shell asks of a venue: a small sans-I/O interface. Pure.

A venue adapter (``venues/<name>/adapter.py``) builds what the shell sends (the frames to send
on open, subscribe and unsubscribe frames with request ids, REST targets) and decodes what it
receives (stream frames, REST bodies). It never does I/O: the shell (``tickpipe.client``)
connects, sends, fetches, times and retries, the same way for every venue.

The shell's hot path calls ``venue.decode(frame)`` once per text frame and routes the result by
type: a normalised value (``protocol.normalised``: BookDelta, TradeEvent, TickerEvent), one of
VTS/1's own frames (``protocol.frames``: its deltas carry channel, seq and checksum and take the
measured fast path straight to ``BookSync.on_delta``), or one of the control values below.

Control values (venue -> shell):

- :class:`Opened` / :class:`OpenRefused`: the answer to the frames sent on open (VTS/1: auth),
  for venues with ``awaits_open_answer``.
- :class:`Ack` / :class:`Refused`: the answer to a subscribe or unsubscribe frame, by request
  id (a venue that names channels in its answers, VTS/1, answers with its own frames).
- :class:`Closing`: the venue announced it will close the connection (reconnect now).
- :class:`Pong`: the answer to a client ping (the heartbeat watchdog counts every frame).
- :class:`ConnectionGap`: the connection's sequence skipped: every book re-seeds.

Optional attributes the shell reads with defaults (``client.venue``), so that venues without
them need not declare them: ``client_ping`` (bytes the shell sends as a text frame every
``client_ping_interval_s`` seconds; None: the venue pings, the shell never does) and
``resubscribes_per_s`` / ``resubscribe_burst`` (the token bucket over re-seeds by
re-subscribing, from the venue's subscribe-message limits), and ``weight_budget(depth)`` (a
:class:`WeightBudget`: a REST request-weight window, which the snapshot scheduler then spends
instead of the token bucket of ``snapshot_budget``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.sync import SyncRules


@dataclass(frozen=True, slots=True)
class Opened:
    """The link is up: ``session`` (may be empty), ``heartbeat_ms`` the venue's ping interval."""

    session: str
    heartbeat_ms: int


@dataclass(frozen=True, slots=True)
class OpenRefused:
    """The venue refused the open (bad credentials): fatal, never retried in a loop."""

    message: str


@dataclass(frozen=True, slots=True)
class Ack:
    """Request ``id`` succeeded: every channel it named, or only ``channel`` when the venue
    answers each channel of a request on its own (OKX); the request is done once each of its
    channels was answered."""

    id: int | str | None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """Request ``id`` failed as a whole: ``code`` and the venue's ``message``."""

    id: int | str | None
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to the client's own ping (venues whose client pings, OKX ``pong``)."""


@dataclass(frozen=True, slots=True)
class ConnectionGap:
    """The connection's own sequence skipped (``Continuity.CONNECTION``, Coinbase
    ``sequence_num``): a frame of unknown channel was lost, so every book is suspect."""


@dataclass(frozen=True, slots=True)
class Closing:
    """The venue will close this connection soon (Binance ``serverShutdown``)."""


@dataclass(frozen=True, slots=True)
class WeightBudget:
    """A venue's REST budget as request weight per window (Binance: 6000 a wall-clock minute),
    for ``depth``-level snapshots. Units are in the names.

    - ``weight_per_window``: weight the venue admits per window (per IP or key).
    - ``window_s``: the window's length; ``aligned``: windows start on multiples of
      ``window_s`` of the wall clock (Binance's minute), else at the first request after the
      previous window ended.
    - ``snapshot_weight``: weight of one snapshot at the depth asked; ``snapshot_levels``: the
      levels a side that snapshot carries (a book seeded by it is exact only to that many).
    - ``reserve_weight``: weight a window left unspent by snapshots, for the venue's other
      calls (instruments reloads).
    - ``used_weight_header``: the answer header carrying the weight used so far in the window
      (Binance ``X-MBX-USED-WEIGHT-1M``), or None.
    """

    weight_per_window: int
    window_s: float
    aligned: bool
    snapshot_weight: int
    snapshot_levels: int
    reserve_weight: int = 0
    used_weight_header: str | None = None


class Venue(Protocol):
    """One venue as the client shell sees it. Attributes are plain data; methods are pure.

    - ``name``: the ``--venue`` name, ``title`` for messages (``VTS/1``, ``Binance spot``).
    - ``checks_symbols_locally``: a channel whose symbol the instruments endpoint does not list
      is refused by the client (``unknown_instrument``) without asking the venue (Binance
      acknowledges an unknown stream and stays silent).
    - ``supports_orders``: the order calls work (else they
      raise :class:`~tickpipe.errors.UnsupportedError` naming the venue).
    - ``stream_base_url`` / ``rest_base_url``: documented base URLs (scheme, host, port);
      ``stream_path``: the documented path appended to the stream base (None: the stream URL
      the user gives is used whole, VTS/1 as before).
    - ``sends_key``: REST calls carry the API key (VTS/1); a public venue gets no key.
    - ``awaits_open_answer``: the link is up only once :meth:`decode_open` returned
      :class:`Opened`; else at once, with ``heartbeat_ms``.
    - ``heartbeat_ms``: the venue's server-ping interval when it is documented rather than
      announced (None: announced in :class:`Opened`).
    - ``auth_close_code``: a close code that means "credentials refused" (fatal), or None.
    - ``rate_limit_statuses``: HTTP statuses whose ``Retry-After`` pauses every fetch.
    """

    name: str
    title: str
    supports_orders: bool
    checks_symbols_locally: bool
    stream_base_url: str
    stream_path: str | None
    rest_base_url: str
    sends_key: bool
    awaits_open_answer: bool
    heartbeat_ms: int | None
    auth_close_code: int | None
    rate_limit_statuses: tuple[int, ...]
    decode: Callable[[Any], object]

    def parse_channel(self, channel: str) -> tuple[str, str]:
        """``KIND:SYMBOL`` -> (kind, symbol); ValueError naming the channel when it is not."""
        ...

    def open_frames(self, key: str, secret: str, ts_ms: int) -> list[bytes]: ...

    def decode_open(self, data: Any) -> Opened | OpenRefused | None: ...

    def subscribe_frame(self, channels: list[str], request_id: int) -> bytes | list[bytes]:
        """The frame (or frames, sent in order: one per channel kind where the venue wants
        that) subscribing ``channels`` as request ``request_id``."""
        ...

    def unsubscribe_frame(self, channels: list[str], request_id: int) -> bytes | list[bytes]: ...

    def cancel_on_disconnect_frame(self) -> bytes | None: ...

    def instruments_target(self) -> str: ...

    def decode_instruments(self, body: bytes) -> list[Instrument]: ...

    def snapshot_target(self, symbol: str, depth: int | None) -> str: ...

    def decode_snapshot(self, body: bytes, symbol: str) -> Snapshot: ...

    def snapshot_budget(
        self, depth: int | None, rate_per_s: float, burst: int
    ) -> tuple[float, int]:
        """The snapshot scheduler's token bucket (rate a second, burst) for ``depth``-level
        snapshots, given the configured ones."""
        ...

    def sync_rules(self, symbol: str) -> SyncRules: ...
