"""The client's peak memory and longest event-loop block against a hostile gateway (issue 13).

    python -m benchmarks.hostile_memory [--seconds 4]

The hostile gateway (``tests/client/hostile.py``, aiohttp on loopback) runs in this process;
each case runs the real :class:`tickpipe.Client`, **default knobs**, in a fresh child process
subscribed to ``orderbook:X`` for ``--seconds``, so that its peak RSS (``VmHWM`` of
``/proc/self/status``: ``ru_maxrss`` would carry this process's peak over the fork) is its own.
The child measures the longest event-loop block with a task that sleeps 5 ms and records how
late it wakes. Cases:

- ``baseline``: a well-behaved 1-level snapshot (the reference figures);
- ``endless_body``: the snapshot body never ends (chunked, no length): read up to
  ``max_rest_body_bytes`` (16 MiB) then refused;
- ``huge_snapshot_len``: 2,000,000 levels (~38 MB) with a Content-Length: refused unread;
- ``huge_snapshot_chunked``: the same without a length: refused at 16 MiB;
- ``max_levels``: 10,000 levels a side, the most ``max_snapshot_levels`` accepts: decoded,
  parsed and loaded (the largest legitimate snapshot);
- ``worst_under_caps``: 10,000 levels a side padded with an unknown field to just under
  16 MiB: the most decoding work a snapshot can cost under both caps;
- ``fragmented``: an endless fragmented message on the stream: cut at ``max_frame_bytes``
  (1 MiB), then reconnect (the gateway then behaves).

Bounded: 7 cases x ``--seconds`` (plus ~1 s start each). Prints one line a case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from aiohttp import web
from tests.client.hostile import OP_CONT, OP_TEXT, HostileGateway, Peer, snapshot_body

CASES = (
    "baseline",
    "endless_body",
    "huge_snapshot_len",
    "huge_snapshot_chunked",
    "max_levels",
    "worst_under_caps",
    "fragmented",
)


def _levels_json(n: int, start: float, step: float) -> bytes:
    return b",".join(b'["%.2f","1.000"]' % (start + i * step) for i in range(n))


def _huge_body() -> bytes:
    n = 2_000_000
    return (
        b'{"symbol":"X","seq":10,"ts":1,"bids":['
        + _levels_json(n, 100_000.0, -0.01)
        + b'],"asks":[]}'
    )


def _worst_body(cap: int = 16 << 20) -> bytes:
    bids = _levels_json(10_000, 1000.0, -0.01)
    asks = _levels_json(10_000, 1001.0, 0.01)
    head = b'{"symbol":"X","seq":10,"ts":1,"bids":[' + bids + b'],"asks":[' + asks + b'],"pad":"'
    return head + b"x" * (cap - len(head) - 3) + b'"}'


def _max_levels_body() -> bytes:
    return json.dumps(snapshot_body(bids=10_000, asks=10_000)).encode()


def _snapshot_handler(case: str) -> Any:
    if case == "endless_body":
        chunk = b'["1.00","1.000"],' * 4000

        async def endless(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse()
            await resp.prepare(request)
            try:
                for _ in range(100_000):  # bounded: ~6.4 GB, far past the cap
                    await resp.write(chunk)
            except (ConnectionError, RuntimeError):
                pass
            return resp

        return endless
    if case in ("huge_snapshot_len", "huge_snapshot_chunked", "max_levels", "worst_under_caps"):
        body = {
            "huge_snapshot_len": _huge_body,
            "huge_snapshot_chunked": _huge_body,
            "max_levels": _max_levels_body,
            "worst_under_caps": _worst_body,
        }[case]()
        chunked = case == "huge_snapshot_chunked"

        async def fixed(request: web.Request) -> web.StreamResponse:
            if not chunked:
                return web.Response(body=body, content_type="application/json")
            resp = web.StreamResponse()
            await resp.prepare(request)
            try:
                for i in range(0, len(body), 1 << 16):
                    await resp.write(body[i : i + (1 << 16)])
            except (ConnectionError, RuntimeError):
                pass
            return resp

        return fixed
    return None


async def _fragments(peer: Peer, channels: list[str]) -> None:
    await asyncio.sleep(0.5)
    peer.raw(OP_TEXT, b'{"type":"ticker","channel":"ticker:X","x":"', fin=False)
    chunk = b"a" * 65536
    for _ in range(100_000):  # bounded; the client cuts at 1 MiB
        if peer.closed:
            return
        peer.raw(OP_CONT, chunk, fin=False)
        await peer.drained()


# -- child ------------------------------------------------------------------------------------


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def _child(rest_url: str, stream_url: str, seconds: float) -> dict[str, Any]:
    from tickpipe import Client

    worst = 0.0

    async def lag() -> None:
        nonlocal worst
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - t0 - 0.005)

    rss0 = _peak_rss_mib()
    async with Client(stream_url, rest_url, key="k", secret="s") as client:
        names: list[str] = []
        client.on_state(lambda e: names.append(e.name))
        probe = asyncio.create_task(lag())
        await client.subscribe(["orderbook:X"])
        await asyncio.sleep(seconds)
        probe.cancel()
        s = client.stats()
        out = {
            "rss_start_mib": rss0,
            "peak_rss_mib": _peak_rss_mib(),
            "max_loop_block_ms": worst * 1000,
            "snapshot_errors": s.snapshot_errors,
            "synced": s.books["orderbook:X"].synced if "orderbook:X" in s.books else False,
            "disconnects": names.count("disconnected"),
            "bad_frames": s.bad_frames,
        }
    return out


# -- parent -----------------------------------------------------------------------------------


async def _case(case: str, seconds: float) -> dict[str, Any]:
    script = _fragments if case == "fragmented" else None
    gw = HostileGateway(snapshot=_snapshot_handler(case), script=script)

    async def once_then_good(peer: Peer, channels: list[str]) -> None:
        if gw.connections == 1:
            await _fragments(peer, channels)

    if script is not None:
        gw._script = once_then_good
    async with gw:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.hostile_memory",
            "--child",
            gw.rest_url,
            gw.stream_url,
            "--seconds",
            str(seconds),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), seconds + 60)
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["case"] = case
    result["snapshot_requests"] = gw.snapshot_requests
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=4.0, help="per case (default 4)")
    p.add_argument("--child", nargs=2, metavar=("REST_URL", "STREAM_URL"), help=argparse.SUPPRESS)
    p.add_argument("--case", action="append", choices=CASES, help="only these (repeatable)")
    args = p.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child[0], args.child[1], args.seconds))))
        return
    print(
        f"{'case':<22} {'peak RSS MiB':>12} {'(start)':>8} {'max loop block ms':>18} "
        f"{'snap req':>8} {'snap err':>8} {'synced':>6} {'disconn':>7}"
    )
    for case in args.case or CASES:
        r = asyncio.run(_case(case, args.seconds))
        print(
            f"{case:<22} {r['peak_rss_mib']:>12.1f} {r['rss_start_mib']:>8.1f} "
            f"{r['max_loop_block_ms']:>18.1f} {r['snapshot_requests']:>8} "
            f"{r['snapshot_errors']:>8} {r['synced']!s:>6} {r['disconnects']:>7}",
            flush=True,
        )


if __name__ == "__main__":
    main()
