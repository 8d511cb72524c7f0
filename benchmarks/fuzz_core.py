"""Fuzz the pure core: random and mutated VTS/1 frames through decode + parse_levels + sync.

Plays a gateway and a network against a client shell built only of the core, the way
``tickpipe.client`` uses it:

- the gateway: three books (tick 0.50/lot 1, 0.01/0.001, 1/0.00000001) moving at random, at
  most 10 levels a side so that the CRC-32 covers every level; tickers and trades; REST
  snapshots of the true book at recent seqs;
- the network: each true frame is delivered, dropped, held back (reordered), duplicated or
  given a flipped checksum; mutated frames (bit flips, byte edits, truncation, splices, values
  swapped for values of other types) and random frames (bytes, JSON values, near-valid frames
  from a small grammar) are mixed in; snapshots arrive late, fail (with Retry-After), or come
  for an old epoch; the stream is lost and the channels re-subscribed now and then.

It fails (exit 1) on any exception other than the typed FrameError out of decode/parse, on an
IllegalTransition (the shell only feeds legal inputs), on a buffer past its bound, and on a
book marked synced that is not the true book at its seq. One case is not the core's fault and
is counted, not failed: a mutated frame that VTS/1 itself cannot tell from a real one (for
example a real frame whose seq was bumped to last+1: applying it again is idempotent and its
checksum matches). Such a frame is a "forgery"; if the book is wrong after one, the channel is
re-subscribed and the fuzz goes on.

It runs on the compiled hot path when it is built (``tickpipe.hotpath``), or with ``--pure``
on the pure-Python reference in the same process (``hotpath.pure()``): the fuzz holds both to
the same truth. The first line of the summary names the path that ran.

Run:  .venv/bin/python benchmarks/fuzz_core.py [--frames 1000000] [--seconds 600] [--seed 1]
                                               [--pure]
The CI-sized run of the same code, on both paths, is tests/protocol/test_fuzz_core.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal

from tickpipe import hotpath
from tickpipe.errors import FrameError
from tickpipe.protocol import frames
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.seqtrack import SeqResult, SeqTracker
from tickpipe.protocol.sync import BookSync, DeltaResult, Gap, SyncConfig, SyncState

Level = tuple[int, int]
Levels = tuple[tuple[int, int], ...]

INSTRUMENTS = [
    Instrument("XAU-USD", "metal", "0.50", "1"),
    Instrument("ETH-USD", "crypto", "0.01", "0.001"),
    Instrument("SAT-USD", "crypto", "1", "0.00000001"),
]
HISTORY = 4096  # true books kept per channel, to check a synced book against its seq
MAX_BUFFER = 32  # small, so that full buffers trim (keep the newest)
WIDTH = 20  # price ticks a book spans: <= 10 levels a side


class FuzzFailure(AssertionError):
    """The core did something it must never do."""


def fixed(units: int, decimals: int) -> str:
    return f"{Decimal(units).scaleb(-decimals):.{decimals}f}"


def ref_checksum(inst: Instrument, bids: dict[int, int], asks: dict[int, int]) -> int:
    top_b = sorted(bids, reverse=True)[:10]
    top_a = sorted(asks)[:10]
    parts = []
    for i in range(10):
        for side, top in ((bids, top_b), (asks, top_a)):
            if i < len(top):
                parts.append(
                    f"{fixed(top[i], inst.price_decimals)}:"
                    f"{fixed(side[top[i]], inst.size_decimals)}"
                )
    return zlib.crc32(":".join(parts).encode())


# -- the gateway ---------------------------------------------------------------------------------
@dataclass
class TrueBook:
    """One channel's truth: the book after each seq (bounded history) and its frames."""

    inst: Instrument
    rng: random.Random
    seq: int = 1000
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    history: dict[int, tuple[Levels, Levels]] = field(default_factory=dict)
    sent: dict[int, bytes] = field(default_factory=dict)  # recent true frames by seq

    def __post_init__(self) -> None:
        self.channel = f"orderbook:{self.inst.symbol}"
        for k in range(1, WIDTH + 1):
            if self.rng.random() < 0.6:
                side = self.bids if k <= WIDTH // 2 else self.asks
                side[k * self.inst.tick_units] = self.rng.randint(1, 9) * self.inst.lot_units
        self._remember()

    def _remember(self) -> None:
        self.history[self.seq] = (
            tuple(sorted(self.bids.items())),
            tuple(sorted(self.asks.items())),
        )
        self.history.pop(self.seq - HISTORY, None)
        self.sent.pop(self.seq - 64, None)

    def advance(self) -> tuple[int, list[Level], list[Level], int]:
        tick, lot = self.inst.tick_units, self.inst.lot_units
        d_b: list[Level] = []
        d_a: list[Level] = []
        for _ in range(self.rng.randint(1, 4)):
            is_bid = self.rng.random() < 0.5
            k = (
                self.rng.randint(1, WIDTH // 2)
                if is_bid
                else self.rng.randint(WIDTH // 2 + 1, WIDTH)
            )
            size = self.rng.choice((0, 0, 1, 2, 3, 7, 10**6)) * lot
            side = self.bids if is_bid else self.asks
            if size:
                side[k * tick] = size
            else:
                side.pop(k * tick, None)
            (d_b if is_bid else d_a).append((k * tick, size))
        self.seq += 1
        self._remember()
        cs = ref_checksum(self.inst, self.bids, self.asks)
        return self.seq, d_b, d_a, cs

    def frame(self, seq: int, bids: list[Level], asks: list[Level], checksum: int) -> bytes:
        pd, sd = self.inst.price_decimals, self.inst.size_decimals
        return json.dumps(
            {
                "type": "delta",
                "channel": self.channel,
                "seq": seq,
                "ts": 1_700_000_000_000_000_000 + seq,
                "bids": [[fixed(p, pd), fixed(s, sd)] for p, s in bids],
                "asks": [[fixed(p, pd), fixed(s, sd)] for p, s in asks],
                "checksum": checksum,
            },
            separators=(",", ":"),
        ).encode()

    def snapshot_body(self, seq: int) -> bytes:
        bids, asks = self.history[seq]
        pd, sd = self.inst.price_decimals, self.inst.size_decimals
        return json.dumps(
            {
                "symbol": self.inst.symbol,
                "seq": seq,
                "ts": 1,
                "bids": [[fixed(p, pd), fixed(s, sd)] for p, s in reversed(bids)],
                "asks": [[fixed(p, pd), fixed(s, sd)] for p, s in asks],
            }
        ).encode()


# -- mutations -----------------------------------------------------------------------------------
WEIRD_VALUES: list[object] = [
    None, True, False, 0, -1, 1.5, 1e308, 2**64, -(2**63), "", "x", "-1", "1e5", "١٢", "0x10",
    " 1", "1_0", "NaN", "189.12", "0", "0.000", [], {}, [[]], [["1"]], [["1", "2", "3"]],
    [["0", "1"]], [[1, 2]], "orderbook:", "ticker:XAU-USD", "trades:ETH-USD", "\u0000", "é" * 50,
    "9" * 5000,
]  # fmt: skip
FIELDS = ["type", "channel", "seq", "ts", "bids", "asks", "checksum", "bid", "price", "side", "id"]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if not b:
            b.extend(rng.randbytes(rng.randint(1, 8)))
            continue
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.randrange(256)
        elif op == 2:
            del b[i : i + rng.randint(1, 8)]
        elif op == 3:
            b[i:i] = rng.choice([b'"', b",", b"]", b"{", b"-", b"0", b"9", b"e", b"\\", b"\xff"])
        elif op == 4:
            del b[i:]
        elif op == 5:
            j = rng.randrange(len(b))
            b[i:i] = b[j : j + rng.randint(1, 16)]
        else:
            digits = [k for k, c in enumerate(b) if 48 <= c <= 57]
            if digits:
                b[rng.choice(digits)] = rng.randint(48, 57)
    return bytes(b)


def mutate_json(rng: random.Random, data: bytes) -> bytes:
    obj = json.loads(data)
    for _ in range(rng.randint(1, 2)):
        op = rng.randrange(5)
        key = rng.choice(FIELDS)
        if op == 0:
            obj[key] = rng.choice(WEIRD_VALUES)
        elif op == 1:
            obj.pop(rng.choice(list(obj)), None)
        elif op == 2 and isinstance(obj.get("seq"), int):
            obj["seq"] += rng.choice((-2, -1, 1, 2, 10**6, 10**18))
        elif op == 3:
            for side in ("bids", "asks"):
                levels = obj.get(side)
                if isinstance(levels, list) and levels and isinstance(levels[0], list):
                    lvl = rng.choice(levels)
                    if lvl:
                        lvl[rng.randrange(len(lvl))] = rng.choice(WEIRD_VALUES)
        else:
            obj["extra"] = rng.choice(WEIRD_VALUES)
    return json.dumps(obj).encode()


def random_frame(rng: random.Random, channels: list[str]) -> bytes:
    op = rng.randrange(4)
    if op == 0:
        return rng.randbytes(rng.randint(0, 64))
    if op == 1:
        return json.dumps(rng.choice(WEIRD_VALUES)).encode()
    ch = rng.choice(channels)
    kind = rng.choice(["delta", "ticker", "trade", "subscribed", "error", "authenticated", "?"])
    obj: dict[str, object] = {"type": kind, "channel": ch, "seq": rng.randint(-5, 3000), "ts": 1}
    if kind == "delta":
        obj["bids"] = [[rng.choice(WEIRD_VALUES), "1"] for _ in range(rng.randint(0, 3))]
        obj["asks"] = [[str(rng.randint(0, 30)), rng.choice(["1", "0", "1.5", "-1"])]]
    for k in rng.sample(FIELDS, rng.randint(0, 3)):
        obj[k] = rng.choice(WEIRD_VALUES)
    return json.dumps(obj).encode()


def side_frame(rng: random.Random, channel: str, seq: int) -> bytes:
    """A valid ticker or trade frame of ``channel``."""
    obj: dict[str, object] = {"channel": channel, "seq": seq, "ts": 1}
    if channel.startswith("ticker:"):
        obj.update(type="ticker", bid="1", bid_size="1", ask="2", ask_size="1", last="1")
        obj["volume"] = "10"
    else:
        obj.update(
            type="trade", id=f"T{seq}", price="1", size="1", side=rng.choice(["buy", "sell"])
        )
    return json.dumps(obj).encode()


# -- the client shell, made of the core only ---------------------------------------------------
@dataclass
class Report:
    hot_path: str = ""  # hotpath.describe(), or the pure path chosen by --pure
    frames: int = 0
    decoded: int = 0
    frame_errors: int = 0
    level_errors: int = 0
    deltas_fed: int = 0
    applied: int = 0
    buffered: int = 0
    duplicates: int = 0
    gap_results: int = 0
    snapshots: int = 0
    snapshot_errors: int = 0
    synced_checks: int = 0
    forgeries_accepted: int = 0
    undetectable_forgeries: int = 0
    reconnects: int = 0
    seq_gaps: int = 0
    elapsed_s: float = 0.0
    gaps: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        rate = self.frames / self.elapsed_s if self.elapsed_s else 0.0
        lines = [f"{k:>24}: {v}" for k, v in vars(self).items() if k not in ("gaps", "elapsed_s")]
        lines.append(f"{'gaps by reason':>24}: {self.gaps}")
        lines.append(f"{'elapsed':>24}: {self.elapsed_s:.1f} s ({rate:,.0f} frames/s)")
        return "\n".join(lines)


class Shell:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.truth = {
            i.symbol: TrueBook(i, random.Random(f"{seed}:{i.symbol}")) for i in INSTRUMENTS
        }
        cfg = SyncConfig(max_buffered_deltas=MAX_BUFFER, healthy_after_deltas=3)
        self.syncs = {
            tb.channel: BookSync(tb.channel, tb.inst, self.rng.random, cfg)
            for tb in self.truth.values()
        }
        self.by_channel = {tb.channel: tb for tb in self.truth.values()}
        self.trackers = {
            f"{k}:{s}": SeqTracker(f"{k}:{s}") for s in self.truth for k in ("ticker", "trades")
        }
        self.side_seq = dict.fromkeys(self.trackers, 0)
        self.forged = dict.fromkeys(self.syncs, False)
        self.held: dict[str, bytes | None] = dict.fromkeys(self.syncs)
        self.channels = list(self.syncs) + list(self.trackers)
        self.report = Report()
        self.steps = 0
        self.stalled_until = dict.fromkeys(self.syncs, 0)  # snapshot service slow: buffers trim
        for sync in self.syncs.values():
            sync.start()

    # -- inputs ------------------------------------------------------------------------------
    def feed(self, raw: bytes, *, honest: bool) -> None:
        r = self.report
        r.frames += 1
        try:
            f = frames.decode_server_frame(raw)
        except FrameError as exc:
            r.frame_errors += 1
            sync = self.syncs.get(exc.channel or "")
            if sync is not None and sync.state not in (SyncState.IDLE, SyncState.STALE):
                sync.on_bad_frame()
                self.check(sync.channel)
            return
        r.decoded += 1
        if isinstance(f, (frames.Ticker, frames.Trade)):
            tracker = self.trackers.get(f.channel)
            if tracker is not None and tracker.feed(f.seq) is SeqResult.GAP:
                r.seq_gaps += 1
            return
        if not isinstance(f, frames.Delta):
            return
        sync = self.syncs.get(f.channel)
        if sync is None or sync.state in (SyncState.IDLE, SyncState.STALE):
            return
        # as the client: a LIVE book's next delta in one compiled step, else parse + on_delta
        res = sync.on_delta_texts(f.seq, f.bids, f.asks, f.checksum)
        if res is None:
            inst = sync.book.instrument
            try:
                bids = frames.parse_levels(f.bids, inst, f.channel, "bids")
                asks = frames.parse_levels(f.asks, inst, f.channel, "asks")
            except FrameError as exc:
                if exc.channel != f.channel or exc.field is None:
                    raise FuzzFailure(
                        f"level error does not name channel and field: {exc!r}"
                    ) from None
                r.level_errors += 1
                sync.on_bad_frame()
                self.check(f.channel)
                return
            res = sync.on_delta(f.seq, bids, asks, f.checksum)
        r.deltas_fed += 1
        tb = self.by_channel[f.channel]
        if res is DeltaResult.APPLIED:
            r.applied += 1
        elif res is DeltaResult.BUFFERED:
            r.buffered += 1
        elif res is DeltaResult.DUPLICATE:
            r.duplicates += 1
        else:
            r.gap_results += 1
        if not honest and res is not DeltaResult.DUPLICATE and tb.sent.get(f.seq) != raw:
            # a mutated frame got in: VTS/1 may not be able to tell it from a real one
            r.forgeries_accepted += 1
            self.forged[f.channel] = True
        self.check(f.channel)

    def answer_snapshots(self) -> None:
        rng, r = self.rng, self.report
        for channel, sync in self.syncs.items():
            if sync.state not in (SyncState.SYNCING, SyncState.RESYNCING) or rng.random() > 0.1:
                continue
            if self.steps < self.stalled_until[channel]:
                continue
            if rng.random() < 0.01:
                self.stalled_until[channel] = self.steps + rng.randint(50, 400)
                continue
            tb = self.by_channel[channel]
            u = rng.random()
            epoch = sync.epoch if u > 0.05 else sync.epoch - rng.randint(1, 3)  # late ones too
            if u < 0.15:
                sync.on_snapshot_failed(epoch, rng.choice([None, 0.5, 30.0]))
                self.check(channel)
                continue
            seq = max(tb.seq - rng.randint(0, 6), min(tb.history))
            body = tb.snapshot_body(seq)
            if u < 0.25:
                body = mutate_bytes(rng, body)
            try:
                snap = frames.decode_snapshot(body)
                bids = frames.parse_levels(snap.bids, tb.inst, channel, "bids")
                asks = frames.parse_levels(snap.asks, tb.inst, channel, "asks")
            except FrameError:
                r.snapshot_errors += 1
                sync.on_snapshot_failed(epoch)
                self.check(channel)
                continue
            if snap.seq not in tb.history or tb.history[snap.seq] != (
                tuple(sorted(bids)),
                tuple(sorted(asks)),
            ):
                r.snapshot_errors += 1  # a mutated body that still parses: a shell would not
                sync.on_snapshot_failed(epoch)  # know, but a wrong snapshot is not our subject
                self.check(channel)
                continue
            r.snapshots += 1
            sync.on_snapshot(epoch, snap.seq, bids, asks)
            self.check(channel)

    def check(self, channel: str) -> None:
        sync = self.syncs[channel]
        events = sync.take_events()
        if len(events) > 6:
            raise FuzzFailure(f"{channel}: {len(events)} events from one input: {events}")
        for ev in events:
            if isinstance(ev, Gap):
                self.report.gaps[ev.reason] = self.report.gaps.get(ev.reason, 0) + 1
        if sync.buffered > MAX_BUFFER:
            raise FuzzFailure(f"{channel}: buffer {sync.buffered} > {MAX_BUFFER}")
        if not sync.synced:
            return
        tb = self.by_channel[channel]
        assert sync.seq is not None
        want = tb.history.get(sync.seq)
        got = (
            tuple(sorted(sync.book.bids.levels.items())),
            tuple(sorted(sync.book.asks.levels.items())),
        )
        if want is not None and got == want:
            self.report.synced_checks += 1
            self.forged[channel] = False
            return
        if self.forged[channel]:
            self.report.undetectable_forgeries += 1
            self.forged[channel] = False
            sync.stop()  # the shell's remedy: re-subscribe
            sync.start()
            sync.take_events()
            return
        raise FuzzFailure(
            f"{channel}: synced at seq {sync.seq} but the book is not the true one "
            f"(truth seq {tb.seq}): {sync.book!r} vs {want!r}"
        )

    # -- one step of the world ---------------------------------------------------------------
    def step(self) -> None:
        rng = self.rng
        self.steps += 1
        u = rng.random()
        if u < 0.70:
            self.true_delta()
        elif u < 0.80:
            sym = rng.choice(list(self.truth))
            ch = f"{rng.choice(('ticker', 'trades'))}:{sym}"
            self.side_seq[ch] += rng.choice((1, 1, 1, 2, 0))  # gaps and duplicates too
            self.feed(side_frame(rng, ch, self.side_seq[ch]), honest=True)
        elif u < 0.92:
            tb = rng.choice(list(self.truth.values()))
            base = tb.sent.get(tb.seq) or tb.frame(tb.seq, [], [], 0)
            raw = mutate_bytes(rng, base) if rng.random() < 0.6 else mutate_json(rng, base)
            self.feed(raw, honest=False)
        else:
            self.feed(random_frame(rng, self.channels), honest=False)
        self.answer_snapshots()
        if rng.random() < 0.0005:
            self.lose_stream()
        elif rng.random() < 0.0005:  # an upstream queue dropped frames of one channel
            sync = rng.choice(list(self.syncs.values()))
            if sync.state not in (SyncState.IDLE, SyncState.STALE):
                sync.on_overflow()
                self.check(sync.channel)

    def true_delta(self) -> None:
        rng = self.rng
        tb = rng.choice(list(self.truth.values()))
        seq, b, a, cs = tb.advance()
        raw = tb.frame(seq, b, a, cs)
        tb.sent[seq] = raw
        u = rng.random()
        held, self.held[tb.channel] = self.held[tb.channel], None
        if u < 0.03:
            pass  # dropped
        elif u < 0.06:
            self.held[tb.channel] = raw  # delivered after the next one: reordered
        elif u < 0.09:
            self.feed(tb.frame(seq, b, a, cs ^ rng.randint(1, 2**32 - 1)), honest=True)
        elif u < 0.12:
            self.feed(raw, honest=True)
            old = tb.sent.get(seq - rng.randint(0, 5))
            if old is not None:
                self.feed(old, honest=True)
        else:
            self.feed(raw, honest=True)
        if held is not None:
            self.feed(held, honest=True)

    def lose_stream(self) -> None:
        self.report.reconnects += 1
        for channel, sync in self.syncs.items():
            sync.on_stream_lost("closed")
            self.held[channel] = None
            self.check(channel)
        for tracker in self.trackers.values():
            tracker.rebaseline()
        for _ in range(self.rng.randint(0, 20)):  # the gateway moves on while we are away
            self.rng.choice(list(self.truth.values())).advance()
        for channel, sync in self.syncs.items():
            sync.start()
            self.check(channel)


def path_name(pure: bool) -> str:
    """The hot path a run uses: ``pure`` forces the reference in this process."""
    return "pure Python (--pure: tickpipe.hotpath.pure())" if pure else hotpath.describe()


def run(frames_max: int, seconds: float, seed: int, pure: bool = False) -> Report:
    """Fuzz until ``frames_max`` frames or ``seconds`` elapsed, on the compiled hot path when
    it is built, or on the pure reference when ``pure``. Raises FuzzFailure."""
    with hotpath.pure() if pure else contextlib.nullcontext():
        shell = Shell(seed)
        shell.report.hot_path = path_name(pure)
        t0 = time.perf_counter()
        deadline = t0 + seconds
        while shell.report.frames < frames_max:
            shell.step()
            if shell.report.frames % 4096 == 0 and time.perf_counter() > deadline:
                break
        shell.report.elapsed_s = time.perf_counter() - t0
    return shell.report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--pure", action="store_true", help="run the pure-Python reference (hotpath.pure())"
    )
    args = ap.parse_args(argv)
    print(f"hot path: {path_name(args.pure)}", flush=True)
    try:
        report = run(args.frames, args.seconds, args.seed, pure=args.pure)
    except FuzzFailure as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # anything but the typed errors is a bug: report it, exit 1
        print(f"FAIL: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        raise
    print(report.summary())
    if report.frames < args.frames:
        print(f"stopped by the time bound before {args.frames} frames", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
