"""How many frames a second one reference-gateway process sustains to loopback clients.

    .venv/bin/python -m benchmarks.bench_gateway [--seconds 5] [--clients 1,4] [--rate max]

For each client count a fresh ``tickpipe gateway --rate RATE`` subprocess is started; that many
picows clients (one uvloop process, cheap Cython frame parsing, no JSON decoding: they only
count) auth and subscribe to every channel (orderbook, ticker and trades of all instruments).
After a one-second warm-up the run lasts ``--seconds``; printed per run:

- ``recv frames/s``: text frames the clients received, all clients together;
- ``deltas/s``: orderbook deltas the gateway generated (admin ``/admin/stats``), i.e. the
  market's own speed; with several clients each delta is fanned out to each;
- ``gateway CPU %`` / ``clients CPU %``: CPU use of the gateway process and of the clients'
  process over the run (100 % = one core).

On a shared 2-core box the clients and the gateway compete for the same cores: the figure is
what one gateway sustains *here*, a floor for a machine with a spare core for the clients.
Bounded: every run stops after warm-up + ``--seconds``; the gateway is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time
import urllib.request
from typing import Any

import psutil
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from tickpipe.gateway.testing import GatewayProcess


class Counter(WSListener):  # type: ignore[misc]
    """Counts text frames; answers the gateway's pings (picows auto-pong)."""

    def __init__(self) -> None:
        self.frames = 0
        self.first: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            self.frames += 1
            if not self.first.done():
                self.first.set_result(frame.get_payload_as_bytes())


def _admin(gp: GatewayProcess, path: str) -> Any:
    req = urllib.request.Request(gp.admin_url + path, headers={"X-Admin-Token": gp.admin_token})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


async def _client(gp: GatewayProcess, channels: list[str]) -> tuple[WSTransport, Counter]:
    transport, listener = await ws_connect(Counter, gp.stream_url)
    ts = int(time.time() * 1000)
    sig = hmac.new(gp.secret.encode(), f"{ts}GET/v1/stream".encode(), hashlib.sha256).hexdigest()
    auth = {"action": "auth", "key": gp.key, "ts": ts, "sig": sig}
    transport.send(WSMsgType.TEXT, json.dumps(auth).encode())
    first = json.loads(await asyncio.wait_for(listener.first, 5))
    assert first["type"] == "authenticated", first
    sub = {"action": "subscribe", "channels": channels, "id": 1}
    transport.send(WSMsgType.TEXT, json.dumps(sub).encode())
    return transport, listener


async def run_once(clients: int, seconds: float, rate: str) -> dict[str, float]:
    with GatewayProcess("--rate", rate, "--log-level", "WARNING") as gp:
        proc = psutil.Process(gp.pid)
        symbols = gp.ready["symbols"]
        channels = [f"{k}:{s}" for s in symbols for k in ("orderbook", "ticker", "trades")]
        conns = [await _client(gp, channels) for _ in range(clients)]
        await asyncio.sleep(1.0)  # warm-up
        n0 = sum(c[1].frames for c in conns)
        g0 = _admin(gp, "/admin/stats")["frames_generated"]["orderbook"]
        cpu0 = proc.cpu_times()
        me = psutil.Process()
        my0 = me.cpu_times()
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        dt = time.perf_counter() - t0
        n1 = sum(c[1].frames for c in conns)
        cpu1 = proc.cpu_times()
        my1 = me.cpu_times()
        stats = _admin(gp, "/admin/stats")
        for transport, _ in conns:
            transport.disconnect()
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / dt * 100
        my_cpu = (my1.user + my1.system - my0.user - my0.system) / dt * 100
        return {
            "clients": clients,
            "recv_frames_per_s": (n1 - n0) / dt,
            "deltas_per_s": (stats["frames_generated"]["orderbook"] - g0) / dt,
            "gateway_cpu_pct": cpu,
            "clients_cpu_pct": my_cpu,
            "slow_consumer_disconnects": stats["disconnects"].get("slow_consumer", 0),
        }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds a run (5)")
    ap.add_argument("--clients", default="1,4", help="client counts, comma separated (1,4)")
    ap.add_argument("--rate", default="max", help="gateway --rate (max)")
    args = ap.parse_args()
    print(
        f"{'clients':>7} {'recv frames/s':>14} {'deltas/s':>10} {'gateway CPU %':>14} "
        f"{'clients CPU %':>14}"
    )
    results = []
    for n in (int(x) for x in args.clients.split(",")):
        r = await run_once(n, args.seconds, args.rate)
        results.append(r)
        print(
            f"{n:>7} {r['recv_frames_per_s']:>14,.0f} {r['deltas_per_s']:>10,.0f} "
            f"{r['gateway_cpu_pct']:>14.0f} {r['clients_cpu_pct']:>14.0f}"
        )
    print(json.dumps({"bench": "gateway", "rate": args.rate, "results": results}))


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
