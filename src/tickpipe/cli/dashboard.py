"""The demo's screen, as a pure function of a :class:`DashboardSnapshot` and the terminal size.

::

    header    title · where the data comes from · uptime · notice (last key's result)
    books     one panel per order book: state (coloured), seq, age, spread, top levels
    sidebar   connection health · strategy and kill switch · tickers/trades · recent events
    footer    the keys and what each one injects

The layout adapts to the terminal: the number of book columns follows the width, the depth of
each ladder follows the height (5 levels at 160x50, down to 1); below that the books collapse to
one line each. Where a line or a table is too narrow, whole fields and columns are dropped, the
least important first (:func:`fit_parts`, :func:`fit_columns`), before any text is cut: at
80x24 every book still shows its symbol, sync state and best bid/ask, and every label is whole.
``render`` does no I/O and reads nothing live, so it runs on rich's refresh thread
and is unit-tested by printing to a recording console.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.layout import Layout
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tickpipe.cli.dashboard_model import (
    BookRow,
    ConnectionRow,
    DashboardSnapshot,
    KeyHelp,
    QuoteRow,
    StrategyRow,
)

STATE_STYLE = {
    "live": "bold green",
    "syncing": "bold cyan",
    "resyncing": "bold yellow",
    "stale": "bold red",
    "idle": "dim",
}
CONNECTION_STYLE = {
    "live": "bold green",
    "connected": "bold green",
    "connecting": "bold cyan",
    "authenticating": "bold cyan",
    "reconnecting": "bold yellow",
    "backoff": "bold yellow",
    "blind": "bold red",
    "auth_failed": "bold red",
    "closed": "dim",
    "idle": "dim",
}
# Below this inner width the sidebar panels switch to short labels (connection, orders) and the
# events pane drops its HH:MM:SS column.
NARROW_INNER = 40
EVENTS_TIME_MIN_INNER = 44
# Rows the events pane keeps (borders included) before the tickers & trades pane gets any.
EVENTS_MIN_ROWS = 6
# Below this height the key legend loses its border (two more rows for the events pane).
FOOTER_BORDER_MIN_HEIGHT = 40
SIDEBAR_WIDTH = 54
BOOK_PANEL_MIN_WIDTH = 38
MAX_DEPTH = 5
HEADER_ROWS = 2


def render(snap: DashboardSnapshot, width: int, height: int) -> RenderableType:
    """The whole screen for a terminal of ``width`` x ``height`` cells."""
    border = height >= FOOTER_BORDER_MIN_HEIGHT
    footer_rows = _footer_rows(snap.keys, width, border)
    root = Layout(name="root")
    root.split_column(
        Layout(_header(snap, width), name="header", size=HEADER_ROWS),
        Layout(name="body"),
        Layout(_footer(snap.keys, width, border), name="footer", size=footer_rows),
    )
    body_h = max(1, height - HEADER_ROWS - footer_rows)
    side_w = sidebar_width(width)
    root["body"].split_row(
        Layout(books_view(snap.books, width - side_w, body_h), name="books"),
        Layout(_sidebar(snap, body_h, side_w), name="sidebar", size=side_w),
    )
    return root


def sidebar_width(width: int) -> int:
    """54 columns on wide terminals; about 40 % of narrower ones (at least 34)."""
    if width >= SIDEBAR_WIDTH + 2 * BOOK_PANEL_MIN_WIDTH:
        return SIDEBAR_WIDTH
    return max(34, min(SIDEBAR_WIDTH, int(width * 0.4)))


# -- fitting text and tables into a width ----------------------------------------------------


Part = tuple[int, str | Text]  # (priority: 0 = must stay, higher = dropped sooner, text)


def _cell_len(t: str | Text) -> int:
    return t.cell_len if isinstance(t, Text) else len(t)


def fit_parts(parts: Sequence[Part], width: int, sep: str = "  ", style: str = "") -> Text:
    """Join ``parts`` in their order, leaving out whole parts (highest priority number first)
    until the line fits ``width``; only what is left is cut with an ellipsis."""
    keep = [p[0] == 0 for p in parts]
    used = sum(_cell_len(t) for (_, t), k in zip(parts, keep, strict=True) if k)
    used += len(sep) * max(0, sum(keep) - 1)
    for i in sorted(range(len(parts)), key=lambda j: parts[j][0]):
        if keep[i]:
            continue
        extra = _cell_len(parts[i][1]) + (len(sep) if any(keep) else 0)
        if used + extra <= width:
            keep[i] = True
            used += extra
    out = Text(no_wrap=True, overflow="ellipsis", style=style)
    first = True
    for (_, t), k in zip(parts, keep, strict=True):
        if not k:
            continue
        if not first:
            out.append(sep)
        out.append(t)
        first = False
    if out.cell_len > width:
        out.truncate(max(1, width), overflow="ellipsis")
    return out


def parts_of(text: str, style: str = "") -> list[Part]:
    """Fields of a line written as ``a  b  c`` (two spaces apart): the first must stay, each
    later one goes before the one in front of it."""
    return [(i, Text(f, style=style)) for i, f in enumerate(text.split("  ")) if f]


@dataclass(frozen=True, slots=True)
class Column:
    """One column a table may show: its cells, and how much it matters (0 = always)."""

    header: str
    cells: tuple[str | Text, ...]
    priority: int
    justify: str = "left"
    style: str = ""
    min_width: int = 0  # reserved even when the cells are shorter (no flicker as values grow)

    @property
    def width(self) -> int:
        return max(len(self.header), self.min_width, *(_cell_len(c) for c in self.cells))


def fit_columns(columns: Sequence[Column], width: int, gap: int = 2) -> list[Column]:
    """The columns that fit ``width`` (``gap`` cells between two), dropping whole columns, the
    highest priority number first; the priority-0 columns are always kept."""
    keep = [c.priority == 0 for c in columns]
    used = sum(c.width for c, k in zip(columns, keep, strict=True) if k)
    used += gap * max(0, sum(keep) - 1)
    for i in sorted(range(len(columns)), key=lambda j: columns[j].priority):
        if not keep[i] and used + gap + columns[i].width <= width:
            keep[i] = True
            used += gap + columns[i].width
    return [c for c, k in zip(columns, keep, strict=True) if k]


def _table(columns: Sequence[Column], gap: int = 2, **kw: object) -> Table:
    pad = (0, 1) if gap == 2 else (0, 0, 0, gap)
    t = Table(box=None, padding=pad, pad_edge=False, show_edge=False, **kw)  # type: ignore[arg-type]
    for c in columns:
        t.add_column(c.header, justify=c.justify, style=c.style, no_wrap=True)  # type: ignore[arg-type]
    n = max((len(c.cells) for c in columns), default=0)
    for i in range(n):
        t.add_row(*(c.cells[i] if i < len(c.cells) else "" for c in columns))
    return t


# -- header and footer ---------------------------------------------------------------------


def _header(snap: DashboardSnapshot, width: int = 200) -> RenderableType:
    parts: list[Part] = [(0, Text(f" {snap.title} ", style="bold white on blue"))]
    # where the data comes from: its fields go first, the last one soonest
    parts += [(p + 3, t) for p, t in parts_of(snap.target, style="bold")]
    parts.append((0, f"up {_secs(snap.uptime_s)}"))
    if snap.ends_in_s is not None:
        parts.append((1, Text(f"ends in {_secs(max(0.0, snap.ends_in_s))}", style="dim")))
    line = fit_parts(parts, width - 1)
    notice = Text(f" {snap.notice}" if snap.notice else "", style="italic yellow")
    notice.no_wrap, notice.overflow = True, "ellipsis"
    return Group(line, notice)


def _legend_lines(keys: tuple[KeyHelp, ...], width: int) -> list[list[KeyHelp]]:
    """The key legend broken into lines that fit ``width`` (never inside an entry)."""
    inner = max(10, width - 4)  # panel borders and padding
    lines: list[list[KeyHelp]] = [[]]
    used = 0
    for k in keys:
        w = len(f"[{k.key}] {k.label}  ")
        if lines[-1] and used + w > inner:
            lines.append([])
            used = 0
        lines[-1].append(k)
        used += w
    return lines


def _footer_rows(keys: tuple[KeyHelp, ...], width: int, border: bool = True) -> int:
    """Rows the key legend needs at ``width``, borders included."""
    return len(_legend_lines(keys, width)) + (2 if border else 0)


def _footer(keys: tuple[KeyHelp, ...], width: int, border: bool = True) -> RenderableType:
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(_legend_lines(keys, width)):
        if i:
            text.append("\n")
        for k in line:
            text.append(f"[{k.key}]", style="bold cyan" if k.enabled else "dim")
            text.append(f" {k.label}  ", style="" if k.enabled else "dim strike")
    if not border:
        return Padding(text, (0, 0, 0, 2))  # aligned with the bordered legend's text
    return Panel(text, title="keys", title_align="left", border_style="dim", padding=(0, 1))


# -- books ---------------------------------------------------------------------------------


def book_grid_shape(n_books: int, width: int, height: int) -> tuple[int, int]:
    """(columns, depth) for ``n_books`` panels in ``width`` x ``height``; depth 0 = compact."""
    if n_books == 0:
        return 1, 0
    cols = max(1, min(n_books, width // BOOK_PANEL_MIN_WIDTH))
    rows = math.ceil(n_books / cols)
    depth = min(MAX_DEPTH, height // rows - 4)  # 2 borders + status line + column header
    return cols, max(0, depth)


def books_view(books: tuple[BookRow, ...], width: int, height: int) -> RenderableType:
    if not books:
        return Panel(Text("waiting for books...", style="dim"), title="books")
    cols, depth = book_grid_shape(len(books), width, height)
    if depth == 0:
        return _books_compact(books, width)
    grid = Table.grid(expand=True, padding=(0, 0))
    for _ in range(cols):
        grid.add_column(ratio=1)
    inner = width // cols - 2  # panel borders, no padding
    panels: list[RenderableType] = [book_panel(b, depth, inner) for b in books]
    for i in range(0, len(panels), cols):
        row = panels[i : i + cols]
        row += [Text("")] * (cols - len(row))
        grid.add_row(*row)
    return grid


def book_panel(book: BookRow, depth: int, inner_width: int = 49) -> Panel:
    """One book: state line (state, reason, spread, age, seq: dropped right to left as the
    panel narrows) over the ladder (the size columns go before the prices)."""
    style = STATE_STYLE.get(book.state, "bold magenta")
    state = Text(book.state.upper(), style=style)
    if (
        book.reason
        and book.state != "live"
        and len(book.state) + len(book.reason) + 3 <= inner_width
    ):
        state.append(f" ({book.reason})")
    parts: list[Part] = [(0, state)]
    parts.append((4, f"seq {_opt_int(book.seq)}"))
    parts.append((3, f"age {_age(book.age_s)}"))
    parts.append((2, f"spr {book.spread or '-'}"))
    status = fit_parts(parts, inner_width)
    dim = "dim" if book.state != "live" else ""
    levels = range(depth)

    def side(rows: tuple[tuple[str, str], ...], k: int) -> tuple[str, ...]:
        return tuple(rows[i][k] if i < len(rows) else "" for i in levels)

    columns = fit_columns(
        [
            Column("bid size", side(book.bids, 1), 1, "right", f"green {dim}", 8),
            Column("bid", side(book.bids, 0), 0, "right", f"bold green {dim}"),
            Column("ask", side(book.asks, 0), 0, "left", f"bold red {dim}"),
            Column("ask size", side(book.asks, 1), 1, "left", f"red {dim}", 8),
        ],
        inner_width,
    )
    ladder = _table(columns, expand=True)
    title = Text()
    title.append(book.symbol, style="bold")
    title.append(f" {book.asset_class}", style="dim")
    return Panel(
        Group(status, ladder),
        title=title,
        title_align="left",
        border_style=style,
        padding=(0, 0),
    )


def _books_compact(books: tuple[BookRow, ...], width: int = 200) -> RenderableType:
    """One line per book. Symbol, state and best bid/ask always show; spread, the state's
    reason, age and seq are dropped in that order (last first) when the width is short."""
    reasons = tuple(b.reason if b.state != "live" else "" for b in books)
    columns = [
        Column("book", tuple(b.symbol for b in books), 0, style="bold"),
        Column(
            "state",
            tuple(Text(b.state.upper(), style=STATE_STYLE.get(b.state, "magenta")) for b in books),
            0,
            min_width=len("RESYNCING"),
        ),
        Column("why", reasons, 3, style="dim"),
        Column("seq", tuple(_opt_int(b.seq) for b in books), 5, "right", min_width=6),
        Column("age", tuple(_age(b.age_s) for b in books), 4, "right", min_width=5),
        Column("bid", tuple(b.bids[0][0] if b.bids else "-" for b in books), 0, "right"),
        Column("ask", tuple(b.asks[0][0] if b.asks else "-" for b in books), 0, "left"),
        Column("spread", tuple(b.spread or "-" for b in books), 2, "right"),
    ]
    if not any(reasons):
        columns = [c for c in columns if c.header != "why"]
    return _table(fit_columns(columns, width, gap=1), gap=1, title="books", title_justify="left")


# -- sidebar -------------------------------------------------------------------------------


def _sidebar(snap: DashboardSnapshot, height: int, width: int = SIDEBAR_WIDTH) -> RenderableType:
    inner = width - 4  # borders and padding of each panel
    conn = connection_panel(snap.connection, inner)
    strat = strategy_panel(snap.strategy, snap.connection.kill_switch, inner)
    conn_h = 9
    strat_h = 6 if snap.strategy.last_error else 5
    # the events pane keeps EVENTS_MIN_ROWS; the quotes get what is left (at most 6 lines)
    quote_lines = min(len(snap.quotes), 6, height - conn_h - strat_h - EVENTS_MIN_ROWS - 2)
    quotes_h = quote_lines + 2 if quote_lines > 0 else 0
    events_h = height - conn_h - strat_h - quotes_h
    parts = [Layout(conn, size=conn_h), Layout(strat, size=strat_h)]
    if quotes_h:
        parts.append(Layout(quotes_panel(snap.quotes[:quote_lines], inner), size=quotes_h))
    parts.append(Layout(events_panel(snap.events, max(1, events_h - 2), inner)))
    side = Layout()
    side.split_column(*parts)
    return side


def _kv_panel(title: str, rows: Sequence[tuple[str, list[Part] | Text]], inner: int) -> Panel:
    """Label / value rows: labels are never cut (their column is as wide as the longest);
    each value drops its least important fields to fit what is left."""
    label_w = max((len(label) for label, _ in rows), default=0)
    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim", no_wrap=True, min_width=label_w, max_width=label_w)
    t.add_column(no_wrap=True)
    for label, value in rows:
        if not isinstance(value, Text):
            value = fit_parts(value, max(1, inner - label_w - 1))
        t.add_row(label, value)
    return Panel(t, title=title, title_align="left", border_style="blue", padding=(0, 1))


def connection_panel(c: ConnectionRow, inner: int = SIDEBAR_WIDTH - 4) -> Panel:
    """The connection's health. Under :data:`NARROW_INNER` columns the labels are short and
    reconnects get their own row (the last backoff goes with them)."""
    narrow = inner < NARROW_INNER
    state = Text(c.state.upper(), style=CONNECTION_STYLE.get(c.state, "bold magenta"))
    state_parts: list[Part] = [(0, state)]
    if c.backoff_delay_s and c.state not in ("live", "connected"):
        delay = f"{c.backoff_delay_s:.2f}s" if narrow else f"backoff {c.backoff_delay_s:.2f}s"
        state_parts.append((1, Text(delay, style="yellow")))
    frames = "-" if c.frames_per_s is None else f"{c.frames_per_s:,.0f}"
    latency = f"{_ms(c.latency_p50_ms)} / {_ms(c.latency_p99_ms)}"
    last_backoff = "-" if c.backoff_delay_s is None else f"{c.backoff_delay_s:.2f}s"
    if narrow:
        rows: list[tuple[str, list[Part]]] = [
            ("state", state_parts),
            ("heartbeat", [(0, _age(c.heartbeat_age_s))]),
            ("frames/s", [(0, frames)]),
            ("p50/p99", [(0, latency)]),
            ("gaps/resyncs", [(0, f"{c.gaps} / {c.resyncs}")]),
            ("reconnects", [(0, str(c.reconnects)), (1, f"last backoff {last_backoff}")]),
            ("snapshots", [(0, f"{c.snapshot_requests} req"), (0, f"429s {c.rate_limited}")]),
        ]
    else:
        rows = [
            ("state", state_parts),
            ("heartbeat age", [(0, _age(c.heartbeat_age_s))]),
            ("frames/s", [(0, frames)]),
            ("latency p50/p99", [(0, latency)]),
            ("gaps/resyncs", [(0, f"{c.gaps} / {c.resyncs}"), (0, f" reconnects {c.reconnects}")]),
            (
                "snapshots",
                [(0, f"{c.snapshot_requests} requested"), (0, f" 429s {c.rate_limited}")],
            ),
            ("last backoff", [(0, last_backoff)]),
        ]
    return _kv_panel("connection", rows, inner)


_KILL_SWITCH = re.compile(r"^cancelled (\d+), failed (\d+)(?: \((\w+)\))?(?: at (\S+))?$")


def _kill_switch_parts(text: str, width: int) -> list[Part]:
    """'cancelled 4, failed 0 (own) at 12:00:03': the counts stay (shorter when narrow:
    'cancelled 4', '4 ok, 1 failed'), then the time, then the scope."""
    m = _KILL_SWITCH.match(text)
    if m is None:
        return [(0, Text(text, style="bold" if text != "-" else "dim"))]
    n_c, n_f, scope, when = m.groups()
    counts = f"cancelled {n_c}, failed {n_f}"
    if len(counts) > width:
        counts = f"cancelled {n_c}" if n_f == "0" else f"{n_c} ok, {n_f} failed"
    parts: list[Part] = [(0, Text(counts, style="bold"))]
    if scope:
        parts.append((3, f"({scope})"))
    if when:
        parts.append((2, f"at {when}"))
    return parts


def strategy_panel(s: StrategyRow, kill_switch: str, inner: int = SIDEBAR_WIDTH - 4) -> Panel:
    counts: list[Part] = [
        (0, f"placed {s.placed}"),
        (1, f"cancelled {s.cancelled}"),
    ]
    if s.errors:
        counts.append((0, Text(f"errors {s.errors}", style="red")))
    rows: list[tuple[str, list[Part] | Text]]
    if s.enabled:
        rows = [("strategy", [(0, s.status)]), ("", [(0, f"open {s.open_orders}"), *counts])]
    else:
        off = s.status if s.status != "off" else "off (--no-strategy)"  # or the venue's reason
        rows = [("strategy", [(0, Text(off, style="dim"))]), ("", [])]
    value_w = inner - len("kill switch") - 1
    rows.append(("kill switch", fit_parts(_kill_switch_parts(kill_switch, value_w), value_w, " ")))
    if s.last_error:
        rows.append(("", [(0, Text(s.last_error, style="dim red"))]))
    return _kv_panel("orders", rows, inner)


def quotes_panel(quotes: tuple[QuoteRow, ...], inner: int = SIDEBAR_WIDTH - 4) -> Panel:
    label_w = max((len(q.channel) for q in quotes[:6]), default=0)
    t = Table.grid(padding=(0, 1))
    t.add_column(no_wrap=True, min_width=label_w, max_width=label_w)
    t.add_column(no_wrap=True)
    for q in quotes[:6]:
        t.add_row(Text(q.channel, style="bold"), fit_parts(parts_of(q.text), inner - label_w - 1))
    return Panel(t, title="tickers & trades", title_align="left", border_style="blue")


EVENT_STYLE = {
    "connected": "green",
    "subscribed": "green",
    "synced": "green",
    "active": "green",
    "gap": "yellow",
    "bad_frame": "yellow",
    "snapshot_error": "yellow",
    "trades_missed": "yellow",
    "reconnecting": "yellow",
    "connect_retry": "yellow",
    "orders_cancelled": "bold yellow",
    "stale": "red",
    "disconnected": "bold red",
    "auth_failed": "bold red",
    ">>": "bold magenta",
    "log": "dim",
}


_EVENT_TIME = re.compile(r"^\d\d:\d\d:\d\d ")


def events_panel(events: tuple[str, ...], rows: int, inner: int = SIDEBAR_WIDTH - 4) -> Panel:
    """The newest ``rows`` events; each coloured by its name (the word after the time). Under
    :data:`EVENTS_TIME_MIN_INNER` columns the time is left out, so the event keeps the room
    (its essential fields come first: :func:`tickpipe.cli.dashboard_source.format_event`)."""
    shown = events[-rows:] if rows > 0 else ()
    with_time = inner >= EVENTS_TIME_MIN_INNER
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(shown):
        if i:
            text.append("\n")
        words = line.split(" ", 2)
        name = words[1] if len(words) > 1 else ""
        if not with_time:
            line = _EVENT_TIME.sub("", line, count=1)
        text.append(line, style=EVENT_STYLE.get(name, ""))
    if not shown:
        text.append("no events yet", style="dim")
    return Panel(text, title="recent events", title_align="left", border_style="blue")


# -- formatting ----------------------------------------------------------------------------


def _opt_int(v: int | None) -> str:
    return "-" if v is None else str(v)


def _age(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 10:
        return f"{s:.1f}s"
    return _secs(s)


def _secs(s: float) -> str:
    if s < 60:
        return f"{s:.0f}s"
    m, sec = divmod(int(s), 60)
    return f"{m}m{sec:02d}s"


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}ms" if v < 10 else f"{v:.0f}ms"
