"""Client-vs-gateway fixtures: the real reference gateway, in-process, on 127.0.0.1 port 0."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tickpipe import Client
from tickpipe.client.events import ClientEvent
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.protocol.backoff import BackoffPolicy

FAST_RECONNECT = BackoffPolicy(base_s=0.05, cap_s=0.4, healthy_after_s=5.0)


def gateway_config(**over: Any) -> GatewayConfig:
    base: dict[str, Any] = {
        "port": 0,
        "admin_port": 0,
        "seed": 7,
        "rate": 40.0,
        "heartbeat_ms": 500,
    }
    base.update(over)
    return GatewayConfig(**base)


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    async with Gateway(gateway_config()) as g:
        yield g


def make_client(g: Gateway, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("snapshot_jitter_s", 0.02)
    return Client(g.stream_url, g.rest_url, key=g.key, secret=g.secret, **knobs)


class Recorder:
    """Every event of a client, in order, with waits on a predicate."""

    def __init__(self, client: Client) -> None:
        self.events: list[ClientEvent] = []
        self._feed = client.events()
        self._task = asyncio.create_task(self._pump())
        self._changed = asyncio.Event()

    async def _pump(self) -> None:
        async for ev in self._feed:
            self.events.append(ev)  # type: ignore[arg-type]
            self._changed.set()

    def named(self, name: str, **fields: Any) -> list[ClientEvent]:
        return [
            e
            for e in self.events
            if e.name == name and all(getattr(e, k, None) == v for k, v in fields.items())
        ]

    async def wait_for(
        self, pred: Callable[[list[ClientEvent]], bool] | str, timeout: float = 5.0, **fields: Any
    ) -> list[ClientEvent]:
        if isinstance(pred, str):
            name = pred
            pred = lambda evs: bool(self.named(name, **fields))  # noqa: E731
        async with asyncio.timeout(timeout):
            while not pred(self.events):
                self._changed.clear()
                await self._changed.wait()
        return self.events

    async def close(self) -> None:
        self._feed.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def assert_books_match_truth(client: Client, gw: Gateway) -> int:
    """Every synced book equals the gateway's true book at its seq; returns how many checked."""
    checked = 0
    for channel, view in client.books().items():
        if not view.synced:
            continue
        seq = view.seq
        assert seq is not None
        truth = gw.true_book(view.symbol, seq)
        inst = truth.instrument
        tb, ta = truth.to_lists()
        want = (
            [[inst.format_price(p), inst.format_size(s)] for p, s in tb],
            [[inst.format_price(p), inst.format_size(s)] for p, s in ta],
        )
        assert view.text_levels(None) == want, f"{channel} differs from the truth at seq {seq}"
        checked += 1
    return checked
