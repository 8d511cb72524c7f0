"""The real client against a hostile gateway's stream (issue 13): deep JSON, a bogus seq, an
endless or never-ending fragmented message. Each case: what a bad peer can do, and that it costs
at most one ``bad_frame`` (or a clean reconnect), never the connection nor a silenced channel."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.client.hostile import OP_CONT, OP_TEXT, HostileGateway, Peer, ticker, until
from tickpipe import Client
from tickpipe.client.events import ClientEvent


def _client(gw: HostileGateway, **knobs: Any) -> Client:
    return Client(gw.stream_url, gw.rest_url, key="k", secret="s", **knobs)


def _recorder(client: Client) -> list[ClientEvent]:
    seen: list[ClientEvent] = []
    client.on_state(seen.append)
    return seen


def _names(events: list[ClientEvent], name: str) -> list[dict[str, Any]]:
    return [e.to_dict() for e in events if e.name == name]


def _deep(channel: str, kind: str, depth: int = 100_000) -> str:
    """A frame of ``kind`` whose unknown field nests ``depth`` arrays (~200 KB)."""
    return f'{{"type":"{kind}","channel":"{channel}","x":' + "[" * depth + "]" * depth + "}"


async def test_deeply_nested_json_is_one_bad_frame_not_a_lost_connection() -> None:
    """Before: msgspec's RecursionError escaped the read callback, picows dropped the socket and
    every book went stale. Now: one bad_frame naming the channel; the book it names resyncs,
    the ticker and the connection carry on."""

    async def script(peer: Peer, channels: list[str]) -> None:
        if "ticker:X" not in channels:
            return
        await peer.send(ticker(1))
        await asyncio.sleep(0.3)
        await peer.send(_deep("ticker:X", "ticker"))
        await peer.send(_deep("orderbook:X", "delta"))
        for seq in range(2, 5):
            await peer.send(ticker(seq))

    async with HostileGateway(script=script) as gw, _client(gw) as client:
        seen = _recorder(client)
        await client.subscribe(["orderbook:X", "ticker:X"])
        await until(
            lambda: (t := client.ticker("X")) is not None and t.seq == 4, 10, "ticker seq 4"
        )
        bad = _names(seen, "bad_frame")
        assert {b["channel"] for b in bad} == {"ticker:X", "orderbook:X"}, bad
        assert all("nested too deeply" in b["error"] for b in bad), bad
        assert _names(seen, "disconnected") == []
        assert gw.connections == 1 and client.connected
        assert client.stats().bad_frames == 2


async def test_a_bogus_huge_seq_does_not_silence_a_ticker() -> None:
    """Before: after ``seq = 2**62`` every later frame was a "duplicate" until a reconnect."""

    async def script(peer: Peer, channels: list[str]) -> None:
        await peer.send(ticker(1))
        await peer.send(ticker(2))
        await peer.send(ticker(2**62))
        for seq in range(3, 7):
            await peer.send(ticker(seq))

    async with HostileGateway(script=script) as gw, _client(gw) as client:
        await client.subscribe(["ticker:X"])
        await until(
            lambda: (t := client.ticker("X")) is not None and t.seq == 6, 10, "ticker seq 6"
        )
        tracker = client._require(client._channels).seqs["ticker:X"].tracker
        assert (tracker.seq, tracker.outliers, tracker.gaps, tracker.missed) == (6, 1, 0, 0)
        assert client.stats().ticker_gaps == 0


async def test_a_bogus_seq_is_reported_as_a_bad_frame_naming_the_channel() -> None:
    async def script(peer: Peer, channels: list[str]) -> None:
        await peer.send(ticker(1))
        await peer.send(ticker(2**62))
        await peer.send(ticker(2))

    async with HostileGateway(script=script) as gw, _client(gw) as client:
        seen = _recorder(client)
        await client.subscribe(["ticker:X"])
        await until(lambda: bool(_names(seen, "bad_frame")), 5, "a bad_frame")
        (bad,) = _names(seen, "bad_frame")
        assert bad["channel"] == "ticker:X" and "jumps" in bad["error"]


async def _endless_fragments(peer: Peer, channels: list[str]) -> None:
    """A text message that never ends: 64 KiB continuation frames, FIN never set."""
    peer.raw(OP_TEXT, b'{"type":"ticker","channel":"ticker:X","x":"', fin=False)
    chunk = b"a" * 65536
    for _ in range(4096):  # bounded: 256 MiB at most, far past any cap under test
        if peer.closed:
            return
        peer.raw(OP_CONT, chunk, fin=False)
        await peer.drained()


async def test_an_endless_fragmented_message_closes_and_reconnects() -> None:
    """Before: past max_frame_bytes the rest was skipped and the socket kept, no data flowing
    and the book still live. Now: 1009 and a reconnect, as for one frame over the bound."""

    async def script(peer: Peer, channels: list[str]) -> None:
        if gw.connections == 1:
            await asyncio.sleep(0.5)  # let the book go live first
            await _endless_fragments(peer, channels)

    async with HostileGateway(script=script) as gw, _client(gw, max_frame_bytes=256 * 1024) as c:
        seen = _recorder(c)
        await c.subscribe(["orderbook:X"])
        await c.wait_synced("X", timeout=10)
        await until(lambda: bool(_names(seen, "disconnected")), 10, "disconnected")
        bad = _names(seen, "bad_frame")
        assert any("over 262144 bytes" in b["error"] for b in bad), bad
        await until(lambda: gw.connections >= 2 and c.connected, 15, "reconnected")
        await c.wait_synced("X", timeout=10)


async def test_a_fragmented_message_that_never_ends_under_the_byte_bound_is_cut() -> None:
    """One byte a fragment, pings flowing: never over max_frame_bytes, and the heartbeat is
    fed. Bounded by max_fragmented_message_s instead."""

    async def script(peer: Peer, channels: list[str]) -> None:
        if gw.connections != 1:
            return
        await asyncio.sleep(0.3)
        peer.raw(OP_TEXT, b'{"type":"ticker","channel":"ticker:X","x":"', fin=False)
        for _ in range(200):  # bounded: 40 s at most
            if peer.closed:
                return
            peer.raw(OP_CONT, b"a", fin=False)
            await asyncio.sleep(0.2)

    async with (
        HostileGateway(script=script, heartbeat_ms=300) as gw,
        _client(gw, max_fragmented_message_s=1.0) as c,
    ):
        seen = _recorder(c)
        await c.subscribe(["orderbook:X"])
        await c.wait_synced("X", timeout=10)
        await until(lambda: bool(_names(seen, "disconnected")), 15, "disconnected")
        bad = _names(seen, "bad_frame")
        assert any("not complete after" in b["error"] for b in bad), bad
        await until(lambda: gw.connections >= 2 and c.connected, 15, "reconnected")


async def test_a_close_frame_without_a_reason_is_read_as_a_close() -> None:
    """Before: picows gives None for a close frame with a code and no text, and the reader's
    ``.decode()`` raised AttributeError (logged by picows as a listener error), so the code
    was lost and the loss was reported as ``error``."""

    async def script(peer: Peer, channels: list[str]) -> None:
        if gw.connections == 1:
            await asyncio.sleep(0.3)
            await peer.ws.close(code=1001)  # a code, no message

    async with HostileGateway(script=script) as gw, _client(gw) as client:
        seen = _recorder(client)
        await client.subscribe(["ticker:X"])
        await until(lambda: bool(_names(seen, "disconnected")), 10, "disconnected")
        (lost,) = _names(seen, "disconnected")
        assert (lost["reason"], lost["code"]) == ("closed", 1001), lost
