"""Memory and amplification bounds of the reference gateway under abuse (docs/security.md).

    .venv/bin/python benchmarks/gateway_abuse.py [--orders 10000]

Runs an in-process gateway on 127.0.0.1 (this process's RSS is the gateway's plus the
attacking client's) and prints one line per measurement:

- orders: place + cancel N orders with the order rate limit off; RSS before/after, orders
  kept, forgotten, size of ``GET /v1/orders``. With the history bound the kept count and the
  list size stop growing at ``finished_orders_per_key``.
- rate: a 2 s burst of signed calls with the default limit: how many were admitted.
- subscribe: bytes sent vs received for one subscribe naming 8,500 unknown channels, and for
  one naming 200 short unknown ones (the refusal budget).
- replay cache: tracemalloc size of a full ``ReplayGuard`` (default 100,000 entries).

Bounded: at most ``--orders`` x 2 requests plus a 2 s burst; ~20-60 s on a loaded 2-core box.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import tracemalloc

import aiohttp

from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.guard import ReplayGuard
from tickpipe.protocol import frames

KEY, SECRET = "demo", "demo-secret"


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class Signer:
    def __init__(self) -> None:
        self.last = 0

    def headers(self, method: str, path: str, body: str = "") -> dict[str, str]:
        # strictly increasing like RestClient, but never more than 1 s ahead of the clock
        # (this loop sustains > 1,000 calls a second, which RestClient does not)
        now = int(time.time() * 1000)
        self.last = now if self.last + 1 > now + 1000 else max(now, self.last + 1)
        h = frames.rest_headers(KEY, SECRET, self.last, method, path, body)
        h["Content-Type"] = "application/json"
        return h


async def orders(n: int) -> None:
    cfg = GatewayConfig(port=0, admin_port=None, keys=((KEY, SECRET),), max_order_requests_per_s=0)
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as s:
        gw.pause_market()
        sign = Signer()
        before = rss_mib()
        t0 = time.monotonic()
        for i in range(n):
            body = json.dumps(  # client_order_id: every signature differs even within one ms
                {"symbol": "AAPL", "side": "buy", "price": "1.00", "size": "1",
                 "client_order_id": f"b-{i}"}
            )  # fmt: skip
            async with s.post(
                gw.rest_url + "/v1/orders",
                data=body,
                headers=sign.headers("POST", "/v1/orders", body),
            ) as r:
                answer = await r.json()
            if "order_id" not in answer:
                raise SystemExit(f"order {i}: HTTP {r.status} {answer}")
            oid = answer["order_id"]
            path = f"/v1/orders/{oid}"
            async with s.delete(gw.rest_url + path, headers=sign.headers("DELETE", path)) as r:
                await r.read()
            if i and i % 5000 == 0:
                print(f"  ... {i} orders, RSS {rss_mib():.1f} MiB", flush=True)
        took = time.monotonic() - t0
        async with s.get(
            gw.rest_url + "/v1/orders", headers=sign.headers("GET", "/v1/orders")
        ) as r:
            listing = await r.read()
        counts = gw.desk.counts()
        print(
            f"orders: {n} placed+cancelled in {took:.1f} s;"
            f" RSS {before:.1f} -> {rss_mib():.1f} MiB;"
            f" kept {counts['total']}, forgotten {counts['forgotten']};"
            f" GET /v1/orders {len(listing):,} bytes ({len(json.loads(listing)['orders'])} orders)"
        )


async def rate() -> None:
    cfg = GatewayConfig(port=0, admin_port=None, keys=((KEY, SECRET),))
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as s:
        sign = Signer()
        ok = limited = 0
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end:
            async with s.get(
                gw.rest_url + "/v1/orders", headers=sign.headers("GET", "/v1/orders")
            ) as r:
                await r.read()
                ok += r.status == 200
                limited += r.status == 429
        print(
            f"rate: 2 s burst with max_order_requests_per_s={cfg.max_order_requests_per_s}:"
            f" {ok} admitted, {limited} answered 429"
        )


async def subscribe() -> None:
    cfg = GatewayConfig(port=0, admin_port=None, keys=((KEY, SECRET),))
    async with Gateway(cfg) as gw, aiohttp.ClientSession() as s:
        gw.pause_market()
        ws = await s.ws_connect(gw.stream_url)
        ts = int(time.time() * 1000)
        await ws.send_json(
            {"action": "auth", "key": KEY, "ts": ts, "sig": frames.sign_stream_auth(SECRET, ts)}
        )
        await ws.receive(timeout=5)
        for label, names in (
            ("8,500 unknown", [str(i) for i in range(8500)]),
            ("200 short unknown", [str(i) for i in range(200)]),
        ):
            req = json.dumps(
                {"action": "subscribe", "channels": names, "id": 1}, separators=(",", ":")
            )
            await ws.send_str(req)
            got = frames_in = 0
            for _ in range(1000):
                msg = await ws.receive(timeout=5)
                got += len(msg.data)
                frames_in += 1
                if json.loads(msg.data).get("type") == "subscribed":
                    break
            print(
                f"subscribe ({label}): request {len(req):,} B -> answer {got:,} B in"
                f" {frames_in} frames ({got / len(req):.2f}x)"
            )
        await ws.close()


def replay_cache() -> None:
    tracemalloc.start()
    g = ReplayGuard(window_ms=5000, max_entries=100_000)
    now = time.time() * 1000
    base = tracemalloc.get_traced_memory()[0]
    for i in range(100_000):
        g.check_and_add(f"rest:demo:{i:064x}", now)
    size = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    print(
        f"replay cache: 100,000 entries = {size / 2**20:.1f} MiB "
        f"({size / 100_000:.0f} B an entry); next add -> {g.check_and_add('x', now)!r}"
    )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=10_000, help="orders to place+cancel (10000)")
    args = ap.parse_args()
    await orders(args.orders)
    await rate()
    await subscribe()
    replay_cache()


if __name__ == "__main__":
    asyncio.run(main())
