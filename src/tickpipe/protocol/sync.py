"""Snapshot-and-delta synchronisation of one order book (VTS/1 section 5). Pure: no I/O.

The shell feeds it inputs and carries out what it asks::

    start()                      -> SnapshotRequest(delay_s=0)             IDLE|STALE -> SYNCING
    on_delta(seq, bids, asks, cs)-> DeltaResult                            SEEDING|LIVE
    on_snapshot(epoch, seq, b, a)-> bool (False: late, ignored)            SEEDING, same epoch
    on_snapshot_failed(epoch, ..)-> bool; a new SnapshotRequest after backoff   SEEDING, same epoch
    on_bad_frame(reason)         -> gap "bad_frame"                         SEEDING|LIVE
    on_overflow()                -> gap "overflow"                          SEEDING|LIVE
    on_stream_lost(reason)       -> STALE (book kept for display, not synced)   any
    stop()                       -> IDLE (unsubscribed)                     any

(SEEDING = SYNCING or RESYNCING.) Any other input in any other state raises IllegalTransition
naming the state and the input; late snapshots are not illegal, they are counted and ignored.

Transitions::

    IDLE --start--> SYNCING --snapshot bridged--> LIVE --gap|checksum|bad|overflow--> RESYNCING
    RESYNCING --snapshot bridged--> LIVE;  any --stream lost--> STALE --start--> SYNCING

SYNCING and RESYNCING behave the same (buffer deltas, wait for a snapshot); they differ only so
that readers can tell a first seed from a recovery. Each seeding has an ``epoch``; a snapshot or
failure tagged with an older epoch is ignored (counted in ``late_snapshots``).

The buffer of a seeding book keeps the NEWEST ``max_buffered_deltas`` deltas: a snapshot at seq
``S`` needs only the deltas after ``S``, so past the bound the oldest is dropped (counted in
``stats.trimmed``), never the whole buffer, and that is not a gap. A snapshot is unbridgeable
(gap ``stale_snapshot``) only when it is older than the oldest delta kept. A snapshot newer than
every delta kept is the normal case when the client reads behind the gateway (under
back-pressure the snapshot is taken at the gateway's present, the socket still carries its
past): the book goes LIVE at ``S`` and the deltas ``<= S`` still in the socket are dropped as
duplicates as they arrive. So time a request spends queued, or a client slower than the stream,
costs no gap; only a snapshot service that lags the stream by more than the buffer does.

While SYNCING or RESYNCING exactly one snapshot request (the current epoch) is outstanding: the
shell answers each request with ``on_snapshot`` or ``on_snapshot_failed``. A gap, bad frame or
overflow while buffering therefore restarts the buffer but asks for no second snapshot: the one
in flight may still bridge, and if not the bridging check re-fetches with backoff. That, and
the rule below, is what keeps recovery from storming the snapshot endpoint:

- a LIVE book that breaks after a healthy spell (``healthy_after_deltas`` deltas applied since
  it synced) re-fetches at once and resets the backoff;
- a book that breaks sooner (or whose snapshot cannot be bridged, or fails) waits the next
  backoff delay (``snapshot_retry``: 0.25 s doubling to 10 s, jittered);
- after ``max_stale_snapshots`` unbridgeable snapshots in a row the buffer is dropped, so a
  bogus seq far ahead cannot wedge the book.

Events (:class:`SnapshotRequest`, :class:`Synced`, :class:`Gap`, :class:`StateChanged`) are
appended to ``events``; the shell drains them with :meth:`take_events` after each input.

Venues (:class:`SyncRules`): the inputs above are VTS/1's (``seq`` + 1, REST snapshots, the
section-5 CRC-32), and :meth:`BookSync.on_delta` is its fast path. A venue book is built with
its own rules and fed through :meth:`BookSync.on_update` (any
:class:`~tickpipe.protocol.normalised.Continuity`: the ids of a delta are checked by
``protocol.continuity``; the venue's checksum function; a fixed depth the book is truncated to)
and, for venues that seed in band, :meth:`BookSync.on_stream_snapshot`:

- ``Seeding.REST``: as above (buffer the newest deltas, bridge a fetched snapshot).
- ``Seeding.IN_BAND``: the venue sends the snapshot on the stream after a subscribe. A break
  asks the shell to re-subscribe that one channel (:class:`ResubscribeRequest`, with the same
  backoff rules as a snapshot request); deltas before the snapshot are dropped (counted in
  ``stats.pre_snapshot``); a snapshot while LIVE replaces the book (a venue reset).
- ``Continuity.NONE``: no ids, so no gap can be seen in them: the checksum is the integrity
  check, and the book's ``seq`` stays None. ``CONNECTION``: the ids are checked by the
  connection, which calls :meth:`BookSync.on_connection_gap` on every book when one skips.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Literal, get_args

from tickpipe.errors import ConfigError, IllegalTransition
from tickpipe.protocol.backoff import Backoff, BackoffPolicy
from tickpipe.protocol.book import Level, OrderBook
from tickpipe.protocol.continuity import Step, bridges_ids, follows_ids
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import Continuity, Seeding

GapReason = Literal["seq_gap", "checksum", "bad_frame", "overflow", "stale_snapshot"]
GAP_REASONS: tuple[GapReason, ...] = get_args(GapReason)


class SyncState(StrEnum):
    IDLE = "idle"
    SYNCING = "syncing"
    LIVE = "live"
    RESYNCING = "resyncing"
    STALE = "stale"


class DeltaResult(Enum):
    """What became of a delta. GAP: this delta revealed a gap or a bad checksum (a Gap event
    was emitted); a delta that revealed a seq gap is kept as the first of the new buffer."""

    APPLIED = "applied"
    BUFFERED = "buffered"
    DUPLICATE = "duplicate"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Per-book knobs.

    - ``max_buffered_deltas`` (10,000): deltas held while a snapshot is awaited; past it the
      oldest is dropped (the newest are what a snapshot needs). A snapshot bridges when it is at
      most this many deltas older than the newest delta read, so it bounds how far a snapshot
      service may lag the stream, or how many deltas of one book the client may read during one
      snapshot round trip (at 76k frames/s on one hot book: ~130 ms). About 430 B a delta of
      1-4 levels a side, so ~4 MiB a book at most, only while its snapshot is awaited.
    - ``max_buffered_levels`` (20,000): the same bound counted in price levels (all deltas
      kept, both sides; ~170 B a level), so that deltas carrying many levels each cannot grow
      one book's buffer past ~3.4 MiB. Whichever bound is reached first trims.
    - ``verify_checksum`` (True): check each delta's CRC-32; costs a few µs a delta.
    - ``snapshot_retry`` (base 0.25 s, cap 10 s, equal jitter): delay between re-fetches of a
      failed or unbridgeable snapshot, and before re-seeding a book that broke again soon after
      it synced. Retries go on while subscribed; the cap bounds their rate (>= 1 per 5 s..15 s).
    - ``healthy_after_deltas`` (10): deltas a LIVE book must apply before its next break is
      re-seeded at once (and the backoff reset); a break sooner than that waits the backoff.
    - ``max_stale_snapshots`` (5): unbridgeable snapshots in a row after which the buffer is
      dropped and buffering starts afresh ("bounded tries", section 5 step 3). Keeping the
      buffer lets a lagging snapshot service catch up; dropping it after a bound un-wedges a
      buffer whose first delta no snapshot can reach (a bogus seq far ahead). The backoff is
      not reset, so the tries after a drop are the slow ones and give a lagging service time.
      A snapshot that would have bridged but for deltas this book trimmed (its own bound, not
      the service's lag) is asked for again at once, without growing the backoff, for the first
      ``max_stale_snapshots - 1`` tries in a row; after that the backoff applies as usual.
    """

    max_buffered_deltas: int = 10_000
    max_buffered_levels: int = 20_000
    verify_checksum: bool = True
    snapshot_retry: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(base_s=0.25, cap_s=10.0, healthy_after_s=0.0)
    )
    healthy_after_deltas: int = 10
    max_stale_snapshots: int = 5

    def __post_init__(self) -> None:
        if type(self.max_buffered_deltas) is not int or self.max_buffered_deltas < 1:
            raise ConfigError(f"max_buffered_deltas must be >= 1, got {self.max_buffered_deltas!r}")
        if type(self.max_buffered_levels) is not int or self.max_buffered_levels < 1:
            raise ConfigError(f"max_buffered_levels must be >= 1, got {self.max_buffered_levels!r}")
        if type(self.max_stale_snapshots) is not int or self.max_stale_snapshots < 1:
            raise ConfigError(
                f"max_stale_snapshots must be an int >= 1, got {self.max_stale_snapshots!r}"
            )
        if type(self.healthy_after_deltas) is not int or self.healthy_after_deltas < 0:
            raise ConfigError(
                f"healthy_after_deltas must be an int >= 0, got {self.healthy_after_deltas!r}"
            )


