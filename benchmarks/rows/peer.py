"""Row 4: the peer's hot path — bmoscon's ``order_book`` C extension, as cryptofeed uses it.

Fed by the fastest decoder measured in row 2 (msgspec, typed structs, from picows' buffer on
uvloop), so the row isolates the book structure. The book code is cryptofeed's shape: prices and
sizes become ``Decimal``; size 0 deletes the level if present, else the level is set; a seq
check per channel (a gap is counted; the corpus has none). Tickers keep the last frame, trades
go to a bounded deque.

Variants (``--variant``):

- ``seq`` (default): seq check only, as the issue describes the peer row.
- ``crc``: plus the VTS/1 checksum of the top 10 levels, computed in Python from the C book
  (``bids.index(i)``), the way cryptofeed verifies venues that send checksums. This is the
  like-for-like comparison with tickpipe, which always verifies.
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from decimal import Decimal

import msgspec
from order_book import OrderBook  # type: ignore[import-not-found]
from picows import WSFrame

from benchmarks.rows import picows_base
from benchmarks.rows.common import Run, parse_args
from tickpipe.protocol import frames as vts
from tickpipe.protocol.instruments import Instrument

_ZERO = Decimal(0)


class _Chan:
    __slots__ = ("book", "pd", "sd", "seq")

    def __init__(self, seq: int, pd: int = 0, sd: int = 0) -> None:
        self.book = OrderBook()
        self.seq = seq
        self.pd = pd
        self.sd = sd


class Peer(picows_base.Handler):
    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.decode = msgspec.json.Decoder(vts.ServerFrame).decode
        self.crc = run.args.variant == "crc"
        snap = run.snap
        insts = {i["symbol"]: Instrument.from_wire(dict(i)) for i in snap.instruments}
        self.chans: dict[str, _Chan] = {}
        for sym, body in snap.snapshots.items():
            s = vts.decode_snapshot(body)
            inst = insts[sym]
            c = _Chan(s.seq, inst.price_decimals, inst.size_decimals)
            for p, q in s.bids:
                c.book.bids[Decimal(p)] = Decimal(q)
            for p, q in s.asks:
                c.book.asks[Decimal(p)] = Decimal(q)
            self.chans[f"orderbook:{sym}"] = c
        for ch in snap.ticker_channels + snap.trade_channels:
            self.chans[ch] = _Chan(snap.first_seq[ch] - 1)
        self.tickers: dict[str, vts.Ticker] = {}
        self.trades: deque[vts.Trade] = deque(maxlen=1000)

    def checksum(self, c: _Chan) -> int:
        bids, asks = c.book.bids, c.book.asks
        pd, sd = c.pd, c.sd
        nb, na = min(10, len(bids)), min(10, len(asks))
        parts = []
        for i in range(max(nb, na)):
            if i < nb:
                p, s = bids.index(i)
                parts.append(f"{p:.{pd}f}:{s:.{sd}f}")
            if i < na:
                p, s = asks.index(i)
                parts.append(f"{p:.{pd}f}:{s:.{sd}f}")
        return zlib.crc32(":".join(parts).encode())

    def on_data(self, frame: WSFrame) -> None:
        f = self.decode(frame.get_payload_as_memoryview())
        c = self.chans[f.channel]
        if f.seq != c.seq + 1:
            self.run.gaps += 1
        c.seq = f.seq
        t = type(f)
        if t is vts.Delta:
            for side, levels in ((c.book.bids, f.bids), (c.book.asks, f.asks)):
                for p, s in levels:
                    price, size = Decimal(p), Decimal(s)
                    if size == _ZERO:
                        if price in side:
                            del side[price]
                    else:
                        side[price] = size
            if self.crc and f.checksum != self.checksum(c):
                self.run.gaps += 1
            if self.run.rate_mode:
                self.run.lat.append(time.time_ns() - f.ts)
        elif t is vts.Ticker:
            self.tickers[f.channel] = f
        else:
            self.trades.append(f)
        self.n += 1
        if self.n == self.expected:
            self.finish()


if __name__ == "__main__":
    args = parse_args(variants=("seq", "crc"))
    picows_base.main("peer", args, Peer)
