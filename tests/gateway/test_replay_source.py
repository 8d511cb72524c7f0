"""``tickpipe gateway --replay``: a recording (made here against the real gateway) served back
in place of the simulator, over VTS/1 and the binance dialect, with faults on top. The truth
each served seq must equal is computed independently by ``tickpipe.record.replay``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tickpipe import Client
from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.client.events import ClientEvent
from tickpipe.client.views import BookView
from tickpipe.errors import ConfigError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.testing import GatewayProcess
from tickpipe.protocol.backoff import BackoffPolicy
from tickpipe.record import format as fmt
from tickpipe.record.reader import PartReader, find_parts
from tickpipe.record.replay import Replay
from tickpipe.record.writer import RecordingWriter

WAIT_S = 30.0  # generous: the machine is shared
FAST_RECONNECT = BackoffPolicy(base_s=0.05, cap_s=0.4, healthy_after_s=5.0)
Levels = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]
EMPTY: Levels = ((), ())


async def record_session(
    out: Path, channels: list[str], seconds: float, dialect: str = "vts"
) -> None:
    """Record ``channels`` from an in-process gateway (faults: drops and a disconnect)."""
    cfg = GatewayConfig(port=0, admin_port=None, seed=5, rate=40.0, dialect=dialect)
    async with Gateway(cfg) as g:
        venue = "vts" if dialect == "vts" else dialect
        if venue == "vts":
            client = Client(g.stream_url, g.rest_url, key=g.key, secret=g.secret)
        else:
            client = Client(venue=venue, stream_url=g.stream_url, rest_url=g.rest_url)
        writer = RecordingWriter(
            out,
            venue=client.venue.name,
            channels=channels,
            stream_url=client.stream_url,
            rest_url=client.rest_url,
            instruments_target=client.venue.instruments_target(),
            snapshot_depth=client.config.snapshot_depth,
            max_snapshot_levels=client.config.max_snapshot_levels,
        )
        writer.start()
        client.recorder = writer
        try:
            async with client:
                await client.subscribe(channels)
                for ch in channels:
                    if ch.startswith("orderbook:"):
                        await client.wait_synced(ch.partition(":")[2], timeout=WAIT_S)
                g.trigger("drop_delta", channel=channels[0])  # a gap in the recording too
                await asyncio.sleep(seconds)
                writer.end("stopped")
        finally:
            writer.close()


class TruthSink:
    """Every distinct synced state of each recorded book, in order (state 0: empty)."""

    def __init__(self) -> None:
        self.replay: Replay | None = None
        self.states: dict[str, list[Levels]] = {}
        self.trades = 0
        self.gaps = 0

    def event(self, ev: ClientEvent, t: float) -> None:
        self.gaps += ev.name == "gap"

    def data(self, item: TickerUpdate | TradeUpdate, t: float) -> None:
        if isinstance(item, TradeUpdate):
            self.trades += 1

    def book(self, view: BookView, t: float, mono_ns: int) -> None:
        if not view.synced:
            return
        assert self.replay is not None and self.replay.channels is not None
        book = self.replay.channels.books[view.channel].sync.book
        state = (tuple(book.bids.top(1 << 30)), tuple(book.asks.top(1 << 30)))
        seen = self.states.setdefault(view.symbol, [EMPTY])
        if seen[-1] != state:
            seen.append(state)


def replayed_truth(path: Path) -> TruthSink:
    sink = TruthSink()
    replay = Replay(sink, None)
    sink.replay = replay
    asyncio.run(replay.run([PartReader(p) for p in find_parts([path])]))
    return sink


def levels_of(view: BookView) -> Levels:
    inst = view._bc.sync.book.instrument
    bids, asks = view.text_levels(None)
    return (
        tuple((inst.price_units(p), inst.size_units(s)) for p, s in bids),
        tuple((inst.price_units(p), inst.size_units(s)) for p, s in asks),
    )


@pytest.fixture(scope="module")
def vts_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TruthSink]:
    out = tmp_path_factory.mktemp("rec") / "vts"
    channels = ["orderbook:BTC-USD", "orderbook:AAPL", "trades:BTC-USD"]
    asyncio.run(record_session(out, channels, 2.5))
    truth = replayed_truth(out)
    assert len(truth.states["BTC-USD"]) > 20 and len(truth.states["AAPL"]) > 20
    assert truth.gaps >= 1  # the recorded session had a gap (and a re-seed) of its own
    return out, truth


async def follow(
    gw: Gateway, client: Client, symbols: dict[str, str], drop: str
) -> tuple[dict[str, list[tuple[int, Levels]]], list[ClientEvent]]:
    """Subscribe (market paused: seq 0), resume the replay with one drop_delta queued on
    ``drop``, follow to the end; every synced book seen, with its seq, by served symbol."""
    seen: dict[str, list[tuple[int, Levels]]] = {s: [] for s in symbols}
    events: list[ClientEvent] = []
    feed = client.events()

    async def pump() -> None:
        async for ev in feed:
            events.append(ev)

    def on_book(view: BookView) -> None:
        if view.synced and view.seq is not None:
            seen[view.symbol].append((view.seq, levels_of(view)))

    client.on_book(on_book)
    task = asyncio.create_task(pump())
    try:
        await client.subscribe([f"orderbook:{s}" for s in symbols])
        for s in symbols:
            await client.wait_synced(s, timeout=WAIT_S)
        gw.trigger("drop_delta", channel=f"orderbook:{drop}")
        gw.resume_market()
        src = gw.replay_source
        assert src is not None
        async with asyncio.timeout(WAIT_S * 2):
            while not src.ended:
                await asyncio.sleep(0.05)
            while not all(
                client.book(s).synced and client.book(s).seq == gw.seq(f"orderbook:{s}")
                for s in symbols
            ):
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # let the last callbacks run
        assert client.stats().resyncs >= 1  # the dropped delta's book was re-seeded (REST)
    finally:
        feed.close()
        task.cancel()
    return seen, events


def check_against_truth(
    gw: Gateway,
    truth: TruthSink,
    seen: dict[str, list[tuple[int, Levels]]],
    served: dict[str, str],
) -> None:
    for sym, rec_sym in served.items():
        states = truth.states[rec_sym]
        last = gw.seq(f"orderbook:{sym}")
        assert last == len(states) - 1  # one seq per distinct synced state of the recording
        for seq in range(last + 1):  # the gateway's truth at every seq: the replayed book
            tb = gw.true_book(sym, seq)
            assert (tuple(tb.bids.top(1 << 30)), tuple(tb.asks.top(1 << 30))) == states[seq]
        assert seen[sym], sym
        for seq, levels in seen[sym]:  # what the client held, at every seq it held
            assert levels == states[seq], f"{sym} at seq {seq}"
        assert seen[sym][-1] == (last, states[-1])  # the final book: the recording's


async def test_vts_replay_follows_the_recording_and_resyncs_after_a_drop(
    vts_recording: tuple[Path, TruthSink],
) -> None:
    path, truth = vts_recording
    cfg = GatewayConfig(port=0, admin_port=None, heartbeat_ms=500, replay_paths=(str(path),))
    gw = Gateway(cfg)
    assert sorted(gw.hub.markets) == ["AAPL", "BTC-USD"]
    gw.pause_market()  # the replay waits at its first record
    async with gw:
        client = Client(
            gw.stream_url, gw.rest_url, key=gw.key, secret=gw.secret, reconnect=FAST_RECONNECT
        )
        async with client:
            served = {"BTC-USD": "BTC-USD", "AAPL": "AAPL"}
            seen, events = await follow(gw, client, served, "AAPL")
        check_against_truth(gw, truth, seen, served)
        assert gw.faults.counts["drop_delta"] == 1
        gaps = [
            e for e in events if e.name == "gap" and getattr(e, "channel", "") == "orderbook:AAPL"
        ]
        assert gaps, [e.to_dict() for e in events]  # re-seeded from the REST snapshot
        assert gw.hub.generated["trades"] == truth.trades > 0


async def test_binance_dialect_serves_the_vts_recording(
    vts_recording: tuple[Path, TruthSink],
) -> None:
    path, truth = vts_recording
    cfg = GatewayConfig(
        port=0, admin_port=None, dialect="binance", replay_paths=(str(path),), replay_speed=2.0
    )
    gw = Gateway(cfg)
    assert sorted(gw.hub.markets) == ["AAPL", "BTCUSDT"]
    gw.pause_market()
    async with gw:
        client = Client(
            venue="binance",
            stream_url=gw.stream_url,
            rest_url=gw.rest_url,
            reconnect=FAST_RECONNECT,
            snapshot_jitter_s=0.02,
        )
        async with client:
            served = {"BTCUSDT": "BTC-USD", "AAPL": "AAPL"}
            seen, events = await follow(gw, client, served, "BTCUSDT")
        check_against_truth(gw, truth, seen, served)
        assert gw.faults.counts["drop_delta"] == 1
        assert any(e.name == "gap" for e in events), [e.to_dict() for e in events]


@pytest.mark.parametrize("dialect", ["okx", "binance-usdm", "bybit", "kraken", "coinbase"])
async def test_every_venue_dialect_serves_the_recording(
    vts_recording: tuple[Path, TruthSink], dialect: str
) -> None:
    """Each dialect's own update ids: the books compared at the end (top 10 a side: some
    venues' streams carry a bounded depth), the history at every seq."""
    path, truth = vts_recording
    cfg = GatewayConfig(
        port=0, admin_port=None, dialect=dialect, replay_paths=(str(path),), replay_speed=4.0
    )
    gw = Gateway(cfg)
    served = dict(zip(gw.hub.markets, ["BTC-USD", "AAPL"], strict=True))
    gw.pause_market()
    async with gw:
        client = Client(
            venue=dialect,
            stream_url=gw.stream_url,
            rest_url=gw.rest_url,
            reconnect=FAST_RECONNECT,
            snapshot_jitter_s=0.02,
        )
        async with client:
            await client.subscribe([f"orderbook:{s}" for s in served])
            for s in served:
                await client.wait_synced(s, timeout=WAIT_S)
            gw.resume_market()
            src = gw.replay_source
            assert src is not None
            async with asyncio.timeout(WAIT_S * 2):
                while not src.ended:
                    await asyncio.sleep(0.05)
                for sym, rec_sym in served.items():
                    final = truth.states[rec_sym][-1]
                    want = (final[0][:10], final[1][:10])
                    view = client.book(sym)
                    while (
                        not view.synced
                        or (levels_of(view)[0][:10], levels_of(view)[1][:10]) != want
                    ):
                        await asyncio.sleep(0.05)
        for sym, rec_sym in served.items():
            states = truth.states[rec_sym]
            assert gw.seq(f"orderbook:{sym}") == len(states) - 1
            for seq in range(len(states)):
                tb = gw.true_book(sym, seq)
                assert (tuple(tb.bids.top(1 << 30)), tuple(tb.asks.top(1 << 30))) == states[seq]