@dataclass(frozen=True, slots=True)
class SyncRules:
    """How one venue keeps a book exact (the defaults are VTS/1's).

    - ``continuity``: how an update proves it follows the last (``protocol.continuity``).
    - ``seeding``: REST snapshot fetched by the shell, or IN_BAND (sent after a subscribe).
    - ``checksum``: the venue's function of the book AFTER an update (None: the venue has
      none; deltas then carry None). VTS/1: :meth:`OrderBook.checksum` (cached top 10).
    - ``depth``: the venue keeps a book this deep and does not re-send levels pushed out of it
      (Kraken): the local book is truncated to it after each update. None: the whole book.
    """

    continuity: Continuity = Continuity.SEQ
    seeding: Seeding = Seeding.REST
    checksum: Callable[[OrderBook], int] | None = OrderBook.checksum
    depth: int | None = None

    def __post_init__(self) -> None:
        if self.depth is not None and (type(self.depth) is not int or self.depth < 1):
            raise ConfigError(f"depth must be an int >= 1 or None, got {self.depth!r}")
        if self.seeding is Seeding.REST and self.continuity in (
            Continuity.NONE,
            Continuity.CONNECTION,
        ):
            raise ConfigError(
                f"continuity {self.continuity.value!r} cannot bridge a REST snapshot (no per-book "
                "ids to tell which buffered updates it covers): use in-band seeding"
            )


