"""Row 3: what a typical user writes first.

``websockets`` (its asyncio client, default settings, the standard asyncio event loop), the
standard library's ``json``, and per book two ``sortedcontainers.SortedDict`` keyed by
``Decimal`` price, applying each delta with a seq check (a gap is counted; the corpus has none).
No checksum: the typical first version does not verify one. Tickers keep the last message,
trades go to a bounded deque.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from decimal import Decimal
from typing import Any

import websockets
from sortedcontainers import SortedDict

from benchmarks.rows.common import KEY, SECRET, Run, fail, parse_args
from tickpipe.protocol import frames as vts


async def _expect(ws: Any, kind: str) -> None:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg.get("type") == kind:
            return
        if msg.get("type") == "error":
            raise RuntimeError(f"sender said {msg}")


async def _main(run: Run) -> None:
    args = run.args
    books: dict[str, dict[str, Any]] = {}
    for sym, body in run.snap.snapshots.items():
        snap = json.loads(body)
        books[f"orderbook:{sym}"] = {
            "bids": SortedDict({Decimal(p): Decimal(s) for p, s in snap["bids"]}),
            "asks": SortedDict({Decimal(p): Decimal(s) for p, s in snap["asks"]}),
            "seq": snap["seq"],
        }
    last_seq = {ch: run.snap.first_seq[ch] - 1 for ch in run.snap.channels}
    for ch, b in books.items():
        last_seq[ch] = b["seq"]
    tickers: dict[str, dict[str, Any]] = {}
    trades: deque[dict[str, Any]] = deque(maxlen=1000)
    async with websockets.connect(args.stream_url, max_size=2**22) as ws:
        auth = vts.auth_frame(KEY, SECRET, time.time_ns() // 10**6)
        await ws.send(
            json.dumps({"action": "auth", "key": auth.key, "ts": auth.ts, "sig": auth.sig})
        )
        await _expect(ws, "authenticated")
        await ws.send(json.dumps({"action": "subscribe", "channels": run.snap.channels, "id": 1}))
        await _expect(ws, "subscribed")
        run.setup_done()
        expected = int(run.begin()["frames"])
        n = 0
        rate_mode = run.rate_mode
        deadline = time.perf_counter() + args.timeout_s
        while n < expected:
            try:
                raw = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.perf_counter()))
            except TimeoutError:
                run.extra["timed_out"] = True
                break
            msg = json.loads(raw)
            ch = msg["channel"]
            if msg["seq"] != last_seq[ch] + 1:
                run.gaps += 1
            last_seq[ch] = msg["seq"]
            kind = msg["type"]
            if kind == "delta":
                book = books[ch]
                for side in ("bids", "asks"):
                    levels = book[side]
                    for p, s in msg[side]:
                        price, size = Decimal(p), Decimal(s)
                        if size == 0:
                            levels.pop(price, None)
                        else:
                            levels[price] = size
                if rate_mode:
                    run.lat.append(time.time_ns() - msg["ts"])
            elif kind == "ticker":
                tickers[ch] = msg
            else:
                trades.append(msg)
            n += 1
        run.end()
        run.received = n
    run.emit()


if __name__ == "__main__":
    a = parse_args()
    try:
        asyncio.run(_main(Run.load("naive", a)))
    except (OSError, RuntimeError) as exc:
        fail("naive", f"{type(exc).__name__}: {exc}")
