"""What each venue's decoder costs per order-book update: the first step of every frame.

    .venv/bin/python -m benchmarks.venue_decode [--frames 50000] [--levels 3]

For each venue the client speaks, ``--frames`` book updates (``--levels`` changed levels,
split between bids and asks, prices and sizes as the venues write them) are encoded by the
gateway's dialect of that venue (the same codec the client decodes with), then decoded by the
client's adapter (``venue.decode``: what ``Channels.on_text`` calls once per text frame).
Printed: µs of process CPU per frame, best of ``--repeat`` passes, the frame's size, and the
ratio to tickpipe's own VTS/1 decode in the same run. No sockets, no books: the rest of a
frame's path is ``benchmarks/breakdown.py`` and the end-to-end rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tickpipe.protocol import frames as vts
from tickpipe.protocol.normalised import BookDelta, RawLevel
from tickpipe.venues.binance.codec import Codec as BinanceCodec
from tickpipe.venues.binance.endpoints import SPOT
from tickpipe.venues.bybit import codec as bybit
from tickpipe.venues.coinbase import codec as coinbase
from tickpipe.venues.kraken import codec as kraken
from tickpipe.venues.okx import codec as okx
from tickpipe.venues.registry import venue_named

_T0_NS = 1_764_900_000_123_456_000  # 2025-12-05: any fixed instant


def _delta(symbol: str, i: int, levels: int) -> BookDelta:
    """Update ``i``: ``levels`` changed levels (bids first, one in three removed)."""
    side: list[list[RawLevel]] = [[], []]
    for k in range(levels):
        price = f"{(60_000_00 + (i * 7 + k * 13) % 400) / 100:.2f}"
        size = "0" if (i + k) % 3 == 0 else f"{0.001 * (1 + (i + k) % 997):.3f}"
        side[k % 2].append((price, size))
    return BookDelta(
        symbol,
        side[0],
        side[1],
        last_id=1_000 + i,
        first_id=1_000 + i,
        prev_id=999 + i,
        checksum=(i * 2_654_435_761) % 2**31,  # not verified here: decoding only
        ts_ns=_T0_NS + i * 10_000_000,  # 100 updates a second, like a busy book
    )


def _vts(i: int, levels: int) -> bytes:
    d = _delta("BTC-USD", i, levels)
    return vts.encode(
        vts.Delta(
            channel="orderbook:BTC-USD",
            seq=i + 1,
            ts=d.ts_ns or 0,
            bids=[list(lv) for lv in d.bids],
            asks=[list(lv) for lv in d.asks],
            checksum=d.checksum,
        )
    )


_BINANCE = BinanceCodec(SPOT)

# venue name -> the encoder of update i with n levels (its dialect, its symbol)
ENCODERS: dict[str, Callable[[int, int], bytes]] = {
    "vts": _vts,
    "binance": lambda i, n: _BINANCE.encode_delta(_delta("BTCUSDT", i, n)),
    "okx": lambda i, n: okx.encode_book(_delta("BTC-USDT", i, n)),
    "bybit": lambda i, n: bybit.encode_book(_delta("BTCUSDT", i, n), seq=i + 1),
    "kraken": lambda i, n: kraken.encode_book(_delta("BTC/USD", i, n)),
    "coinbase": lambda i, n: coinbase.encode_book(_delta("BTC-USD", i, n), i + 1),
}


def measure(name: str, frames: int, levels: int, repeat: int) -> tuple[float, float]:
    """(best µs per frame, mean frame bytes) of ``venue_named(name).decode`` over the frames.
    Each pass decodes with a fresh adapter (Coinbase's drops a sequence it has seen)."""
    data = [ENCODERS[name](i, levels) for i in range(frames)]
    best = float("inf")
    for _ in range(repeat):
        decode = venue_named(name).decode
        t0 = time.process_time()
        for d in data:
            decode(d)
        best = min(best, (time.process_time() - t0) / frames * 1e6)
    return best, sum(map(len, data)) / frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=50_000, help="updates per venue")
    ap.add_argument("--levels", type=int, default=3, help="changed levels per update")
    ap.add_argument("--repeat", type=int, default=3, help="passes per venue, best kept")
    ap.add_argument("--venues", default=",".join(ENCODERS), help="comma list")
    a = ap.parse_args(argv)
    names = a.venues.split(",")
    unknown = [n for n in names if n not in ENCODERS]
    if unknown or a.frames < 1 or a.levels < 1 or a.repeat < 1:
        ap.error(f"venues among {', '.join(ENCODERS)}; frames, levels, repeat >= 1")
    print(f"{a.frames:,} book updates per venue, {a.levels} levels each; best of {a.repeat}")
    print("| venue | µs/frame | bytes/frame | x VTS/1 |")
    print("|---|---:|---:|---:|")
    base: float | None = None
    for name in names:
        us, size = measure(name, a.frames, a.levels, a.repeat)
        if name == "vts":
            base = us
        ratio = f"{us / base:.2f}" if base else "-"
        print(f"| {name} | {us:.2f} | {size:.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
