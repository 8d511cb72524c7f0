"""Every subscribed channel's state, and the hot path that feeds it (runs inline, per frame).

:meth:`Channels.on_text` is called by the reader for each text frame, inside picows'
``on_ws_frame``. It decodes (msgspec, in C), sequences and applies the delta to the book,
then only *marks* work for others: the snapshot scheduler gets requests, the dispatcher gets
a dirty book or a queued ticker/trade, events are appended to bounded feeds. No user code, no
await, no I/O: bounded microseconds a frame (see ``benchmarks/`` for the figures).

Why inline and not a queue to a worker: a delta must be sequenced before anything can be
said about its book, decoding and applying cost a few µs, and a queue between reader and
books adds a hop, a second copy of every frame and a bound that can overflow. Inline, the
socket is read only as fast as books are updated, so TCP itself carries the back-pressure
(the kernel buffer fills, the gateway's send buffer fills): nothing grows without bound and
no book is ever dropped for a burst. User code is what is slow and unbounded, and it is
behind the dispatcher's coalescing, bounded queues.

One book's trouble stays in that book: a gap, a bad frame or a failed snapshot touches only
the :class:`~tickpipe.protocol.sync.BookSync` of its channel.

Rotation (a planned change of connection, see ``client/supervisor.py``): for a while two
connections carry the same channels. The old one's listener then calls :meth:`on_text_old`,
the new one's :meth:`on_text_new`; each channel has exactly one feeding connection, the old
one until the channel *moves*. A ticker or trades channel moves on the new connection's first
value for it. A LIVE book whose venue numbers its updates per book (``Continuity.SEQ``,
``RANGE``, ``LINK``) moves when the new connection reaches the book's current id (its copy of
the book's last update, or an update that follows it by the book's own rule): the new
connection's updates are held (newest
``max_buffered_deltas``) while the old one still feeds the book, those the book already has are
dropped, and on the first that follows the book's id the book's input switches and the held
updates are applied, so the book is never re-seeded and never stops being LIVE (a snapshot the
new subscription brings is kept aside, unused). A book that is not LIVE, or whose venue has no
per-book ids (Kraken, Coinbase: ids cannot tell where the two streams meet), moves at once: an
in-band snapshot the subscription brings then replaces the LIVE book (it stays LIVE, a
``synced`` event says so). :meth:`finish_rotation` moves what is left when the supervisor ends
the handover (every channel moved, its timeout, or the old connection died early): a held
in-band snapshot seeds the book; a quiet book (nothing held) just moves, its next update checked
as any; a book whose held updates could not be joined re-seeds (``stale`` with reason
``rotation``, then ``synced``), the one visible case.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from tickpipe.client.dispatch import Dispatcher, TickerUpdate, TradeUpdate
from tickpipe.client.events import (
    Active,
    BadFrame,
    ClientEvent,
    GapEvent,
    SnapshotError,
    Stale,
    SyncedEvent,
    TradesMissed,
)
from tickpipe.client.metrics import Metrics
from tickpipe.client.snapshots import SnapshotOutcome, SnapshotScheduler
from tickpipe.client.tap import BookTap
from tickpipe.client.views import BookView
from tickpipe.errors import FrameError
from tickpipe.protocol import frames
from tickpipe.protocol.book import Level
from tickpipe.protocol.continuity import Step, follows_ids
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import (
    BookDelta,
    BookGap,
    BookSnapshot,
    BookUnsynced,
    Continuity,
    TickerEvent,
    TradeEvent,
)
from tickpipe.protocol.seqtrack import SeqResult, SeqTracker
from tickpipe.protocol.sync import (
    BookSync,
    DeltaResult,
    Gap,
    ResubscribeRequest,
    SnapshotRequest,
    StateChanged,
    SyncConfig,
    Synced,
    SyncState,
)
from tickpipe.protocol.watchdog import SilenceDetector
from tickpipe.venues.base import Venue

log = logging.getLogger("tickpipe.client.channels")

_FEEDABLE = (SyncState.SYNCING, SyncState.LIVE, SyncState.RESYNCING)
_PER_BOOK_IDS = (Continuity.SEQ, Continuity.RANGE, Continuity.LINK)
_HeldDelta = BookDelta | frames.Delta


def _channel_of(f: object) -> str | None:
    """The channel a decoded value belongs to; None for a control value."""
    tp = type(f)
    if tp is frames.Delta or tp is frames.Ticker or tp is frames.Trade:
        return f.channel  # type: ignore[attr-defined,no-any-return]
    if tp is BookDelta or tp is BookSnapshot:
        return "orderbook:" + f.symbol  # type: ignore[attr-defined,no-any-return]
    if tp is TickerEvent:
        return "ticker:" + f.symbol  # type: ignore[attr-defined,no-any-return]
    if tp is TradeEvent:
        return "trades:" + f.symbol  # type: ignore[attr-defined,no-any-return]
    return None


class BookChannel:
    __slots__ = ("channel", "last_update", "reason", "silent", "symbol", "sync", "synced_event")

    def __init__(self, channel: str, symbol: str, sync: BookSync) -> None:
        self.channel = channel
        self.symbol = symbol
        self.sync = sync
        self.reason = "subscribing"
        self.silent = False
        self.last_update: float | None = None
        self.synced_event = asyncio.Event()


class SeqChannel:
    """A ``ticker:`` or ``trades:`` channel."""

    __slots__ = (
        "channel",
        "count",
        "kind",
        "last",
        "last_update",
        "silent",
        "stale",
        "symbol",
        "tracker",
    )

    def __init__(self, channel: str, kind: str, symbol: str) -> None:
        self.channel = channel
        self.kind = kind
        self.symbol = symbol
        self.tracker = SeqTracker(channel)
        self.last: frames.Ticker | frames.Trade | TickerUpdate | TradeUpdate | None = None
        self.count = 0  # venue tickers carry no seq of their own: numbered here
        self.last_update: float | None = None
        self.stale = True
        self.silent = False


ControlHandler = Callable[[object], None]


class Channels:
    """Channel registry + the per-frame path. Lives as long as the client (books persist
    across connections; their BookSync goes STALE on loss and starts again on resubscribe)."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        dispatcher: Dispatcher,
        scheduler_ref: Callable[[], SnapshotScheduler],
        sync_config: SyncConfig,
        clock: Callable[[], float],
        random: Callable[[], float],
        silence: SilenceDetector,
        connected: Callable[[], bool],
        venue: Venue,
    ) -> None:
        self.venue = venue
        self._decode = venue.decode
        self.metrics = metrics
        self.dispatcher = dispatcher
        self._scheduler = scheduler_ref
        self._sync_config = sync_config
        self._clock = clock
        self._random = random
        self.silence = silence
        self._watch_silence = silence.threshold_s is not None  # skip the per-frame call if off
        self._connected = connected
        self.instruments: dict[str, Instrument] = {}
        self.books: dict[str, BookChannel] = {}
        self.views: dict[str, BookView] = {}
        self.exact_depth: int | None = None  # levels a side a seeding snapshot carries
        self.seqs: dict[str, SeqChannel] = {}
        self.control: ControlHandler = lambda f: None
        # control values read on a rotation's new connection (set by the supervisor)
        self.control_new: ControlHandler = lambda f: None
        # rotation (see the module docstring): channels still to move to the new connection,
        # the moved ones, and per book the new connection's held updates and snapshot
        self._rot_left: set[str] = set()
        self._rot_moved: set[str] = set()
        self._rot_held: dict[str, deque[_HeldDelta]] = {}
        self._rot_snap: dict[str, BookSnapshot] = {}
        self.rotation_ready = asyncio.Event()  # set when every channel has moved
        self.rotation_reseeds = 0  # books a rotation could not bridge (re-seeded)
        self.on_gap: Callable[[str], None] = lambda symbol: None  # the client's gap hook
        # in-band seeding (set by the supervisor): carry out a ResubscribeRequest, and watch
        # for the snapshot a (re)subscribe brings (channel, epoch)
        self.resubscribe: Callable[[ResubscribeRequest], None] = lambda req: None
        self.await_stream_snapshot: Callable[[str, int], None] = lambda ch, epoch: None
        self.tap: BookTap | None = None  # tickpipe publish: told every exact book's changes

    def emit(self, ev: ClientEvent) -> None:
        self.dispatcher.event(ev)

    # -- hot path ----------------------------------------------------------------------------
    def on_text(self, data: bytes | memoryview) -> None:
        """One text frame. ``data`` may be a memoryview of picows' buffer, valid only during
        this call: nothing here keeps it (msgspec copies what it decodes)."""
        m = self.metrics
        m.frames += 1
        m.bytes += len(data)
        try:
            f = self._decode(data)  # the venue's decoder (VTS/1: frames.decode_server_frame)
        except FrameError as exc:  # names the channel when it can be read: that book resyncs
            self.bad_frame(exc)
            return
        tp = type(f)
        if tp is frames.Delta:  # the floods first: VTS/1 deltas, then any venue's
            self._on_delta(f)  # type: ignore[arg-type]
        elif tp is BookDelta:
            self._on_update(f)  # type: ignore[arg-type]
        elif tp is frames.Ticker or tp is frames.Trade:
            self._on_seq(f)  # type: ignore[arg-type]
        elif tp is TickerEvent or tp is TradeEvent:
            self._on_venue_seq(f)  # type: ignore[arg-type]
        elif tp is BookSnapshot:
            self._on_stream_snapshot(f)  # type: ignore[arg-type]
        elif tp is list:  # a venue frame carrying several values (OKX: trades)
            for item in f:  # type: ignore[attr-defined]
                self._route(item)
        elif tp is BookGap or tp is BookUnsynced:
            self._on_source_loss(f)  # type: ignore[arg-type]
        else:
            self.control(f)

    def _route(self, f: object) -> None:
        """One value of a frame that carried several (or of a rotation's frame)."""
        tp = type(f)
        if tp is frames.Delta:
            self._on_delta(f)  # type: ignore[arg-type]
        elif tp is frames.Ticker or tp is frames.Trade:
            self._on_seq(f)  # type: ignore[arg-type]
        elif isinstance(f, BookDelta):
            self._on_update(f)
        elif isinstance(f, TickerEvent | TradeEvent):
            self._on_venue_seq(f)
        elif isinstance(f, BookSnapshot):
            self._on_stream_snapshot(f)
        elif isinstance(f, BookGap | BookUnsynced):
            self._on_source_loss(f)
        else:
            self.control(f)

    def _venue_levels(
        self, f: BookSnapshot | BookDelta
    ) -> tuple[BookChannel, str, list[Level], list[Level]] | None:
        """The fed book of a venue value and its levels in integer units; None (counted or
        reported as a bad frame) when there is no such book or a level is off its grid."""
        channel = "orderbook:" + f.symbol
        bc = self.books.get(channel)
        if bc is None or bc.sync.state not in _FEEDABLE:
            self.metrics.unexpected_frames += 1
            return None
        inst = bc.sync.book.instrument
        try:
            bids = frames.parse_levels(f.bids, inst, channel, "bids")
            asks = frames.parse_levels(f.asks, inst, channel, "asks")
        except FrameError as exc:
            self.bad_frame(exc)
            return None
        return bc, channel, bids, asks

    def _on_stream_snapshot(self, f: BookSnapshot) -> None:
        """In-band seeding: a whole book sent on the stream (after a subscribe, or a reset)."""
        got = self._venue_levels(f)
        if got is None:
            return
        bc, channel, bids, asks = got
        sync = bc.sync
        try:
            sync.on_stream_snapshot(f.last_id, bids, asks, f.checksum)
        except FrameError as exc:
            self.bad_frame(exc)
            return
        if self._watch_silence and self.silence.on_frame(channel, self._clock()) and bc.silent:
            bc.silent = False
            self.emit(Active(channel=channel))
        if sync.events:
            self._drain(bc)

    def _on_source_loss(self, f: BookGap | BookUnsynced) -> None:
        """The source lost updates of one book (BookGap: re-seed it) or says its own book is
        not exact (BookUnsynced: stale, ``reason`` the source's, until it sends a whole book)."""
        channel = "orderbook:" + f.symbol
        bc = self.books.get(channel)
        if bc is None or bc.sync.state not in _FEEDABLE:
            self.metrics.unexpected_frames += 1
            return
        if isinstance(f, BookGap):
            bc.sync.on_source_gap(f.expected, f.got)
        else:
            was_live = bc.sync.state is SyncState.LIVE
            bc.sync.on_source_unsynced(f.reason)
            if was_live:
                self.emit(Stale(channel=channel, reason=f.reason))
        self._drain(bc)

    def connection_gap(self) -> None:
        """The connection's own sequence skipped (the venue's ``ConnectionGap``): a frame of
        unknown channel was lost, so every fed book breaks and re-seeds (``on_connection_gap``)."""
        for bc in self.books.values():
            if bc.sync.state in _FEEDABLE:
                bc.sync.on_connection_gap()
                self._drain(bc)

    def snapshot_overdue(self, channel: str, epoch: int, waited_s: float) -> None:
        """No in-band snapshot for ``epoch`` within ``waited_s``: a failed seed (the book
        asks to be re-subscribed after its backoff). Ignored when the book moved on."""
        bc = self.books.get(channel)
        if bc is None or bc.sync.epoch != epoch:
            return
        if bc.sync.state is not SyncState.SYNCING and bc.sync.state is not SyncState.RESYNCING:
            return
        self.metrics.snapshot_errors += 1
        if bc.sync.on_snapshot_failed(epoch):
            self.emit(
                SnapshotError(
                    channel=channel, error=f"no snapshot on the stream within {waited_s:g}s"
                )
            )
        self._drain(bc)

    def _on_delta(self, f: frames.Delta) -> None:
        bc = self.books.get(f.channel)
        if bc is None or bc.sync.state not in _FEEDABLE:
            self.metrics.unexpected_frames += 1
            return
        sync = bc.sync
        res = sync.on_delta_texts(f.seq, f.bids, f.asks, f.checksum)  # the compiled fast path
        if res is None:
            inst = sync.book.instrument
            try:
                bids = frames.parse_levels(f.bids, inst, f.channel, "bids")
                asks = frames.parse_levels(f.asks, inst, f.channel, "asks")
            except FrameError as exc:
                self.bad_frame(exc)
                return
            res = sync.on_delta(f.seq, bids, asks, f.checksum)
        now = self._clock()
        if self._watch_silence and self.silence.on_frame(f.channel, now) and bc.silent:
            bc.silent = False
            self.emit(Active(channel=f.channel))
        if res is DeltaResult.APPLIED:
            bc.last_update = now
            self.metrics.latency.record((time.time_ns() - f.ts) / 1e6)
            self.dispatcher.book_changed(self.views[f.channel])
            if self.tap is not None:
                self.tap.book_applied(f.channel, f.bids, f.asks, f.seq, f.ts)
        elif res is DeltaResult.DUPLICATE:
            self.metrics.duplicates += 1
        if sync.events:
            self._drain(bc)

    def _on_update(self, f: BookDelta) -> None:
        """A normalised venue delta: the book's own rules (``BookSync.on_update``); a LIVE
        book's next update in one compiled step (``on_update_texts``) when it can be."""
        channel = "orderbook:" + f.symbol
        bc = self.books.get(channel)
        res = None
        if bc is not None:
            res = bc.sync.on_update_texts(
                f.bids, f.asks, f.last_id, f.first_id, f.prev_id, f.checksum
            )
        if res is None:
            got = self._venue_levels(f)
            if got is None:
                return
            bc, channel, bids, asks = got
            try:
                res = bc.sync.on_update(bids, asks, f.last_id, f.first_id, f.prev_id, f.checksum)
            except FrameError as exc:
                self.bad_frame(exc)
                return
        assert bc is not None
        sync = bc.sync
        now = self._clock()
        if self._watch_silence and self.silence.on_frame(channel, now) and bc.silent:
            bc.silent = False
            self.emit(Active(channel=channel))
        if res is DeltaResult.APPLIED:
            bc.last_update = now
            if f.ts_ns is not None:
                self.metrics.latency.record((time.time_ns() - f.ts_ns) / 1e6)
            self.dispatcher.book_changed(self.views[channel])
            if self.tap is not None:
                self.tap.book_applied(channel, f.bids, f.asks, f.last_id, f.ts_ns)
        elif res is DeltaResult.DUPLICATE:
            self.metrics.duplicates += 1
        if sync.events:
            self._drain(bc)

    def _on_venue_seq(self, f: TickerEvent | TradeEvent) -> None:
        """A normalised ticker or trade: numbered (trades by their numeric id, tickers here),
        tracked as a VTS/1 one is, handed to the dispatcher as the user-facing value."""
        ticker = type(f) is TickerEvent
        channel = ("ticker:" if ticker else "trades:") + f.symbol
        sc = self.seqs.get(channel)
        if sc is None:
            self.metrics.unexpected_frames += 1
            return
        ts = f.ts_ns if f.ts_ns is not None else time.time_ns()
        try:
            if isinstance(f, TickerEvent):
                seq = sc.count + 1
                item: TickerUpdate | TradeUpdate = TickerUpdate(
                    channel,
                    f.symbol,
                    seq,
                    ts,
                    None if f.bid is None else Decimal(f.bid),  # None: Bybit spot
                    None if f.bid_size is None else Decimal(f.bid_size),
                    None if f.ask is None else Decimal(f.ask),
                    None if f.ask_size is None else Decimal(f.ask_size),
                    None if f.last is None else Decimal(f.last),
                    None if f.volume is None else Decimal(f.volume),
                )
            else:
                tid = f.trade_id
                seq = int(tid) if tid.isascii() and tid.isdigit() else sc.count + 1
                item = TradeUpdate(
                    channel, f.symbol, seq, ts, tid, Decimal(f.price), Decimal(f.size), f.side or ""
                )
        except (InvalidOperation, TypeError, ValueError) as exc:
            self.bad_frame(FrameError(f"bad {sc.kind} values: {exc!r}", channel=channel))
            return
        sc.count += 1
        res = sc.tracker.feed(seq)
        now = self._clock()
        if self._watch_silence and self.silence.on_frame(channel, now) and sc.silent:
            sc.silent = False
            self.emit(Active(channel=channel))
        if res is SeqResult.DUPLICATE:
            self.metrics.duplicates += 1
            return
        if res is SeqResult.OUTLIER or res is SeqResult.REBASELINED:
            self.metrics.bad_frames += 1
            self.emit(BadFrame(channel=channel, error=sc.tracker.last_anomaly or "bad seq"))
            if res is SeqResult.OUTLIER:
                return
        if res is SeqResult.GAP and not ticker:
            gap = sc.tracker.last_gap
            assert gap is not None
            self.metrics.trades_missed += gap.missed
            self.emit(
                TradesMissed(channel=channel, expected=gap.expected, got=gap.got, missed=gap.missed)
            )
        sc.last = item
        sc.last_update = now
        sc.stale = False
        if ticker:
            self.dispatcher.ticker(item)  # type: ignore[arg-type]
            if self.tap is not None:
                self.tap.ticker(item)  # type: ignore[arg-type]
        else:
            self.dispatcher.trade(item)  # type: ignore[arg-type]
            if self.tap is not None:
                self.tap.trade(item)  # type: ignore[arg-type]

    def _on_seq(self, f: frames.Ticker | frames.Trade) -> None:
        sc = self.seqs.get(f.channel)
        if sc is None:
            self.metrics.unexpected_frames += 1
            return
        res = sc.tracker.feed(f.seq)
        now = self._clock()
        if self._watch_silence and self.silence.on_frame(f.channel, now) and sc.silent:
            sc.silent = False
            self.emit(Active(channel=f.channel))
        if res is SeqResult.DUPLICATE:
            self.metrics.duplicates += 1
            return
        if res is SeqResult.OUTLIER or res is SeqResult.REBASELINED:
            # a bogus seq far ahead is dropped (the channel keeps its seq); a run of frames
            # off the track re-baselines it: either way the user sees a bad_frame naming it
            self.metrics.bad_frames += 1
            self.emit(BadFrame(channel=f.channel, error=sc.tracker.last_anomaly or "bad seq"))
            if res is SeqResult.OUTLIER:
                return
        if res is SeqResult.GAP:
            gap = sc.tracker.last_gap
            assert gap is not None
            if sc.kind == "trades":
                self.metrics.trades_missed += gap.missed
                self.emit(
                    TradesMissed(
                        channel=f.channel, expected=gap.expected, got=gap.got, missed=gap.missed
                    )
                )
            # ticker gaps need no resync: counted on the tracker (stats: ticker_gaps)
        sc.last = f
        sc.last_update = now
        sc.stale = False
        if type(f) is frames.Ticker:
            self.dispatcher.ticker(f)
            if self.tap is not None:
                self.tap.ticker(f)
        else:
            self.dispatcher.trade(f)  # type: ignore[arg-type]
            if self.tap is not None:
                self.tap.trade(f)  # type: ignore[arg-type]

    def bad_frame(self, exc: FrameError) -> None:
        """A frame could not be decoded: report it; if it names a book, that book resyncs."""
        self.metrics.bad_frames += 1
        ch = exc.channel
        self.emit(BadFrame(channel=ch, error=str(exc)))
        bc = self.books.get(ch) if ch is not None else None
        if bc is not None and bc.sync.state in _FEEDABLE:
            bc.sync.on_bad_frame()
            self._drain(bc)

    # -- rotation: two connections, each channel fed by one ------------------------------------
    @property
    def rotating(self) -> bool:
        return bool(self._rot_left) or bool(self._rot_moved)

    @property
    def rotation_left(self) -> int:
        """Channels still fed by the old connection."""
        return len(self._rot_left)

    def begin_rotation(self) -> None:
        """Every active channel is fed by the old connection until it moves to the new one."""
        self._rot_left = set(self.books) | set(self.seqs)
        self._rot_moved = set()
        self._rot_held = {}
        self._rot_snap = {}
        self.rotation_ready = asyncio.Event()
        if not self._rot_left:
            self.rotation_ready.set()

    def on_text_old(self, data: bytes | memoryview) -> None:
        """A frame of the old connection while rotating."""
        self._rotation_text(data, new=False)

    def on_text_new(self, data: bytes | memoryview) -> None:
        """A frame of the new connection while rotating."""
        self._rotation_text(data, new=True)

    def drop_text(self, data: bytes | memoryview) -> None:
        """A frame of a connection being closed after a rotation: every channel has moved."""
        self.metrics.frames += 1
        self.metrics.bytes += len(data)

    def _rotation_text(self, data: bytes | memoryview, *, new: bool) -> None:
        m = self.metrics
        m.frames += 1
        m.bytes += len(data)
        try:
            f = self._decode(data)
        except FrameError as exc:  # only the connection feeding the channel can break it
            if exc.channel is None or (exc.channel in self._rot_moved) == new:
                self.bad_frame(exc)
            return
        for item in f if type(f) is list else (f,):  # type: ignore[attr-defined]
            ch = _channel_of(item)
            if ch is None:
                (self.control_new if new else self.control)(item)
            elif ch in self._rot_moved:
                if new:
                    self._route(item)
                # else: the old connection's copy of a moved channel, dropped
            elif not new:
                self._route(item)
                if ch in self._rot_held:
                    self._try_move(ch)
            else:
                self._offer(ch, item)

    def _bridgeable(self, bc: BookChannel) -> bool:
        """Can the new connection's updates be joined to this book by their ids?"""
        sync = bc.sync
        return (
            sync.state is SyncState.LIVE
            and sync.seq is not None
            and sync.rules.continuity in _PER_BOOK_IDS
        )

    def _moved(self, ch: str) -> None:
        self._rot_moved.add(ch)
        self._rot_left.discard(ch)
        self._rot_held.pop(ch, None)
        self._rot_snap.pop(ch, None)
        if not self._rot_left:
            self.rotation_ready.set()

    def _offer(self, ch: str, item: object) -> None:
        """A value of the new connection for a channel the old one still feeds."""
        bc = self.books.get(ch)
        if bc is None or ch not in self._rot_left or not self._bridgeable(bc):
            # a ticker or trades channel, a book not LIVE or without per-book ids (or a channel
            # subscribed after the rotation began): the new connection takes over at once
            self._moved(ch)
            self._route(item)
            return
        if type(item) is BookSnapshot:  # the subscription's in-band snapshot: kept aside
            self._rot_snap[ch] = item
            self._rot_held[ch] = deque(maxlen=self._sync_config.max_buffered_deltas)
            return
        held = self._rot_held.get(ch)
        if held is None:
            held = self._rot_held[ch] = deque(maxlen=self._sync_config.max_buffered_deltas)
        held.append(item)  # type: ignore[arg-type]
        self._try_move(ch)

    def _try_move(self, ch: str) -> None:
        """Move a book when the new connection's held updates follow its current id."""
        bc = self.books.get(ch)
        held = self._rot_held.get(ch)
        if bc is None or held is None:
            return
        if not self._bridgeable(bc):  # it broke on the old connection meanwhile
            self._move_held(ch, snapshot=True)
            return
        sync = bc.sync
        seq = sync.seq
        assert seq is not None
        rule = sync.rules.continuity
        while held:
            d = held[0]
            if type(d) is frames.Delta:
                step = Step.NEXT if d.seq == seq + 1 else Step.COVERED if d.seq <= seq else Step.GAP
            else:
                assert isinstance(d, BookDelta)
                try:
                    step = follows_ids(rule, seq, d.first_id, d.last_id, d.prev_id, ch)
                except FrameError:
                    step = Step.NEXT  # the book's own path reports it as a bad frame
            if step is Step.COVERED:
                held.popleft()  # the old connection brought it already
                last = d.seq if type(d) is frames.Delta else d.last_id  # type: ignore[union-attr]
                if last == seq:  # the same update as the book's last: the new stream is level
                    self._move_held(ch, snapshot=False)
                    return
            elif step is Step.NEXT:
                self._move_held(ch, snapshot=False)
                return
            else:
                return  # the new connection is ahead: the old one catches up first

    def _move_held(self, ch: str, *, snapshot: bool) -> None:
        """Move ``ch`` and apply what the new connection brought meanwhile (its held snapshot
        first when ``snapshot``)."""
        held = self._rot_held.get(ch) or deque()
        snap = self._rot_snap.get(ch) if snapshot else None
        self._moved(ch)
        if snap is not None:
            self._route(snap)
        for d in held:
            self._route(d)

    def finish_rotation(self) -> None:
        """The handover ends: every channel left moves now. A book with the new connection's
        in-band snapshot is seeded from it; one that could not be bridged re-seeds."""
        for ch in list(self._rot_left):
            bc = self.books.get(ch)
            held = self._rot_held.get(ch) or deque()
            if bc is None or ch in self._rot_snap or not self._bridgeable(bc) or not held:
                # nothing of the new connection to join yet (a quiet book): its first update
                # is checked by the book's own rule like any
                self._move_held(ch, snapshot=True)
                continue
            self._moved(ch)
            self._reseed(bc, "rotation")
            for d in held:
                self._route(d)
        self.end_rotation()

    def abort_rotation(self) -> None:
        """The new connection failed: the old one feeds everything again; channels that had
        moved lost the old connection's values meanwhile, so their books re-seed."""
        for ch in self._rot_moved:
            bc = self.books.get(ch)
            if bc is not None:
                self._reseed(bc, "rotation")
            else:
                sc = self.seqs.get(ch)
                if sc is not None:
                    sc.tracker.rebaseline()
        self.end_rotation()

    def end_rotation(self) -> None:
        self._rot_left = set()
        self._rot_moved = set()
        self._rot_held = {}
        self._rot_snap = {}

    def _reseed(self, bc: BookChannel, reason: str) -> None:
        """Seed a subscribed book again on the current connection (stale until it is)."""
        sync = bc.sync
        if sync.state is SyncState.IDLE:
            return
        was = sync.state
        sync.on_stream_lost(reason)
        self._drain(bc)
        if was is not SyncState.STALE:
            self.emit(Stale(channel=bc.channel, reason=reason))
        self.rotation_reseeds += 1
        if sync.start() is None:  # in band: the subscription brings it, or a re-subscribe
            self.await_stream_snapshot(bc.channel, sync.epoch)
        self._drain(bc)

    # -- BookSync events -> the outside world ------------------------------------------------
    def _drain(self, bc: BookChannel) -> None:
        for ev in bc.sync.take_events():
            if isinstance(ev, SnapshotRequest):
                self.metrics.snapshot_requests += 1
                self._scheduler().request(ev.channel, ev.epoch, ev.delay_s, ev.first_seed)
            elif isinstance(ev, ResubscribeRequest):
                self.metrics.snapshot_requests += 1
                self.resubscribe(ev)
            elif isinstance(ev, Synced):
                bc.last_update = self._clock()
                bc.synced_event.set()
                self.emit(SyncedEvent(channel=ev.channel, seq=ev.seq))
                self.dispatcher.book_changed(self.views[bc.channel])
                if self.tap is not None:
                    self.tap.book_synced(bc.channel, bc.sync, None)
            elif isinstance(ev, Gap):
                self.metrics.gaps[ev.reason] += 1
                if ev.reason != "stale_snapshot":
                    self.metrics.resyncs += 1
                self.emit(
                    GapEvent(channel=ev.channel, reason=ev.reason, expected=ev.expected, got=ev.got)
                )
                self.on_gap(bc.symbol)
            elif isinstance(ev, StateChanged):
                bc.reason = ev.reason
                if ev.new is not SyncState.LIVE:
                    bc.synced_event.clear()
                    self.dispatcher.book_lost(bc.channel)
                    if self.tap is not None:
                        self.tap.book_lost(bc.channel, ev.new, ev.reason)

    # -- snapshots ---------------------------------------------------------------------------
    def on_snapshot(self, out: SnapshotOutcome) -> None:
        bc = self.books.get(out.channel)
        if bc is None:
            return
        sync = bc.sync
        if out.snapshot is not None:
            snap = out.snapshot
            inst = sync.book.instrument
            try:
                bids = frames.parse_levels(snap.bids, inst, out.channel, "bids")
                asks = frames.parse_levels(snap.asks, inst, out.channel, "asks")
            except FrameError as exc:
                self.emit(SnapshotError(channel=out.channel, error=str(exc)))
                sync.on_snapshot_failed(out.epoch)
            else:
                sync.on_snapshot(out.epoch, snap.seq, bids, asks)
        else:
            self.metrics.snapshot_errors += 1
            if out.retry_after_s is not None:
                self.metrics.snapshot_429 += 1
            if sync.on_snapshot_failed(out.epoch, out.retry_after_s):
                self.emit(SnapshotError(channel=out.channel, error=str(out.error)))
        self._drain(bc)

    # -- subscription life -------------------------------------------------------------------
    def activate(self, channel: str) -> str | None:
        """The gateway confirmed ``channel``: (re)start it. Returns an error code or None."""
        kind, symbol = self.venue.parse_channel(channel)
        now = self._clock()
        self.silence.watch(channel, now)
        if kind == "orderbook":
            bc = self.books.get(channel)
            if bc is None:
                inst = self.instruments.get(symbol)
                if inst is None:
                    return "unknown_instrument"
                sync = BookSync(
                    channel, inst, self._random, self._sync_config, self.venue.sync_rules(symbol)
                )
                bc = BookChannel(channel, symbol, sync)
                self.books[channel] = bc
                self.views[channel] = BookView(bc, self._clock, self._connected, self.exact_depth)
            bc.silent = False
            if bc.sync.state in (SyncState.IDLE, SyncState.STALE):
                if bc.sync.start() is None:  # seeded in band: the subscription brings it
                    self.await_stream_snapshot(channel, bc.sync.epoch)
                self._drain(bc)
            return None
        sc = self.seqs.get(channel)
        if sc is None:
            sc = self.seqs[channel] = SeqChannel(channel, kind, symbol)
        sc.tracker.rebaseline()
        sc.silent = False
        return None

    def deactivate(self, channel: str) -> None:
        """Unsubscribed: forget the channel."""
        self.silence.forget(channel)
        self._scheduler().cancel(channel)
        bc = self.books.pop(channel, None)
        self.views.pop(channel, None)
        if bc is not None:
            bc.sync.stop()
            bc.sync.take_events()
            bc.synced_event.clear()
            self.dispatcher.book_lost(channel)
        self.seqs.pop(channel, None)

    def stream_lost(self, reason: str) -> None:
        """Going blind: every book and ticker stale at once, book triggers dropped."""
        self._scheduler().clear()
        for ch, bc in self.books.items():
            was = bc.sync.state
            bc.sync.on_stream_lost(reason)
            self._drain(bc)
            bc.silent = False
            self.silence.forget(ch)
            if was is not SyncState.STALE and was is not SyncState.IDLE:
                self.emit(Stale(channel=ch, reason=reason))
        for ch, sc in self.seqs.items():
            sc.tracker.rebaseline()
            self.silence.forget(ch)
            sc.silent = False
            if sc.kind == "ticker" and not sc.stale:
                self.emit(Stale(channel=ch, reason=reason))
            sc.stale = True

    def check_silence(self, now: float) -> None:
        """Flag channels silent past the threshold while the socket is healthy."""
        for ch in self.silence.check(now):
            bc = self.books.get(ch)
            if bc is not None:
                if bc.sync.state is SyncState.LIVE:
                    bc.silent = True
                    self.emit(Stale(channel=ch, reason="silent"))
                continue
            sc = self.seqs.get(ch)
            if sc is not None:
                sc.silent = True
                self.emit(Stale(channel=ch, reason="silent"))