def test_bad_recordings_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope"):
        Gateway(GatewayConfig(port=0, replay_paths=(str(tmp_path / "nope"),)))
    empty = tmp_path / "empty.tpr.zst"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"empty\.tpr\.zst"):
        Gateway(GatewayConfig(port=0, replay_paths=(str(empty),)))


async def test_a_cut_recording_serves_up_to_the_cut_and_bad_bytes_end_the_replay(
    vts_recording: tuple[Path, TruthSink], tmp_path: Path
) -> None:
    path, _ = vts_recording
    (part,) = find_parts([path])
    data = part.read_bytes()
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / part.name).write_bytes(data[: len(data) * 2 // 3])  # kill -9 mid-chunk
    truth = await asyncio.to_thread(replayed_truth, cut)
    decoded = fmt.decode_part(data)
    half = decoded.records[: len(decoded.records) // 2]
    bad = tmp_path / "bad.tpr.zst"  # a record that is whole but does not decode, mid-file
    bad.write_bytes(
        fmt.compress_chunk(fmt.encode_records([decoded.header]))
        + fmt.compress_chunk(fmt.encode_records(half))
        + fmt.compress_chunk(b"\x05\x00\x00\x00\xc1\xc1\xc1\xc1\xc1")
    )
    for where, want in ((cut, None), (bad, "does not decode")):
        cfg = GatewayConfig(port=0, admin_port=None, replay_paths=(str(where),), replay_speed=None)
        async with Gateway(cfg) as gw:
            src = gw.replay_source
            assert src is not None
            async with asyncio.timeout(WAIT_S):
                while not src.ended:
                    await asyncio.sleep(0.01)
            if want is None:
                assert src.error is None
                assert gw.seq("orderbook:AAPL") == len(truth.states["AAPL"]) - 1
            else:
                assert src.error is not None and want in src.error and "bad.tpr.zst" in src.error
                assert gw.seq("orderbook:AAPL") > 0  # served up to the bad record, still up
                assert gw.stats()["replay"]["error"] == src.error


def tickpipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tickpipe", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_bad_input_exits_2_naming_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.tpr.zst"
    corrupt.write_bytes(b"not zstd at all")
    empty = tmp_path / "empty.tpr.zst"
    empty.write_bytes(b"")
    emptydir = tmp_path / "emptydir"
    emptydir.mkdir()
    for path, why in (
        (tmp_path / "missing", "no such recording"),
        (corrupt, "not a tickpipe recording"),
        (empty, "empty"),
        (emptydir, "no recording parts"),
    ):
        r = tickpipe("gateway", "--port", "0", "--no-admin", "--replay", str(path))
        assert r.returncode == 2, r.stderr
        assert str(path) in r.stderr and why in r.stderr, r.stderr
    r = tickpipe("gateway", "--port", "0", "--no-admin", "--speed", "2")
    assert r.returncode == 2 and "--replay" in r.stderr
    r = tickpipe("gateway", "--help")
    assert "--replay" in r.stdout and "--replay-loop" in r.stdout


async def test_replay_loop_starts_over_with_seqs_going_on(
    vts_recording: tuple[Path, TruthSink],
) -> None:
    path, truth = vts_recording
    cfg = GatewayConfig(
        port=0, admin_port=None, replay_paths=(str(path),), replay_speed=None, replay_loop=True
    )
    async with Gateway(cfg) as gw:
        src = gw.replay_source
        assert src is not None
        async with asyncio.timeout(WAIT_S):
            while src.passes < 2:
                await asyncio.sleep(0.01)
        gw.pause_market()
        states = truth.states["AAPL"]
        last = len(states) - 1
        assert gw.seq("orderbook:AAPL") > 2 * last - 5
        for k in range(1, last + 1):  # pass 2: the recording again, seqs going on
            tb = gw.true_book("AAPL", last + k)
            assert (tuple(tb.bids.top(1 << 30)), tuple(tb.asks.top(1 << 30))) == states[k]
        assert not src.ended and gw.stats()["replay"]["passes"] >= 2


async def test_cli_serves_a_binance_recording_in_its_own_dialect(tmp_path: Path) -> None:
    out = tmp_path / "bin"
    await record_session(out, ["orderbook:BTCUSDT", "trades:BTCUSDT"], 1.5, dialect="binance")
    truth = await asyncio.to_thread(replayed_truth, out)
    final = truth.states["BTCUSDT"][-1]
    # no --dialect: the recording's venue; --speed max: the final books at once
    with GatewayProcess("--replay", str(out), "--speed", "max", "--no-admin") as gp:
        assert gp.ready["dialect"] == "binance" and gp.ready["replay"] == [str(out)]
        assert gp.ready["symbols"] == ["BTCUSDT"]
        client = Client(venue="binance", stream_url=gp.stream_url, rest_url=gp.rest_url)
        async with client:
            await client.subscribe(["orderbook:BTCUSDT"])
            view = await client.wait_synced("BTCUSDT", timeout=WAIT_S)
            async with asyncio.timeout(WAIT_S):
                while levels_of(view) != final:
                    await asyncio.sleep(0.05)
            assert view.seq == len(truth.states["BTCUSDT"]) - 1
