"""The demo's screen, as a pure function of a :class:`DashboardSnapshot` and the terminal size.

::

    header    title · where the data comes from · uptime · notice (last key's result)
    books     one panel per order book: state (coloured), seq, age, spread, top levels
    sidebar   connection health · strategy and kill switch · tickers/trades · recent events
    footer    the keys and what each one injects

The layout adapts to the terminal: the number of book columns follows the width, the depth of
each ladder follows the height (5 levels at 160x50, down to 1); below that the books collapse to
one line each. ``render`` does no I/O and reads nothing live, so it runs on rich's refresh thread
and is unit-tested by printing to a recording console.
"""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.layout import Layout
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
SIDEBAR_WIDTH = 54
BOOK_PANEL_MIN_WIDTH = 38
MAX_DEPTH = 5
HEADER_ROWS = 2


def render(snap: DashboardSnapshot, width: int, height: int) -> RenderableType:
    """The whole screen for a terminal of ``width`` x ``height`` cells."""
    footer_rows = _footer_rows(snap.keys, width)
    root = Layout(name="root")
    root.split_column(
        Layout(_header(snap), name="header", size=HEADER_ROWS),
        Layout(name="body"),
        Layout(_footer(snap.keys, width), name="footer", size=footer_rows),
    )
    body_h = max(1, height - HEADER_ROWS - footer_rows)
    side_w = sidebar_width(width)
    root["body"].split_row(
        Layout(books_view(snap.books, width - side_w, body_h), name="books"),
        Layout(_sidebar(snap, body_h), name="sidebar", size=side_w),
    )
    return root


def sidebar_width(width: int) -> int:
    """54 columns on wide terminals; about 40 % of narrower ones (at least 34)."""
    if width >= SIDEBAR_WIDTH + 2 * BOOK_PANEL_MIN_WIDTH:
        return SIDEBAR_WIDTH
    return max(34, min(SIDEBAR_WIDTH, int(width * 0.4)))


# -- header and footer ---------------------------------------------------------------------


def _header(snap: DashboardSnapshot) -> RenderableType:
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f" {snap.title} ", style="bold white on blue")
    if snap.target:
        line.append(f"  {snap.target}", style="bold")
    line.append(f"  up {_secs(snap.uptime_s)}")
    if snap.ends_in_s is not None:
        line.append(f"  ends in {_secs(max(0.0, snap.ends_in_s))}", style="dim")
    notice = Text(f" {snap.notice}" if snap.notice else "", style="italic yellow")
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


def _footer_rows(keys: tuple[KeyHelp, ...], width: int) -> int:
    """Rows the key legend needs at ``width``, borders included."""
    return len(_legend_lines(keys, width)) + 2


def _footer(keys: tuple[KeyHelp, ...], width: int) -> RenderableType:
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(_legend_lines(keys, width)):
        if i:
            text.append("\n")
        for k in line:
            text.append(f"[{k.key}]", style="bold cyan" if k.enabled else "dim")
            text.append(f" {k.label}  ", style="" if k.enabled else "dim strike")
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
        return _books_compact(books)
    grid = Table.grid(expand=True, padding=(0, 0))
    for _ in range(cols):
        grid.add_column(ratio=1)
    panels: list[RenderableType] = [book_panel(b, depth) for b in books]
    for i in range(0, len(panels), cols):
        row = panels[i : i + cols]
        row += [Text("")] * (cols - len(row))
        grid.add_row(*row)
    return grid


def book_panel(book: BookRow, depth: int) -> Panel:
    style = STATE_STYLE.get(book.state, "bold magenta")
    status = Text(no_wrap=True, overflow="ellipsis")
    status.append(book.state.upper(), style=style)
    if book.reason and book.state != "live":
        status.append(f" ({book.reason})", style=style)
    status.append(f"  seq {_opt_int(book.seq)}  age {_age(book.age_s)}")
    status.append(f"  spr {book.spread or '-'}")
    ladder = Table(box=None, expand=True, padding=(0, 1), show_edge=False, pad_edge=False)
    ladder.add_column("bid size", justify="right", style="green", no_wrap=True)
    ladder.add_column("bid", justify="right", style="bold green", no_wrap=True)
    ladder.add_column("ask", justify="left", style="bold red", no_wrap=True)
    ladder.add_column("ask size", justify="left", style="red", no_wrap=True)
    dim = book.state != "live"
    for i in range(depth):
        bp, bs = book.bids[i] if i < len(book.bids) else ("", "")
        ap, as_ = book.asks[i] if i < len(book.asks) else ("", "")
        ladder.add_row(bs, bp, ap, as_, style="dim" if dim else None)
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