VTS1_RULES = SyncRules()

# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """Fetch a snapshot after ``delay_s`` and report it with ``epoch``.

    ``attempt`` counts the backed-off tries so far (0 for an immediate fetch after health).
    ``first_seed`` is True while the book has never been synced: a scheduler serves those
    before re-seeds of books that were (a bot waiting for its first book waits for nothing).
    """

    channel: str
    epoch: int
    delay_s: float
    attempt: int
    first_seed: bool = False


@dataclass(frozen=True, slots=True)
class ResubscribeRequest:
    """IN_BAND seeding: unsubscribe and subscribe ``channel`` again after ``delay_s`` (the venue
    then sends a fresh snapshot); ``epoch`` tags the seeding as a SnapshotRequest does."""

    channel: str
    epoch: int
    delay_s: float
    attempt: int
    first_seed: bool = False


@dataclass(frozen=True, slots=True)
class Synced:
    """``seq`` is the book's update id (None where the venue has none: Kraken)."""

    channel: str
    seq: int | None
    epoch: int


@dataclass(frozen=True, slots=True)
class Gap:
    """The book was found corrupt (or a snapshot could not be bridged).

    ``expected``/``got`` are sequence numbers (next expected seq, seq received), except for
    ``checksum``, where they are the frame's CRC-32 and the locally computed one.
    """

    channel: str
    reason: GapReason
    expected: int | None
    got: int | None


@dataclass(frozen=True, slots=True)
class StateChanged:
    """``seq`` is the book's seq after the change (None when the book holds none)."""

    channel: str
    old: SyncState
    new: SyncState
    reason: str
    seq: int | None = None


SyncEvent = SnapshotRequest | ResubscribeRequest | Synced | Gap | StateChanged

_BufferedDelta = tuple[int, list[Level], list[Level], int | None]
# a venue update as buffered: (first_id, last_id, prev_id, bids, asks, checksum)
_BufferedUpdate = tuple[int | None, int | None, int | None, list[Level], list[Level], int | None]
_NO_SEQ = -1  # "no delta trimmed yet" (seqs are >= 0)


