"""``tickpipe gateway --replay PATH...``: a recording in place of the simulator.

The recording (``tickpipe record``, :mod:`tickpipe.record`) is fed through the client's own
replay pipeline (:class:`tickpipe.record.replay.Replay`: the same decode, ``BookSync`` and
snapshot seeding as live). Each time a recorded book changes *while synced* (known equal to
the venue's), the difference from the gateway's truth book (the levels whose size changed,
0 = removed) is published through the hub as one market step: ``seq`` + 1 on ``orderbook:SYM``,
the truth history remembers it, and every wire format the gateway speaks (VTS/1 and each
venue dialect) encodes it; every fault (``drop_delta``, ``disconnect``, snapshot faults...)
applies as on the simulator. Recorded trades are published as trades (their prices and sizes
exact; ids are the gateway's own, contiguous); tickers are derived from the truth book as the
simulator's are (every ``ticker_every`` published steps), with ``last`` and ``volume`` from
the replayed trades.

So the gateway's truth at seq N is the N-th distinct synced state of the recorded book (seq 0:
empty, before the recording's first synced book). A book that goes unsynced in the recording
(a gap, a disconnect) keeps its last synced state on the gateway until it is synced again;
the difference is then one change. Seqs are the gateway's own, not the venue's update ids.

Markets: one per symbol of the recording's channels, with the instrument (tick, lot) of the
recording's instruments answer (header), under the recorded symbol; a venue dialect renames
them by its usual rule (as it does the simulated markets).

Pace: ``speed`` X (1.0 = the recorded pace) or None = as fast as the CPU allows (the replay
yields to the event loop every ``MARKET_TURN_S``). At the end: with ``loop`` the recording
starts over (the books jump back to its first state as one change; seqs go on), else the
gateway logs ``replay_end`` and keeps serving the final books, unchanged, until stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.client.events import ClientEvent
from tickpipe.client.views import BookView
from tickpipe.errors import ConfigError, FrameError
from tickpipe.gateway.logs import log_event
from tickpipe.gateway.markets import MarketSpec
from tickpipe.gateway.simulator import Side, SimTrade, StepResult
from tickpipe.protocol.book import BookSide, OrderBook
from tickpipe.protocol.instruments import Instrument
from tickpipe.record import format as fmt
from tickpipe.record.reader import PartReader, find_parts
from tickpipe.record.replay import Replay
from tickpipe.venues.registry import venue_named

REPLAY_TURN_S = 0.005
"""With ``speed`` None (max), or when behind its pace, the replay yields to the event loop
after this long of feeding, so sockets, signals and admin calls are served (as
``MARKET_TURN_S`` for the simulator)."""


class ReplayMarketSim:
    """What the hub and the dialects read of a market (``book``, ``last_price``, ``volume``),
    fed by the replay instead of a random process."""

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.book = OrderBook(instrument)
        self.last_price = 0
        self.volume = 0

    def step(self) -> StepResult:
        """Nothing: a replayed market moves only with the recording."""
        return StepResult()


@dataclass(frozen=True)
class Recording:
    """The parts of one recording, checked: venue, channels, instruments of its symbols."""

    paths: tuple[Path, ...]
    venue: str
    channels: tuple[str, ...]
    instruments: tuple[Instrument, ...]

    @property
    def specs(self) -> tuple[MarketSpec, ...]:
        """One market per recorded symbol (start_mid and typical_lots unused by a replay)."""
        return tuple(MarketSpec(inst, "0", 1) for inst in self.instruments)


def open_recording(paths: tuple[str, ...] | list[str]) -> Recording:
    """Read the headers of ``paths`` (part files or directories). ConfigError naming the file
    when one is missing, empty, corrupt, of another recording or venue, or names a symbol
    without an instrument."""
    try:
        found = find_parts(list(paths))
    except ConfigError as exc:
        raise ConfigError(f"--replay {exc}") from None
    headers: list[tuple[Path, fmt.Header]] = []
    for p in found:
        try:
            headers.append((p, PartReader(p).header))
        except fmt.FormatError as exc:
            msg = str(exc)
            raise ConfigError(f"--replay {msg if str(p) in msg else f'{p}: {msg}'}") from None
        except OSError as exc:
            raise ConfigError(f"--replay {p}: cannot read: {exc.strerror or exc}") from None
    first_path, h = headers[0]
    for p, other in headers[1:]:
        if other.started_wall_ns != h.started_wall_ns or other.venue != h.venue:
            raise ConfigError(
                f"--replay {p}: a part of another recording than {first_path} "
                "(serve one recording at a time)"
            )
    try:
        venue = venue_named(h.venue)
    except ConfigError as exc:
        raise ConfigError(f"--replay {first_path}: venue {h.venue!r}: {exc}") from None
    insts: dict[str, Instrument] = {}
    try:
        body = h.instruments_body if h.instruments_body is not None else _instruments_answer(found)
    except (fmt.FormatError, OSError) as exc:
        raise ConfigError(f"--replay {first_path}: {exc}") from None
    if body is not None:
        try:
            insts = {i.symbol: i for i in venue.decode_instruments(body)}
        except FrameError as exc:
            raise ConfigError(
                f"--replay {first_path}: the recorded instruments do not decode: {exc}"
            ) from None
    symbols: dict[str, None] = {}
    for ch in h.channels:
        try:
            symbols[venue.parse_channel(ch)[1]] = None
        except ValueError as exc:
            raise ConfigError(f"--replay {first_path}: {exc}") from None
    if not symbols:
        raise ConfigError(f"--replay {first_path}: the recording has no channels")
    missing = [s for s in symbols if s not in insts]
    if missing:
        raise ConfigError(
            f"--replay {first_path}: no instrument (tick, lot) recorded for {', '.join(missing)}"
        )
    return Recording(tuple(found), h.venue, tuple(h.channels), tuple(insts[s] for s in symbols))


def _instruments_answer(paths: list[Path]) -> bytes | None:
    """The first instruments answer recorded (the first part's header is written before the
    client asked for it: it is the first ``Rest`` record of the instruments target)."""
    for p in paths:
        reader = PartReader(p)
        target = reader.header.instruments_target
        if reader.header.instruments_body is not None:
            return reader.header.instruments_body
        for rec in reader:
            if isinstance(rec, fmt.Rest) and rec.path == target and 200 <= rec.status < 300:
                return rec.body
    return None


# the hub's side: publish one step of the market of a recorded symbol
PublishStep = Callable[[str, StepResult], None]


class _Sink:
    """The replay's output turned into market steps (see the module docstring)."""

    def __init__(self, source: ReplaySource) -> None:
        self.source = source
        self.replay: _GatewayReplay | None = None

    def event(self, ev: ClientEvent, t: float) -> None:
        pass

    def data(self, item: TickerUpdate | TradeUpdate, t: float) -> None:
        if isinstance(item, TradeUpdate):
            self.source.trade(item)

    def book(self, view: BookView, t: float, mono_ns: int) -> None:
        if not view.synced or self.replay is None or self.replay.channels is None:
            return
        bc = self.replay.channels.books.get(view.channel)
        if bc is not None:
            self.source.book(view.symbol, bc.sync.book)


