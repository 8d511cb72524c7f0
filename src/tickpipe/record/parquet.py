"""``tickpipe replay --parquet DIR``: research tables from a replay (pyarrow).

Tables (one ``.parquet`` file each, readable by pandas, polars, pyarrow):

- ``top_of_book``: recv_wall_ns, recv_mono_ns, channel, seq, bid_price, bid_size, ask_price,
  ask_size (null for an empty side), a row at each book update (or at most one a book per
  ``--every-ms`` of recorded time);
- ``levels``: recv_wall_ns, recv_mono_ns, channel, seq, side ("bid"|"ask"), level (0 = best),
  price, size: the top ``--depth`` levels a side at the same moments;
- ``trades``: recv_wall_ns, channel, seq, trade_id, price, size, side;
- ``tickers``: recv_wall_ns, channel, seq, bid, bid_size, ask, ask_size, last, volume;
- ``health``: recv_wall_ns, channel (null for the connection), event (connected,
  disconnected, synced, gap, stale, active, snapshot_error, reconnecting, ...), state (the
  book's state after it), reason, expected, got, seq.

Exact decimals: every price and size is ``decimal128(38, S)`` with one scale ``S`` for the
whole recording (the most decimals any instrument has), so every value is exact; the schema
metadata says so (``tickpipe.decimals``) and names each instrument's own tick and lot.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tickpipe import __version__
from tickpipe.client.dispatch import TickerUpdate, TradeUpdate
from tickpipe.client.events import ClientEvent
from tickpipe.client.views import BookView
from tickpipe.record import format as fmt

PRECISION = 38


class ParquetTables:
    """Collects rows during a replay; ``write(dir, header, replay)`` writes the files."""

    def __init__(self, depth: int, every_ms: float | None) -> None:
        self.depth = depth
        self.every_ns = None if every_ms is None else int(every_ms * 1e6)
        self._last_row: dict[str, int] = {}
        self.top: list[dict[str, Any]] = []
        self.levels: list[dict[str, Any]] = []
        self.trades: list[dict[str, Any]] = []
        self.tickers: list[dict[str, Any]] = []
        self.health: list[dict[str, Any]] = []
        self._states: dict[str, str] = {}
        self._views: dict[str, BookView] = {}
        self.wall_ns: Callable[[], int] | None = None  # the replay's exact recorded wall time

    def _ns(self, t: float) -> int:
        return self.wall_ns() if self.wall_ns is not None else round(t * 1e9)

    # -- ReplaySink parts ----------------------------------------------------------------------
    def book(self, view: BookView, t: float, mono_ns: int) -> None:
        ch = view.channel
        self._views[ch] = view
        if self.every_ns is not None:
            last = self._last_row.get(ch)
            if last is not None and mono_ns - last < self.every_ns:
                return
            self._last_row[ch] = mono_ns
        wall_ns = self._ns(t)
        seq = view.seq
        bids, asks = view.bids(self.depth), view.asks(self.depth)
        bb = bids[0] if bids else (None, None)
        ba = asks[0] if asks else (None, None)
        self.top.append(
            {"recv_wall_ns": wall_ns, "recv_mono_ns": mono_ns, "channel": ch, "seq": seq,
             "bid_price": bb[0], "bid_size": bb[1], "ask_price": ba[0], "ask_size": ba[1]}
        )  # fmt: skip
        for side, lvs in (("bid", bids), ("ask", asks)):
            for i, (p, s) in enumerate(lvs):
                self.levels.append(
                    {"recv_wall_ns": wall_ns, "recv_mono_ns": mono_ns, "channel": ch, "seq": seq,
                     "side": side, "level": i, "price": p, "size": s}
                )  # fmt: skip

    def data(self, item: TickerUpdate | TradeUpdate, t: float) -> None:
        wall_ns = self._ns(t)
        if isinstance(item, TradeUpdate):
            self.trades.append(
                {"recv_wall_ns": wall_ns, "channel": item.channel, "seq": item.seq,
                 "trade_id": item.id, "price": item.price, "size": item.size, "side": item.side}
            )  # fmt: skip
        else:
            self.tickers.append(
                {"recv_wall_ns": wall_ns, "channel": item.channel, "seq": item.seq,
                 "bid": item.bid, "bid_size": item.bid_size, "ask": item.ask,
                 "ask_size": item.ask_size, "last": item.last, "volume": item.volume}
            )  # fmt: skip

    def event(self, ev: ClientEvent, t: float) -> None:
        d = ev.to_dict()
        name = d["event"]
        if name in ("subscribed", "unsubscribed", "cancel_on_disconnect", "orders_cancelled"):
            return
        ch = d.get("channel")
        view = self._views.get(ch) if isinstance(ch, str) else None
        state = view.state if view is not None else None
        self.health.append(
            {"recv_wall_ns": self._ns(t), "channel": ch, "event": name, "state": state,
             "reason": _text(d.get("reason")), "expected": _int(d.get("expected")),
             "got": _int(d.get("got")), "seq": _int(d.get("seq"))}
        )  # fmt: skip

    # -- output --------------------------------------------------------------------------------
    def write(self, out_dir: str | Path, header: fmt.Header, replay: Any) -> list[Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        insts = replay.channels.instruments if replay.channels is not None else {}
        scale = max([max(i.price_decimals, i.size_decimals) for i in insts.values()] or [8])
        dec = pa.decimal128(PRECISION, scale)
        meta = {
            "tickpipe.version": __version__,
            "tickpipe.venue": header.venue,
            "tickpipe.channels": ",".join(header.channels),
            "tickpipe.decimals": f"prices and sizes are exact decimal128({PRECISION},{scale})",
            "tickpipe.instruments": ";".join(
                f"{s}:tick={i.tick_size},lot={i.lot_size}" for s, i in sorted(insts.items())
            ),
            "tickpipe.times": "recv_wall_ns: time.time_ns(), recv_mono_ns: time.monotonic_ns() "
            "when the frame was received, as recorded",
        }
        ts = pa.int64()
        s = pa.string()
        schemas = {
            "top_of_book": [("recv_wall_ns", ts), ("recv_mono_ns", ts), ("channel", s),
                            ("seq", ts), ("bid_price", dec), ("bid_size", dec),
                            ("ask_price", dec), ("ask_size", dec)],
            "levels": [("recv_wall_ns", ts), ("recv_mono_ns", ts), ("channel", s), ("seq", ts),
                       ("side", s), ("level", pa.int32()), ("price", dec), ("size", dec)],
            "trades": [("recv_wall_ns", ts), ("channel", s), ("seq", ts), ("trade_id", s),
                       ("price", dec), ("size", dec), ("side", s)],
            "tickers": [("recv_wall_ns", ts), ("channel", s), ("seq", ts), ("bid", dec),
                        ("bid_size", dec), ("ask", dec), ("ask_size", dec), ("last", dec),
                        ("volume", dec)],
            "health": [("recv_wall_ns", ts), ("channel", s), ("event", s), ("state", s),
                       ("reason", s), ("expected", ts), ("got", ts), ("seq", ts)],
        }  # fmt: skip
        rows = {
            "top_of_book": self.top,
            "levels": self.levels,
            "trades": self.trades,
            "tickers": self.tickers,
            "health": self.health,
        }
        q = Decimal(1).scaleb(-scale)
        written = []
        for name, fields in schemas.items():
            schema = pa.schema(fields, metadata=meta)
            cols: dict[str, list[Any]] = {f: [] for f, _ in fields}
            for row in rows[name]:
                for f, typ in fields:
                    v = row.get(f)
                    if typ == dec and v is not None:
                        v = Decimal(v).quantize(q)  # exact: scale >= the value's decimals
                    cols[f].append(v)
            table = pa.table(cols, schema=schema)
            path = out / f"{name}.parquet"
            pq.write_table(table, path)
            written.append(path)
        return written


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _text(v: Any) -> str | None:
    return None if v is None else str(v)
