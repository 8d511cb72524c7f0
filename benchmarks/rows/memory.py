"""Memory per book level: ``B`` books of ``L`` levels a side in each row's structure.

Run once per structure, each in a fresh process (so one structure's freed memory cannot be
reused by the next)::

    python -m benchmarks.rows.memory --structure tickpipe|peer|naive [--books 100] [--levels 1000]

Structures, holding exactly what each row holds per level:

- ``tickpipe``: ``tickpipe.protocol.book.OrderBook`` (the client's book: ``int`` units, one
  ``dict`` price -> size and one sorted ``list`` of prices per side), loaded like a snapshot.
- ``peer``: bmoscon ``order_book.OrderBook`` (C), ``Decimal`` prices and sizes, as cryptofeed.
- ``naive``: two ``sortedcontainers.SortedDict`` keyed by ``Decimal`` price, ``Decimal`` sizes.

Two figures: ``rss``, the resident-set growth (what the OS gives the process; includes
allocator slack, the honest total) and ``traced``, the bytes ``tracemalloc`` sees allocated (Python
allocators only; the C extension's own ``malloc`` calls are invisible to it, so for ``peer`` only
``rss`` is complete). Prices are realistic (crypto, tick 0.01, around 30,000.00), distinct
per book, sizes up to 400 lots of 0.00001.
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from decimal import Decimal
from typing import Any

from benchmarks.rows.common import rss_mb
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument

INST = Instrument("C000-USD", "crypto", "0.01", "0.00001")


def _levels(book: int, levels: int, bid: bool) -> list[tuple[int, int]]:
    mid = 3_000_000 + book * 7
    return [
        ((mid - 1 - k if bid else mid + 1 + k), 1 + (k * 7919 + book) % 400 * 1000)
        for k in range(levels)
    ]


def build(structure: str, books: int, levels: int) -> list[Any]:
    out: list[Any] = []
    fp, fs = INST.format_price, INST.format_size
    for b in range(books):
        bids, asks = _levels(b, levels, True), _levels(b, levels, False)
        if structure == "tickpipe":
            ob = OrderBook(INST)
            ob.load(bids, asks)
            out.append(ob)
        elif structure == "peer":
            from order_book import OrderBook as PeerBook  # type: ignore[import-not-found]

            pb = PeerBook()
            for p, s in bids:
                pb.bids[Decimal(fp(p))] = Decimal(fs(s))
            for p, s in asks:
                pb.asks[Decimal(fp(p))] = Decimal(fs(s))
            out.append(pb)
        else:
            from sortedcontainers import SortedDict

            out.append(
                (
                    SortedDict({Decimal(fp(p)): Decimal(fs(s)) for p, s in bids}),
                    SortedDict({Decimal(fp(p)): Decimal(fs(s)) for p, s in asks}),
                )
            )
    return out


def measure(structure: str, books: int, levels: int, traced: bool) -> float:
    # Import what the structure needs and build one throwaway book first, so imports and
    # first-use caches are not counted as levels.
    build(structure, 1, 10)
    gc.collect()
    if traced:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        keep = build(structure, books, levels)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del keep
        return float(after - before)
    r0 = rss_mb()
    keep = build(structure, books, levels)
    gc.collect()
    grown = (rss_mb() - r0) * 1e6
    del keep
    return grown


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--structure", choices=("tickpipe", "peer", "naive"), required=True)
    ap.add_argument("--books", type=int, default=100)
    ap.add_argument("--levels", type=int, default=1000, help="levels a side")
    ap.add_argument("--traced", action="store_true", help="tracemalloc instead of RSS")
    a = ap.parse_args()
    total = measure(a.structure, a.books, a.levels, a.traced)
    n_levels = a.books * a.levels * 2
    print(
        "RESULT "
        + json.dumps(
            {
                "row": "memory",
                "structure": a.structure,
                "method": "traced" if a.traced else "rss",
                "books": a.books,
                "levels_a_side": a.levels,
                "bytes_per_level": round(total / n_levels, 1),
                "bytes_per_book": round(total / a.books),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
