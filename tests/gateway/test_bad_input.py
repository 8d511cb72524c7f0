"""Garbage from a client gets a clear error (and, where section 1 says so, a close), while
every other client keeps its stream with nothing lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.gateway.wire import collect, connect, recv, recv_until, subscribe, texts
from tickpipe.gateway import Gateway


class Observer:
    """A well-behaved client reading orderbook:AAPL in the background, checking contiguity."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seqs: list[int] = []
        self.problems: list[str] = []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                self.problems.append(f"socket ended: {msg.type}")
                return
            f = json.loads(msg.data)
            if f.get("channel") != "orderbook:AAPL":
                continue
            if self.seqs and f["seq"] != self.seqs[-1] + 1:
                self.problems.append(f"gap {self.seqs[-1]} -> {f['seq']}")
            self.seqs.append(f["seq"])

    async def finish(self) -> None:
        n = len(self.seqs)
        await asyncio.sleep(0.3)
        self.task.cancel()
        assert self.problems == []
        assert len(self.seqs) > n  # still flowing


@pytest.fixture
async def observed(gateway: Gateway) -> AsyncIterator[tuple[Gateway, aiohttp.ClientSession]]:
    async with aiohttp.ClientSession() as s:
        ws = await connect(s, gateway.stream_url)
        await subscribe(ws, ["orderbook:AAPL"])
        obs = Observer(ws)
        yield gateway, s
        await obs.finish()