class BookSync:
    """Synchronises one ``orderbook:`` channel. See the module docstring."""

    __slots__ = (
        "_backoff",
        "_bridging",
        "_buffer",
        "_buffered_levels",
        "_live_applied",
        "_max_buffer",
        "_max_levels",
        "_rules",
        "_stale_tries",
        "_trimmed_seq",
        "_updates",
        "_vts_route",
        "book",
        "channel",
        "config",
        "epoch",
        "events",
        "ever_synced",
        "seq",
        "state",
        "stats",
    )

    def __init__(
        self,
        channel: str,
        instrument: Instrument,
        random: Callable[[], float],
        config: SyncConfig | None = None,
        rules: SyncRules = VTS1_RULES,
    ) -> None:
        self.channel = channel
        self.config = config or SyncConfig()
        self._rules = rules
        # VTS/1's rules exactly: a venue update is a VTS/1 delta (on_delta: its seq, its
        # CRC-32 of the top 10, no depth). Any other checksum function or a depth goes the
        # venue route, which honours both.
        self._vts_route = (
            rules.continuity is Continuity.SEQ
            and rules.seeding is Seeding.REST
            and rules.checksum is VTS1_RULES.checksum
            and rules.depth is None
        )
        self._updates: deque[_BufferedUpdate] = deque()  # on_update's buffer (REST seeding)
        # LIVE at a REST snapshot with no update applied since: the next update is checked with
        # the bridging rule (Binance: U <= S + 1 <= u), not the following one (U == S + 1)
        self._bridging = False
        self.book = OrderBook(instrument)
        self.state = SyncState.IDLE
        self.seq: int | None = None  # seq of the last delta reflected in the book (when synced)
        self.epoch = 0
        self.events: list[SyncEvent] = []
        self.stats = SyncStats()
        self._buffer: deque[_BufferedDelta] = deque()
        self._max_buffer = self.config.max_buffered_deltas
        self._max_levels = self.config.max_buffered_levels
        self._buffered_levels = 0  # levels in the buffer, both sides
        self._trimmed_seq = _NO_SEQ  # newest seq trimmed from the buffer this seeding
        self._backoff = Backoff(self.config.snapshot_retry, random)
        self._live_applied = 0  # deltas applied since the book last became LIVE
        self._stale_tries = 0  # unbridgeable snapshots in a row for the current buffer
        self.ever_synced = False  # has this book been LIVE since it was created?

    # -- queries ----------------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        return self.state is SyncState.LIVE

    @property
    def buffered(self) -> int:
        return len(self._buffer) + len(self._updates)

    def take_events(self) -> list[SyncEvent]:
        ev = self.events
        self.events = []
        return ev

    # -- inputs -----------------------------------------------------------------------------
    @property
    def rules(self) -> SyncRules:
        return self._rules

    def start(self) -> SnapshotRequest | None:
        """Subscription (re)confirmed: clear the book and ask for a snapshot at once (REST
        seeding; in band the subscription itself brings it: None, a new epoch all the same)."""
        if self.state is not SyncState.IDLE and self.state is not SyncState.STALE:
            raise IllegalTransition("BookSync", self.state.value, "start")
        self._backoff.reset()
        self.book.clear()
        self.seq = None
        self._clear_buffer()
        self._stale_tries = 0
        self._to(SyncState.SYNCING, "subscribed")
        if self._rules.seeding is Seeding.IN_BAND:
            self.epoch += 1
            return None
        req = self._request(delay_s=0.0)
        assert isinstance(req, SnapshotRequest)
        return req

    def on_delta(
        self, seq: int, bids: list[Level], asks: list[Level], checksum: int | None
    ) -> DeltaResult:
        """One decoded delta of this channel. Returns what became of it."""
        state = self.state
        if state is SyncState.LIVE:
            last = self.seq
            assert last is not None
            if seq == last + 1:
                self.book.apply(bids, asks)
                return self._applied(seq, checksum)
            if seq <= last:
                self.stats.duplicates += 1
                return DeltaResult.DUPLICATE
            self._break_live("seq_gap", last + 1, seq, keep=(seq, bids, asks, checksum))
            return DeltaResult.GAP
        if state is SyncState.SYNCING or state is SyncState.RESYNCING:
            return self._buffer_delta(seq, bids, asks, checksum)
        raise IllegalTransition("BookSync", state.value, "delta")

    def on_delta_texts(
        self,
        seq: int,
        raw_bids: Sequence[Sequence[str]],
        raw_asks: Sequence[Sequence[str]],
        checksum: int | None,
    ) -> DeltaResult | None:
        """:meth:`on_delta`'s common case in one compiled step: LIVE, the next seq, the levels
        still the wire's texts (``OrderBook.apply_texts``). None, with nothing changed, when
        that does not apply (another state or seq, the pure path, a level the compiled parser
        declines): the caller then parses the levels and calls :meth:`on_delta`, which decides
        (and whose parse error names the bad level)."""
        if self.state is not SyncState.LIVE or seq - 1 != self.seq:
            return None
        if checksum is not None and self.config.verify_checksum:
            local = self.book.apply_texts_checksum(raw_bids, raw_asks)  # apply + CRC, one call
            if local is None:
                return None
            return self._counted(seq, checksum, local)
        if not self.book.apply_texts(raw_bids, raw_asks):
            return None
        return self._counted(seq, None, None)

    def _applied(self, seq: int, checksum: int | None) -> DeltaResult:
        """The next delta (``seq``) was applied to the LIVE book: check its CRC, count it."""
        local = None
        if checksum is not None and self.config.verify_checksum:
            local = self.book.checksum()
        return self._counted(seq, checksum, local)

    def _counted(self, seq: int, checksum: int | None, local: int | None) -> DeltaResult:
        """Count the applied delta ``seq``; ``local``: the book's CRC to hold against
        ``checksum`` (None: not checked)."""
        self.seq = seq
        self.stats.applied += 1
        self._live_applied += 1
        if local is not None and local != checksum:
            self._break_live("checksum", checksum, local, keep=None)
            return DeltaResult.GAP
        return DeltaResult.APPLIED

    def on_snapshot(self, epoch: int, seq: int, bids: list[Level], asks: list[Level]) -> bool:
        """A snapshot fetched for ``epoch`` arrived. Returns False when it was ignored (late)."""
        if epoch != self.epoch or not self._seeding():
            self.stats.late_snapshots += 1
            return False
        if not self._vts_route:  # the venue route buffered venue updates
            return self._snapshot_updates(seq, bids, asks)
        buf = self._buffer
        while buf and buf[0][0] <= seq:
            _, d_bids, d_asks, _ = buf.popleft()
            self._buffered_levels -= len(d_bids) + len(d_asks)
        if buf and buf[0][0] > seq + 1:
            self._stale_snapshot(seq, buf[0][0])
            return True
        self._stale_tries = 0
        book = self.book
        book.load(bids, asks)
        self.seq = seq
        pending = self._buffer
        self._buffer = deque()
        self._buffered_levels = 0
        self._trimmed_seq = _NO_SEQ
        verify = self.config.verify_checksum
        for d_seq, d_bids, d_asks, d_cs in pending:  # contiguous from seq+1 by construction
            book.apply(d_bids, d_asks)
            self.seq = d_seq
            self.stats.applied += 1
            if d_cs is not None and verify:
                local = book.checksum()
                if local != d_cs:
                    # this snapshot cannot be trusted to bridge: back off before the next one
                    self._count_break("checksum")
                    self._emit(Gap(self.channel, "checksum", d_cs, local))
                    self._clear_book()
                    if self.state is not SyncState.RESYNCING:
                        self._to(SyncState.RESYNCING, "checksum")
                    self._request(delay_s=self._backoff.next_delay())
                    return True
        self._live_applied = 0
        self.ever_synced = True
        self._to(SyncState.LIVE, "snapshot")
        self._emit(Synced(self.channel, self.seq, self.epoch))
        return True

    def on_snapshot_failed(self, epoch: int, retry_after_s: float | None = None) -> bool:
        """The fetch for ``epoch`` failed; ask again after backoff (at least ``retry_after_s``).

        Returns False when the failure was for an earlier epoch (ignored).
        """
        if epoch != self.epoch or not self._seeding():
            self.stats.late_snapshots += 1
            return False
        self.stats.snapshot_failures += 1
        delay = self._backoff.next_delay()
        if retry_after_s is not None and retry_after_s > delay:
            delay = float(retry_after_s)
        self._request(delay_s=delay)
        return True

    def on_bad_frame(self, reason: str = "bad_frame") -> None:
        """A frame of this channel could not be decoded: a delta is lost, so the book is too.

        LIVE: the book breaks (gap ``bad_frame``). While buffering: the buffer restarts and
        the snapshot in flight still counts. ``reason`` is carried in the StateChanged event.
        """
        self._lost_deltas("bad_frame", reason)

    def on_source_gap(self, expected: int | None, got: int | None) -> None:
        """The source numbered this book's updates and skipped (a bus consumer): LIVE, the
        book breaks (gap ``seq_gap`` with the source's numbers) and asks for a re-seed; while
        seeding, the seed is asked for again (backed off). IDLE or STALE: nothing to lose."""
        state = self.state
        if state is SyncState.LIVE:
            self._break_live("seq_gap", expected, got, keep=None)
        elif self._seeding():
            self._lost_deltas("seq_gap", "seq_gap")

    def on_source_unsynced(self, reason: str) -> None:
        """The source's own book is no longer exact (``reason`` its own): not synced at once,
        cleared, and no re-seed asked for: the source sends a whole book when it has one
        again (a bus collector's reset snapshot, in band). IDLE or STALE: a no-op."""
        state = self.state
        if state is SyncState.IDLE or state is SyncState.STALE:
            return
        self._clear_buffer()
        self._clear_book()
        self.epoch += 1  # a re-seed asked for earlier is moot
        self._to(SyncState.RESYNCING, reason)

    def on_overflow(self) -> None:
        """A bound upstream of this book was exceeded and deltas of this channel were lost.

        LIVE: the book breaks (gap ``overflow``). While buffering: the buffer restarts. (The
        book's own buffer bound is not an overflow: it drops its oldest deltas, see above.)
        """
        self._lost_deltas("overflow", "overflow")

    def on_stream_lost(self, reason: str) -> None:
        """The stream is gone: not synced at once. The levels stay for display until start()."""
        if self.state is SyncState.IDLE or self.state is SyncState.STALE:
            return
        self._clear_buffer()
        self.epoch += 1  # any snapshot in flight is now late
        self._to(SyncState.STALE, reason)

    def stop(self) -> None:
        """Unsubscribed: forget everything."""
        self._clear_buffer()
        self._clear_book()
        self.epoch += 1
        if self.state is not SyncState.IDLE:
            self._to(SyncState.IDLE, "unsubscribed")

    # -- venues: any continuity rule, in-band seeding, the venue's checksum ---------------------
    def on_update(
        self,
        bids: list[Level],
        asks: list[Level],
        last_id: int | None,
        first_id: int | None = None,
        prev_id: int | None = None,
        checksum: int | None = None,
    ) -> DeltaResult:
        """One decoded venue update of this channel (ids as its continuity rule needs them;
        ``checksum``: the venue's value for the book after it, None for no check). A missing id
        is a FrameError from ``protocol.continuity``: the shell reports it as a bad frame."""
        rules = self._rules
        if self._vts_route:
            if last_id is None:
                follows_ids(Continuity.SEQ, 0, None, None, None, self.channel)  # raises
                raise AssertionError("unreachable")
            return self.on_delta(last_id, bids, asks, checksum)
        state = self.state
        if state is SyncState.LIVE:
            if self.seq is None:
                step = Step.NEXT
            elif self._bridging:  # the snapshot may fall inside this update's range
                step = bridges_ids(
                    rules.continuity, self.seq, first_id, last_id, prev_id, self.channel
                )
            else:
                step = follows_ids(
                    rules.continuity, self.seq, first_id, last_id, prev_id, self.channel
                )
            if step is Step.COVERED:
                self.stats.duplicates += 1
                return DeltaResult.DUPLICATE
            if step is Step.GAP:
                keep = None
                if rules.seeding is Seeding.REST:
                    keep = (first_id, last_id, prev_id, bids, asks, checksum)
                expected = self.seq + 1 if self.seq is not None else None
                self._break_live(
                    "seq_gap", expected, first_id if first_id is not None else last_id, keep=None
                )
                if keep is not None:
                    self._updates.append(keep)
                    self._buffered_levels = len(bids) + len(asks)
                return DeltaResult.GAP
            if self._apply_update(last_id, bids, asks, checksum):
                return DeltaResult.APPLIED
            return DeltaResult.GAP
        if state is SyncState.SYNCING or state is SyncState.RESYNCING:
            if rules.seeding is Seeding.IN_BAND:
                self.stats.pre_snapshot += 1  # older than the snapshot that is on its way
                return DeltaResult.DUPLICATE
            return self._buffer_update(first_id, last_id, prev_id, bids, asks, checksum)
        raise IllegalTransition("BookSync", state.value, "update")

    def on_stream_snapshot(
        self,
        last_id: int | None,
        bids: list[Level],
        asks: list[Level],
        checksum: int | None = None,
    ) -> bool:
        """In-band seeding: the venue sent a whole book on the stream. Seeds a SYNCING or
        RESYNCING book; replaces a LIVE one (the venue reset it). Returns False when ignored
        (a book that is not subscribed)."""
        if self._rules.seeding is not Seeding.IN_BAND:
            raise IllegalTransition("BookSync", self.state.value, "stream snapshot (REST seeding)")
        state = self.state
        if state not in (SyncState.SYNCING, SyncState.RESYNCING, SyncState.LIVE):
            self.stats.late_snapshots += 1
            return False
        book = self.book
        book.load(bids, asks)
        depth = self._rules.depth
        if depth is not None:
            book.truncate(depth)
        self.seq = last_id
        if not self._verify(checksum):
            return True
        self.stats.snapshots += 1
        if state is not SyncState.LIVE:
            self._live_applied = 0
            self.ever_synced = True
            self._to(SyncState.LIVE, "snapshot")
        self._emit(Synced(self.channel, self.seq, self.epoch))
        return True

    def on_connection_gap(self) -> None:
        """The connection's own sequence skipped (Coinbase ``sequence_num``): something was lost,
        of unknown channel, so this book is as suspect as every other one on the connection.
        A book not fed (IDLE, STALE) has nothing to lose: a no-op."""
        if self.state is SyncState.IDLE or self.state is SyncState.STALE:
            return
        self._lost_deltas("seq_gap", "connection seq_gap")

    def on_update_texts(
        self,
        raw_bids: Sequence[Sequence[str]],
        raw_asks: Sequence[Sequence[str]],
        last_id: int | None,
        first_id: int | None = None,
        prev_id: int | None = None,
        checksum: int | None = None,
    ) -> DeltaResult | None:
        """:meth:`on_update`'s common case in one compiled step: a LIVE book's next update
        (by its venue's continuity rule), the levels still the wire's texts
        (``OrderBook.apply_texts``). None, with nothing changed, when that does not apply
        (another state, a bridging, duplicate or gapped update, a missing id, the pure path, a
        level the compiled parser declines): the caller then parses the levels and calls
        :meth:`on_update`, which decides and raises the errors."""
        if self.state is not SyncState.LIVE or self._bridging:
            return None
        rules = self._rules
        if self._vts_route:
            if last_id is None:
                return None
            return self.on_delta_texts(last_id, raw_bids, raw_asks, checksum)
        seq = self.seq
        if seq is not None:  # each test below implies follows_ids(...) is Step.NEXT; anything
            rule = rules.continuity  # else (a gap, a duplicate, a missing id) goes the
            if rule is Continuity.RANGE:  # reference route
                if first_id is None or last_id is None or first_id != seq + 1 or last_id <= seq:
                    return None
            elif rule is Continuity.LINK:
                if prev_id is None or last_id is None or prev_id != seq:
                    return None
            elif rule is Continuity.SEQ:
                if last_id is None or last_id != seq + 1:
                    return None
            elif rule is not Continuity.NONE and rule is not Continuity.CONNECTION:
                return None  # pragma: no cover  (a rule this fast path does not know)
        if not self.book.apply_texts(raw_bids, raw_asks):
            return None
        return DeltaResult.APPLIED if self._after_update(last_id, checksum) else DeltaResult.GAP

    def _apply_update(
        self, last_id: int | None, bids: list[Level], asks: list[Level], checksum: int | None
    ) -> bool:
        """Apply one update to the LIVE book and check it; False when it broke the book."""
        self.book.apply(bids, asks)
        return self._after_update(last_id, checksum)

    def _after_update(self, last_id: int | None, checksum: int | None) -> bool:
        """An update was applied to the LIVE book: trim to depth, count it, check it."""
        book = self.book
        depth = self._rules.depth
        if depth is not None:
            book.truncate(depth)
        if last_id is not None:
            self.seq = last_id
        self._bridging = False
        self.stats.applied += 1
        self._live_applied += 1
        return checksum is None or self._verify(checksum)  # None: nothing to check (Binance)

    def _verify(self, checksum: int | None) -> bool:
        """Check the book against the venue's checksum; on a mismatch break it (gap)."""
        fn = self._rules.checksum
        if checksum is None or fn is None or not self.config.verify_checksum:
            return True
        local = fn(self.book)
        if local == checksum:
            return True
        if self.state is SyncState.LIVE:
            self._break_live("checksum", checksum, local, keep=None)
        else:  # a snapshot that does not verify: ask again, after backoff
            self._count_break("checksum")
            self._emit(Gap(self.channel, "checksum", checksum, local))
            self._clear_book()
            if self.state is not SyncState.RESYNCING:
                self._to(SyncState.RESYNCING, "checksum")
            self._request(delay_s=self._backoff.next_delay())
        return False

    def _buffer_update(
        self,
        first_id: int | None,
        last_id: int | None,
        prev_id: int | None,
        bids: list[Level],
        asks: list[Level],
        checksum: int | None,
    ) -> DeltaResult:
        """REST seeding with a venue rule: keep the newest updates, contiguous by the rule."""
        buf = self._updates
        rule = self._rules.continuity
        if buf:
            last = buf[-1][1]
            if last is not None and rule is not Continuity.NONE:
                step = follows_ids(rule, last, first_id, last_id, prev_id, self.channel)
                if step is Step.COVERED:
                    self.stats.duplicates += 1
                    return DeltaResult.DUPLICATE
                if step is Step.GAP:
                    self.stats.gaps["seq_gap"] += 1
                    got = first_id if first_id is not None else last_id
                    self._emit(Gap(self.channel, "seq_gap", last + 1, got))
                    self._clear_buffer()
                    buf.append((first_id, last_id, prev_id, bids, asks, checksum))
                    self._buffered_levels = len(bids) + len(asks)
                    return DeltaResult.GAP
        levels = self._buffered_levels + len(bids) + len(asks)
        while buf and (len(buf) >= self._max_buffer or levels > self._max_levels):
            old = buf.popleft()
            levels -= len(old[3]) + len(old[4])
            if old[1] is not None:
                self._trimmed_seq = old[1]
            self.stats.trimmed += 1
        self._buffered_levels = levels
        buf.append((first_id, last_id, prev_id, bids, asks, checksum))
        return DeltaResult.BUFFERED

    def _snapshot_updates(self, seq: int, bids: list[Level], asks: list[Level]) -> bool:
        """on_snapshot for a venue rule (RANGE, LINK, NONE) with REST seeding."""
        rule = self._rules.continuity
        buf = self._updates
        while buf and bridges_ids(rule, seq, buf[0][0], buf[0][1], buf[0][2], self.channel) is (
            Step.COVERED
        ):
            old = buf.popleft()
            self._buffered_levels -= len(old[3]) + len(old[4])
        if buf and bridges_ids(rule, seq, buf[0][0], buf[0][1], buf[0][2], self.channel) is (
            Step.GAP
        ):
            self._stale_snapshot(seq, buf[0][0] if buf[0][0] is not None else buf[0][1])
            return True
        self._stale_tries = 0
        book = self.book
        book.load(bids, asks)
        if self._rules.depth is not None:
            book.truncate(self._rules.depth)
        self.seq = seq
        pending = self._updates
        self._updates = deque()
        self._buffered_levels = 0
        self._trimmed_seq = _NO_SEQ
        for _first, last, _prev, d_bids, d_asks, d_cs in pending:  # contiguous by construction
            if not self._apply_update(last, d_bids, d_asks, d_cs):
                return True  # _verify broke it (gap checksum) and asked again
        self._bridging = not pending  # nothing applied after the snapshot: the next must bridge
        self._live_applied = 0
        self.ever_synced = True
        self._to(SyncState.LIVE, "snapshot")
        self._emit(Synced(self.channel, self.seq, self.epoch))
        return True

    # -- internals --------------------------------------------------------------------------
    def _seeding(self) -> bool:
        return self.state is SyncState.SYNCING or self.state is SyncState.RESYNCING

    def _emit(self, ev: SyncEvent) -> None:
        self.events.append(ev)

    def _to(self, new: SyncState, reason: str) -> None:
        old = self.state
        self.state = new
        self._emit(StateChanged(self.channel, old, new, reason, self.seq))

    def _request(self, delay_s: float) -> SnapshotRequest | ResubscribeRequest:
        """Open a new epoch and ask for its snapshot (any older one in flight becomes late):
        a fetch, or for in-band seeding a re-subscription of this channel."""
        self.epoch += 1
        self.stats.snapshot_requests += 1
        req: SnapshotRequest | ResubscribeRequest
        if self._rules.seeding is Seeding.IN_BAND:
            req = ResubscribeRequest(
                self.channel, self.epoch, delay_s, self._backoff.attempt, not self.ever_synced
            )
        else:
            req = SnapshotRequest(
                self.channel, self.epoch, delay_s, self._backoff.attempt, not self.ever_synced
            )
        self._emit(req)
        return req

    def _stale_snapshot(self, seq: int, first: int | None) -> None:
        """A snapshot at ``seq`` older than the oldest delta kept (``first``): a gap, and ask
        again. Would it have bridged but for our own trimming? Then the snapshot service is not
        behind, this book's reader is ahead of it: at once, the next one is newer; else after
        the backoff. After ``max_stale_snapshots`` in a row the buffer is dropped."""
        self.stats.gaps["stale_snapshot"] += 1
        self._emit(Gap(self.channel, "stale_snapshot", seq + 1, first))
        self._stale_tries += 1
        ours = self._trimmed_seq >= seq
        if self._stale_tries >= self.config.max_stale_snapshots:
            self._stale_tries = 0
            self.stats.buffer_drops += 1
            self._clear_buffer()
            ours = False
        self._request(delay_s=0.0 if ours else self._backoff.next_delay())

    def _clear_buffer(self) -> None:
        self._buffer.clear()
        self._updates.clear()
        self._buffered_levels = 0
        self._trimmed_seq = _NO_SEQ

    def _clear_book(self) -> None:
        self.book.clear()
        self.seq = None
        self._bridging = False

    def _count_break(self, reason: GapReason) -> None:
        self.stats.gaps[reason] += 1
        self.stats.resyncs += 1

    def _break_live(
        self,
        reason: GapReason,
        expected: int | None,
        got: int | None,
        keep: _BufferedDelta | None,
        why: str | None = None,
    ) -> None:
        """The LIVE book is known wrong: not synced at once, cleared, re-seed asked for.

        ``keep`` is the delta that revealed a gap: it starts the new buffer. ``why`` overrides
        the StateChanged reason (default: ``reason``).
        """
        self._count_break(reason)
        self._clear_book()
        self._emit(Gap(self.channel, reason, expected, got))
        self._to(SyncState.RESYNCING, why or reason)
        self._clear_buffer()
        if keep is not None:
            self._buffer.append(keep)
            self._buffered_levels = len(keep[1]) + len(keep[2])
        if self._live_applied >= self.config.healthy_after_deltas:
            self._backoff.reset()
            self._request(delay_s=0.0)
        else:
            self._request(delay_s=self._backoff.next_delay())

    def _lost_deltas(self, reason: GapReason, why: str) -> None:
        state = self.state
        if state is SyncState.LIVE:
            expected = None if self.seq is None else self.seq + 1
            self._break_live(reason, expected, None, keep=None, why=why)
        elif self._seeding():
            self.stats.gaps[reason] += 1
            expected = self._buffer[-1][0] + 1 if self._buffer else None
            self._emit(Gap(self.channel, reason, expected, None))
            self._clear_buffer()
            if self._rules.seeding is Seeding.IN_BAND:
                # what was lost may have been the snapshot itself: subscribe again (backed off)
                self._request(delay_s=self._backoff.next_delay())
        else:
            raise IllegalTransition("BookSync", state.value, reason)

    def _buffer_delta(
        self, seq: int, bids: list[Level], asks: list[Level], checksum: int | None
    ) -> DeltaResult:
        buf = self._buffer
        if buf:
            last = buf[-1][0]
            if seq <= last:
                self.stats.duplicates += 1
                return DeltaResult.DUPLICATE
            if seq != last + 1:
                # A delta is missing inside the buffer: what came before it cannot be bridged
                # past. Report it now and keep buffering from here; the snapshot in flight may
                # still bridge (its seq >= seq - 1), else the bridging check re-fetches.
                self.stats.gaps["seq_gap"] += 1
                self._emit(Gap(self.channel, "seq_gap", last + 1, seq))
                self._clear_buffer()
                buf.append((seq, bids, asks, checksum))
                self._buffered_levels = len(bids) + len(asks)
                return DeltaResult.GAP
        levels = self._buffered_levels + len(bids) + len(asks)
        while buf and (len(buf) >= self._max_buffer or levels > self._max_levels):
            # Keep the newest: a snapshot needs only what follows its own seq. Not a gap; a
            # snapshot older than what is kept is found (and re-fetched) when it arrives.
            old_seq, o_bids, o_asks, _ = buf.popleft()
            levels -= len(o_bids) + len(o_asks)
            self._trimmed_seq = old_seq
            self.stats.trimmed += 1
        self._buffered_levels = levels
        buf.append((seq, bids, asks, checksum))
        return DeltaResult.BUFFERED


class SyncStats:
    """Counters of one BookSync. Plain ints: cheap to bump on the hot path."""

    __slots__ = (
        "applied",
        "buffer_drops",
        "duplicates",
        "gaps",
        "late_snapshots",
        "pre_snapshot",
        "resyncs",
        "snapshot_failures",
        "snapshot_requests",
        "snapshots",
        "trimmed",
    )

    def __init__(self) -> None:
        self.applied = 0
        self.buffer_drops = 0  # buffers dropped after max_stale_snapshots unbridgeable snapshots
        self.trimmed = 0  # oldest deltas dropped from a full buffer (not gaps)
        self.duplicates = 0
        self.resyncs = 0
        self.late_snapshots = 0
        self.pre_snapshot = 0  # in-band seeding: deltas dropped while the snapshot was on its way
        self.snapshots = 0  # in-band snapshots taken
        self.snapshot_requests = 0
        self.snapshot_failures = 0
        self.gaps: dict[str, int] = dict.fromkeys(GAP_REASONS, 0)