def _books_compact(books: tuple[BookRow, ...]) -> RenderableType:
    t = Table(expand=True, box=None, padding=(0, 1), title="books", title_justify="left")
    for name, justify in (
        ("book", "left"),
        ("state", "left"),
        ("seq", "right"),
        ("age", "right"),
        ("bid", "right"),
        ("ask", "left"),
        ("spread", "right"),
    ):
        t.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for b in books:
        t.add_row(
            b.symbol,
            Text(b.state.upper(), style=STATE_STYLE.get(b.state, "magenta")),
            _opt_int(b.seq),
            _age(b.age_s),
            b.bids[0][0] if b.bids else "-",
            b.asks[0][0] if b.asks else "-",
            b.spread or "-",
        )
    return t


# -- sidebar -------------------------------------------------------------------------------


def _sidebar(snap: DashboardSnapshot, height: int) -> RenderableType:
    conn = connection_panel(snap.connection)
    strat = strategy_panel(snap.strategy, snap.connection.kill_switch)
    quotes = quotes_panel(snap.quotes)
    conn_h = 9
    strat_h = 6 if snap.strategy.last_error else 5
    quotes_h = min(len(snap.quotes), 6) + 2 if snap.quotes else 0
    events_h = height - conn_h - strat_h - quotes_h
    if events_h < 3:  # small terminal: drop the quotes first, then the strategy
        quotes_h, events_h = 0, height - conn_h - strat_h
    parts = [Layout(conn, size=conn_h), Layout(strat, size=strat_h)]
    if quotes_h:
        parts.append(Layout(quotes, size=quotes_h))
    parts.append(Layout(events_panel(snap.events, max(1, events_h - 2))))
    side = Layout()
    side.split_column(*parts)
    return side


def connection_panel(c: ConnectionRow) -> Panel:
    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim", no_wrap=True)
    t.add_column(no_wrap=True)
    state = Text(c.state.upper(), style=CONNECTION_STYLE.get(c.state, "bold magenta"))
    if c.backoff_delay_s and c.state not in ("live", "connected"):
        state.append(f"  backoff {c.backoff_delay_s:.2f}s", style="yellow")
    t.add_row("state", state)
    t.add_row("heartbeat age", _age(c.heartbeat_age_s))
    t.add_row(
        "frames/s",
        "-" if c.frames_per_s is None else f"{c.frames_per_s:,.0f}",
    )
    t.add_row("latency p50/p99", f"{_ms(c.latency_p50_ms)} / {_ms(c.latency_p99_ms)}")
    t.add_row(
        "gaps/resyncs",
        f"{c.gaps} / {c.resyncs}   reconnects {c.reconnects}",
    )
    t.add_row("snapshots", f"{c.snapshot_requests} requested   429s {c.rate_limited}")
    last_backoff = "-" if c.backoff_delay_s is None else f"{c.backoff_delay_s:.2f}s"
    t.add_row("last backoff", last_backoff)
    return Panel(t, title="connection", title_align="left", border_style="blue", padding=(0, 1))


def strategy_panel(s: StrategyRow, kill_switch: str) -> Panel:
    t = Table.grid(padding=(0, 1))
    t.add_column(style="dim", no_wrap=True)
    t.add_column(no_wrap=True, overflow="ellipsis")
    if s.enabled:
        t.add_row("strategy", f"{s.status}  open orders {s.open_orders}")
        t.add_row(
            "",
            f"placed {s.placed}  cancelled {s.cancelled}"
            + (f"  errors {s.errors}" if s.errors else ""),
        )
    else:
        t.add_row("strategy", Text("off (--no-strategy)", style="dim"))
        t.add_row("", "")
    t.add_row("kill switch", Text(kill_switch, style="bold" if kill_switch != "-" else "dim"))
    if s.last_error:
        t.add_row("", Text(s.last_error, style="dim red"))
    return Panel(t, title="orders", title_align="left", border_style="blue", padding=(0, 1))


def quotes_panel(quotes: tuple[QuoteRow, ...]) -> Panel:
    t = Table.grid(padding=(0, 1))
    t.add_column(no_wrap=True)
    t.add_column(no_wrap=True, overflow="ellipsis")
    for q in quotes[:6]:
        t.add_row(Text(q.channel, style="bold"), q.text)
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
    "orders_cancelled": "bold yellow",
    "stale": "red",
    "disconnected": "bold red",
    "auth_failed": "bold red",
    ">>": "bold magenta",
    "log": "dim",
}


def events_panel(events: tuple[str, ...], rows: int) -> Panel:
    """The newest ``rows`` events; each coloured by its name (the word after the time)."""
    shown = events[-rows:] if rows > 0 else ()
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(shown):
        if i:
            text.append("\n")
        words = line.split(" ", 2)
        name = words[1] if len(words) > 1 else ""
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