async def _error(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    f, _ = await recv_until(ws, lambda f: f.get("type") == "error")
    return f


@pytest.mark.parametrize(
    ("payload", "code", "needle"),
    [
        ("this is not json", "bad_json", "JSON"),
        ("[1, 2, 3]", "bad_frame", "object"),
        ('{"action": "launch", "id": 4}', "unknown_action", "launch"),
        ('{"no_action": true}', "unknown_action", "None"),
        ('{"action": "subscribe", "channels": "ticker:AAPL", "id": 5}', "bad_frame", "channels"),
        ('{"action": "subscribe", "channels": [1, 2]}', "bad_frame", "channels"),
        ('{"action": "cancel_on_disconnect", "enabled": "yes"}', "bad_frame", "enabled"),
        (
            '{"action": "auth", "key": "demo", "ts": 1, "sig": "x"}',
            "already_authenticated",
            "already",
        ),
    ],
)
async def test_garbage_frames_get_a_named_error_and_the_connection_lives(
    observed: tuple[Gateway, aiohttp.ClientSession], payload: str, code: str, needle: str
) -> None:
    gw, s = observed
    ws = await connect(s, gw.stream_url)
    await ws.send_str(payload)
    err = await _error(ws)
    assert err["code"] == code and needle in str(err["message"]), err
    if '"id": 4' in payload:
        assert err["id"] == 4
    sub, _ = await subscribe(ws, ["ticker:AAPL"])  # still serving this client
    assert sub["channels"] == ["ticker:AAPL"]


async def test_binary_frame_is_refused(observed: tuple[Gateway, aiohttp.ClientSession]) -> None:
    gw, s = observed
    ws = await connect(s, gw.stream_url)
    await ws.send_bytes(b'{"action": "subscribe"}')
    err = await _error(ws)
    assert err["code"] == "bad_frame" and "binary" in str(err["message"])


async def test_1mib_frame_error_then_close_1008_on_repeat(
    observed: tuple[Gateway, aiohttp.ClientSession],
) -> None:
    gw, s = observed
    ws = await connect(s, gw.stream_url)
    big = json.dumps({"action": "subscribe", "channels": ["x" * (1 << 20)]})
    await ws.send_str(big)
    err = await _error(ws)
    assert err["code"] == "frame_too_large" and "65536" in str(err["message"])
    await ws.send_str(big)
    items = await collect(ws, 3.0)
    assert [f["code"] for f in texts(items) if f.get("type") == "error"] == ["frame_too_large"]
    assert items[-1] == ("close", 1008)


async def test_flood_of_frames_error_then_close_1008(
    observed: tuple[Gateway, aiohttp.ClientSession],
) -> None:
    gw, s = observed
    ws = await connect(s, gw.stream_url)
    for i in range(1000):  # 1000 frames as fast as the socket takes them
        await ws.send_str(json.dumps({"action": "unsubscribe", "channels": [], "id": i}))
    items = await collect(ws, 3.0)
    frames_in = texts(items)
    errors = [f for f in frames_in if f.get("type") == "error"]
    assert errors and errors[0]["code"] == "too_many_frames" and "50" in str(errors[0]["message"])
    answered = [f for f in frames_in if f.get("type") == "unsubscribed"]
    assert len(answered) == 50  # the first 50 were served
    assert items[-1] == ("close", 1008)


@pytest.mark.slow
async def test_slow_consumer_is_closed_and_others_keep_going() -> None:
    from tests.conftest import gateway_config

    async with (
        Gateway(gateway_config(rate=0, max_queue_frames=64)) as gw,
        aiohttp.ClientSession() as s,
    ):
        slow = await connect(s, gw.stream_url)
        chans = [f"orderbook:{i.symbol}" for i in gw.instruments]
        await slow.send_json({"action": "subscribe", "channels": chans, "id": 1})
        # never read 'slow'; its socket buffers fill, then its queue: the gateway closes it
        for _ in range(100):
            await asyncio.sleep(0.1)
            if gw.stats()["disconnects"].get("slow_consumer"):
                break
        assert gw.stats()["disconnects"].get("slow_consumer") == 1
        fast = await connect(s, gw.stream_url)
        await subscribe(fast, ["orderbook:AAPL"])
        assert (await recv(fast))["channel"] == "orderbook:AAPL"


async def test_fuzzed_garbage_each_gets_one_error_and_nothing_breaks() -> None:
    """200 seeded garbage frames (random text, truncated and mistyped frames): each answered
    by exactly one error frame, the connection stays up and still subscribes."""
    import random

    from tests.conftest import gateway_config

    rng = random.Random(4)
    valid = [
        '{"action": "subscribe", "channels": ["ticker:AAPL"], "id": 1}',
        '{"action": "unsubscribe", "channels": ["ticker:AAPL"], "id": 2}',
        '{"action": "cancel_on_disconnect", "enabled": true}',
    ]
    junk: list[str] = []
    for _ in range(200):
        kind = rng.randrange(4)
        if kind == 0:  # random printable text
            junk.append("".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(1, 80))))
        elif kind == 1:  # a valid frame cut short
            v = rng.choice(valid)
            junk.append(v[: rng.randrange(1, len(v) - 1)])
        elif kind == 2:  # a field of the wrong type
            v = json.loads(rng.choice(valid))
            field = rng.choice(sorted(k for k in v if k != "action"))
            v[field] = rng.choice([None, 3.5, {"x": 1}, [None], "str" * rng.randrange(2)])
            if field == "id" and v[field] in (None,):
                v[field] = "seven"
            junk.append(json.dumps(v))
        else:  # JSON that is not an object, or an object without a known action
            junk.append(rng.choice(["null", "42", '"s"', "[]", '{"action": 7}', "{}"]))
    async with (
        Gateway(gateway_config(rate=5.0, max_frames_per_s=10_000)) as gw,
        aiohttp.ClientSession() as s,
    ):
        ws = await connect(s, gw.stream_url)
        for j in junk:
            await ws.send_str(j)
        answers = []
        for _ in range(len(junk)):
            f = await recv(ws)
            answers.append(f)
        assert all(a["type"] == "error" and a["message"] for a in answers), [
            (j, a) for j, a in zip(junk, answers, strict=True) if a["type"] != "error"
        ][:3]
        codes = {a["code"] for a in answers}
        assert codes <= {"bad_json", "bad_frame", "unknown_action"}
        sub, _ = await subscribe(ws, ["orderbook:AAPL"])
        assert sub["channels"] == ["orderbook:AAPL"]