class _GatewayReplay(Replay):
    """The replay pipeline, fed one record at a time by :class:`ReplaySource`."""

    def feed(self, part: PartReader, rec: fmt.Record) -> bool:
        if self.header is None:
            self._setup(part.header)
        return self._feed(rec)


class ReplaySource:
    """Drives the hub's markets from a recording. ``sims`` (recorded symbol -> the market's
    book holder) and ``publish`` (recorded symbol, step) are wired by the gateway."""

    def __init__(self, recording: Recording, speed: float | None, loop: bool) -> None:
        self.recording = recording
        self.speed = speed
        self.loop = loop
        self.sims: dict[str, ReplayMarketSim] = {
            i.symbol: ReplayMarketSim(i) for i in recording.instruments
        }
        self.publish: PublishStep | None = None
        self.passes = 0  # completed passes over the recording
        self.records = 0
        self.changes = 0  # book changes published
        self.trades = 0
        self.ended = False
        self.error: str | None = None  # why the replay stopped early, if it did
        self._path: Path | None = None

    # -- the replay's output -----------------------------------------------------------------
    def book(self, symbol: str, new: OrderBook) -> None:
        sim = self.sims.get(symbol)
        if sim is None or self.publish is None:
            return
        res = StepResult()
        _diff(sim.book.bids, new.bids.levels, res.bids, res.prior_bids)
        _diff(sim.book.asks, new.asks.levels, res.asks, res.prior_asks)
        if res.empty():
            return
        sim.book.bids.apply(res.bids.items())
        sim.book.asks.apply(res.asks.items())
        self.changes += 1
        self.publish(symbol, res)

    def trade(self, item: TradeUpdate) -> None:
        sim = self.sims.get(item.symbol)
        if sim is None or self.publish is None:
            return
        inst = sim.instrument
        try:
            price = inst.price_units(str(item.price))
            size = inst.size_units(str(item.size))
        except FrameError:  # off the grid: the live client saw it too; nothing to serve
            return
        side: Side = "buy" if item.side == "buy" else "sell"
        sim.last_price = price
        sim.volume += size
        self.trades += 1
        self.publish(item.symbol, StepResult(trades=[SimTrade(price, size, side)]))

    def stats(self) -> dict[str, object]:
        """Progress, for ``GET /admin/stats`` (``replay``)."""
        return {
            "paths": [str(p) for p in self.recording.paths],
            "venue": self.recording.venue,
            "speed": self.speed,
            "loop": self.loop,
            "passes": self.passes,
            "records": self.records,
            "changes": self.changes,
            "trades": self.trades,
            "ended": self.ended,
            "error": self.error,
        }

    # -- the run -------------------------------------------------------------------------------
    async def run(self, running: asyncio.Event | None = None) -> None:
        """Replay the recording (again and again with ``loop``), paced by ``speed``; while
        ``running`` is clear (the gateway's market paused), wait. A part that turns out
        corrupt past its header (or any error of the pipeline) ends the replay with a
        ``replay_error`` log line; the gateway keeps serving the books as they are."""
        while True:
            try:
                await self._one_pass(running)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # bad bytes in a recording must not kill the gateway
                self.ended = True
                self.error = f"{self._path}: {type(exc).__name__}: {exc}"
                log_event("replay_error", level=logging.ERROR, error=self.error)
                return
            self.passes += 1
            if not self.loop:
                self.ended = True
                log_event(
                    "replay_end",
                    records=self.records,
                    changes=self.changes,
                    trades=self.trades,
                )
                return
            log_event("replay_loop", passes=self.passes)

    async def _one_pass(self, running: asyncio.Event | None) -> None:
        sink = _Sink(self)
        replay = _GatewayReplay(sink, self.speed)
        sink.replay = replay
        loop = asyncio.get_running_loop()
        start = loop.time()
        first_mono: int | None = None
        turn_end = time.monotonic() + REPLAY_TURN_S
        for path in self.recording.paths:
            self._path = path
            part = PartReader(path)
            for rec in part:
                assert not isinstance(rec, fmt.Header)
                if running is not None and not running.is_set():
                    paused = loop.time()
                    await running.wait()
                    start += loop.time() - paused
                self.records += 1
                if self.speed is not None:
                    if first_mono is None:
                        first_mono = rec.mono_ns
                    due = start + (rec.mono_ns - first_mono) / 1e9 / self.speed
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        turn_end = time.monotonic() + REPLAY_TURN_S
                if time.monotonic() >= turn_end:  # behind, or as fast as possible: yield
                    await asyncio.sleep(0)
                    turn_end = time.monotonic() + REPLAY_TURN_S
                if not replay.feed(part, rec):
                    return


def _diff(
    side: BookSide, new: dict[int, int], changes: dict[int, int], prior: dict[int, int]
) -> None:
    """Levels of ``new`` that differ from ``side`` (0 = removed), with their prior sizes.
    O(levels of the book) a change: ~15 us for 300 levels a side."""
    old = side.levels
    get = old.get
    for price, size in new.items():
        was = get(price, 0)
        if was != size:
            changes[price] = size
            prior[price] = was
    if len(old) + len(changes) > len(new):  # some old level may be gone
        for price, was in old.items():
            if price not in new:
                changes[price] = 0
                prior[price] = was
