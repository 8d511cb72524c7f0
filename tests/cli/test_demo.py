"""``tickpipe demo``: the dashboard as a person sees it, and the pieces it is made of.

The end-to-end tests run the real command in a pseudo-terminal (pexpect) against the real
reference gateway it starts, feed everything it writes to a 160x50 ``pyte`` screen and read that
screen. The unit tests cover the pure parts: rendering from a plain snapshot, flag checks,
``--inject`` parsing, the ready line, the key reader's terminal handling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import re
import signal
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte
import pytest
from rich.console import Console

from tickpipe.cli.dashboard import book_grid_shape, render
from tickpipe.cli.dashboard_faults import ACTIONS_BY_KEY, FAULT_ACTIONS, parse_inject
from tickpipe.cli.dashboard_gateway import parse_ready_line
from tickpipe.cli.dashboard_keys import KeyReader
from tickpipe.cli.dashboard_model import (
    BookRow,
    ConnectionRow,
    DashboardSnapshot,
    KeyHelp,
    StrategyRow,
)
from tickpipe.cli.dashboard_source import fmt_decimal, format_event, kill_switch_text
from tickpipe.cli.demo import DEFAULT_BOOKS, options_from_args, rest_url_for
from tickpipe.cli.main import build_parser
from tickpipe.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
COLS, ROWS = 160, 50
ASSET_CLASSES = ("crypto", "equity", "metal", "fx")


# -- the pseudo-terminal harness -----------------------------------------------------------


class DemoTerminal:
    """``python -m tickpipe demo ARGS`` in a pty, its output kept on a pyte screen."""

    def __init__(self, *args: str, cols: int = COLS, rows: int = ROWS) -> None:
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        env.pop("NO_COLOR", None)
        self.child = pexpect.spawn(
            PYTHON,
            ["-m", "tickpipe", "demo", *args],
            dimensions=(rows, cols),
            env=env,
            cwd=str(ROOT),
            timeout=5,
        )
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.final_lflag = 0

    def lflag(self) -> int:
        """The terminal's local modes now (ICANON, ECHO, ISIG...)."""
        return int(termios.tcgetattr(self.child.child_fd)[3])

    def pump(self, wait_s: float = 0.1) -> None:
        """Feed whatever the demo wrote (waiting up to ``wait_s`` for the first byte)."""
        timeout = wait_s
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=timeout)
            except (pexpect.TIMEOUT, pexpect.EOF):
                return
            self.raw += data
            self.stream.feed(data)
            timeout = 0

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, ok: Callable[[str], bool], what: str, timeout_s: float = 15.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.pump(0.1)
            screen = self.text()
            if ok(screen):
                return screen
            if not self.child.isalive():
                self.pump(0)
                break
        raise AssertionError(
            f"screen never showed {what} within {timeout_s} s; last screen:\n{self.text()}\n"
            f"raw tail: {bytes(self.raw[-2000:])!r}"
        )

    def wait_exit(self, timeout_s: float = 15.0) -> int:
        deadline = time.monotonic() + timeout_s
        while self.child.isalive() and time.monotonic() < deadline:
            self.pump(0.1)
        self.pump(0)
        assert not self.child.isalive(), f"demo still running after {timeout_s} s"
        self.final_lflag = termios.tcgetattr(self.child.child_fd)[3]  # the pty as it was left
        self.child.close()
        assert self.child.exitstatus is not None, f"demo killed by signal {self.child.signalstatus}"
        return int(self.child.exitstatus)

    def plain_output(self) -> str:
        """Everything written, escape sequences removed (for text printed after the screen)."""
        return re.sub(
            r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]",
            "",
            self.raw.decode(errors="replace"),
        )

    def close(self) -> None:
        if self.child.isalive():
            self.child.kill(signal.SIGKILL)
        self.child.close(force=True)


def book_line(screen: str, symbol: str) -> str:
    """The status line of ``symbol``'s book panel (the line under its title)."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        m = re.search(rf"╭─ {re.escape(symbol)} ", line)
        if m and i + 1 < len(lines):
            return lines[i + 1][m.start() : m.start() + 60]
    return ""


def all_books_live(screen: str) -> bool:
    return all("LIVE" in book_line(screen, s) for s in DEFAULT_BOOKS)


def conn_value(screen: str, label: str) -> str:
    m = re.search(rf"{re.escape(label)}\s+(\S+)", screen)
    return m.group(1) if m else ""


def reconnects(screen: str) -> int:
    m = re.search(r"reconnects (\d+)", screen)
    return int(m.group(1)) if m else -1


def placed(screen: str) -> int:
    m = re.search(r"placed (\d+)", screen)
    return int(m.group(1)) if m else -1


def gateway_pid(screen: str) -> int:
    m = re.search(r"embedded gateway pid (\d+)", screen)
    assert m, f"no gateway pid on screen:\n{screen}"
    return int(m.group(1))


def pid_gone(pid: int, timeout_s: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie waiting for a reaper)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def demo_term() -> object:
    terms: list[DemoTerminal] = []

    def start(*args: str) -> DemoTerminal:
        t = DemoTerminal(*args)
        terms.append(t)
        return t

    yield start
    for t in terms:
        t.close()


# -- end to end: what a person sees --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_dashboard_shows_books_then_a_disconnect_key_goes_stale_and_recovers(demo_term):
    term: DemoTerminal = demo_term("--duration", "45")
    screen = term.wait_for(all_books_live, "every default book LIVE", timeout_s=25)
    for symbol in DEFAULT_BOOKS:
        assert symbol in screen
    for asset_class in ASSET_CLASSES:
        assert asset_class in screen, f"asset class {asset_class} not on screen"
    for label in ("heartbeat age", "frames/s", "latency p50/p99", "snapshots", "kill switch"):
        assert label in screen
    assert "[d] disconnect" in screen and "[q] quit" in screen
    pid = gateway_pid(screen)
    assert reconnects(screen) == 0, screen
    assert not term.lflag() & (termios.ICANON | termios.ECHO)  # cbreak: keys come one by one
    # the built-in strategy rests orders, so the kill switch will have something to cancel
    term.wait_for(lambda s: placed(s) >= 2, "the strategy placing orders", timeout_s=10)

    term.child.send("d")
    screen = term.wait_for(
        lambda s: "disconnected reason=" in s and "stale reason=disconnected orderbook:" in s,
        "the disconnect and the books going stale in the events pane",
        timeout_s=10,
    )
    screen = term.wait_for(
        lambda s: reconnects(s) >= 1 and all_books_live(s),
        "reconnect count 1 and every book LIVE again",
        timeout_s=20,
    )
    assert re.search(r"kill switch\s+cancelled [1-9]", screen), screen
    assert re.search(r"reconnecting attempt=0 delay_s=\d", screen), screen
    assert "synced" in screen  # the re-seed is in the recent-events pane

    term.child.sendintr()
    code = term.wait_exit(15)
    assert code == 0
    out = term.plain_output()
    assert "Traceback" not in out
    assert "stopped (Ctrl-C)" in out
    assert pid_gone(pid), f"gateway pid {pid} still running after the demo exited"
    # terminal restored: line mode and echo back, cursor shown, alternate screen left
    assert term.final_lflag & termios.ICANON and term.final_lflag & termios.ECHO
    raw = bytes(term.raw)
    assert raw.rfind(b"\x1b[?25h") > raw.rfind(b"\x1b[?25l")
    assert raw.rfind(b"\x1b[?1049l") > raw.rfind(b"\x1b[?1049h")


@pytest.mark.slow
@pytest.mark.timeout(45)
def test_duration_and_inject_flags_end_by_themselves(demo_term):
    term: DemoTerminal = demo_term(
        "--duration", "7", "--no-strategy", "--inject", "disconnect@2", "--refresh", "8"
    )
    screen = term.wait_for(lambda s: "off (--no-strategy)" in s, "the strategy off", 20)
    pid = gateway_pid(screen)
    code = term.wait_exit(30)
    assert code == 0
    out = term.plain_output()
    assert "Traceback" not in out
    assert "stopped (--duration reached)" in out
    m = re.search(r"reconnects (\d+)", out.split("stopped (--duration reached)")[-1])
    assert m and int(m.group(1)) >= 1, out[-1500:]
    assert pid_gone(pid)


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_sigterm_while_starting_leaves_no_gateway():
    proc = pexpect.spawn(PYTHON, ["-m", "tickpipe", "demo"], cwd=str(ROOT), timeout=20)
    try:
        proc.expect("starting the reference gateway")
        proc.expect("connecting to")  # the gateway is up: stop right now, mid-start
        children = _children_of(proc.pid)
        proc.kill(signal.SIGTERM)
        proc.expect(pexpect.EOF, timeout=15)
        proc.close()
        assert proc.exitstatus == 0, proc.before
        assert b"Traceback" not in (proc.before or b"")
        for pid in children:
            assert pid_gone(pid), f"child {pid} left running"
    finally:
        if proc.isalive():
            proc.kill(signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_gateway_dies_with_the_demo_even_on_sigkill(demo_term):
    term: DemoTerminal = demo_term("--duration", "30", "--no-strategy")
    pid = gateway_pid(term.wait_for(lambda s: "embedded gateway pid" in s, "the header", 20))
    term.child.kill(signal.SIGKILL)  # no cleanup code runs: only PR_SET_PDEATHSIG is left
    assert pid_gone(pid, timeout_s=10), f"gateway pid {pid} outlived a SIGKILLed demo"


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_pointed_elsewhere_starts_nothing_and_fault_keys_need_an_admin_endpoint(
    demo_term, gateway_process
):
    term: DemoTerminal = demo_term(
        "--stream-url", gateway_process.stream_url, "--rest-url", gateway_process.rest_url,
        "--duration", "20", "--no-strategy",
    )  # fmt: skip
    screen = term.wait_for(all_books_live, "every default book LIVE", timeout_s=15)
    assert "embedded gateway" not in screen and gateway_process.stream_url in screen
    assert "fault keys off: no admin endpoint" in screen
    assert _children_of(term.child.pid) == []  # no gateway of its own
    term.child.send("d")
    term.wait_for(lambda s: "disconnect: no admin endpoint" in s, "the no-admin notice", 5)
    term.child.send("q")
    assert term.wait_exit(10) == 0
    assert "stopped (q pressed)" in term.plain_output()


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append(int(entry))
    return out


def test_unreachable_gateway_is_a_clear_error_not_a_traceback():
    proc = pexpect.spawn(
        PYTHON,
        ["-m", "tickpipe", "demo", "--stream-url", "ws://127.0.0.1:9/v1/stream"],
        cwd=str(ROOT),
        timeout=20,
    )
    proc.expect(pexpect.EOF)
    proc.close()
    out = (proc.before or b"").decode()
    assert proc.exitstatus == 1, out
    assert "tickpipe demo: error: cannot load the instruments from http://127.0.0.1:9/" in out
    assert "Traceback" not in out
    # no summary of a run that never happened
    assert "stopped" not in out and "connection:" not in out and "kill switch" not in out, out


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_gateway_that_cannot_start_prints_only_the_error_and_exits_1():
    import subprocess

    proc = subprocess.run(
        [PYTHON, "-m", "tickpipe", "demo", "--gateway-arg=--no-such-flag", "--duration", "5"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=45,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "tickpipe demo: error: cannot start the embedded gateway" in proc.stderr
    assert "--no-such-flag" in proc.stderr
    assert "stopped" not in proc.stdout + proc.stderr and "connection:" not in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_no_valid_channel_exits_2_naming_each_refusal_and_the_known_symbols():
    import subprocess

    proc = subprocess.run(
        [PYTHON, "-m", "tickpipe", "demo", "--channels", "orderbook:FOO", "ticker:BAR",
         "--duration", "5", "--no-strategy"],
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=45,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr
    assert (
        "tickpipe demo: error: no channel to show: refused orderbook:FOO (unknown symbol 'FOO')"
        in err
    )
    assert "ticker:BAR (unknown symbol 'BAR')" in err
    assert re.search(r"known symbols: .*AAPL.*BTC-USD", err), err
    assert "stopped" not in proc.stdout + err and "Traceback" not in err


# -- 80x24: the smallest terminal the demo promises to be readable in -----------------------


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_at_80x24_a_refused_channel_is_named_the_rest_runs_and_nothing_vital_is_cut():
    term = DemoTerminal(
        "--channels", "orderbook:FOO", *(f"orderbook:{s}" for s in DEFAULT_BOOKS), "ticker:AAPL",
        "--duration", "60", "--no-strategy",
        cols=80, rows=24,
    )  # fmt: skip
    try:

        def all_live(s: str) -> bool:  # one line per book: symbol, state, best bid, best ask
            return all(
                re.search(rf"^{sym} +LIVE .*\d\.\d+ +\d+\.\d+\b", s, re.M) for sym in DEFAULT_BOOKS
            )

        screen = term.wait_for(all_live, "every valid book LIVE with bid and ask", 30)
        assert "refused orderbook:FOO (unknown symbol 'FOO')" in screen  # the notice line
        assert "FOO" not in screen.split("\n", 2)[2]  # no row for it
        for label in ("heartbeat", "frames/s", "p50/p99", "reconnects", "snapshots", "kill switch"):
            assert re.search(rf"│ {re.escape(label)} ", screen), (label, screen)
        books_area = "\n".join(line[:46] for line in screen.splitlines()[2:])
        assert "…" not in books_area, screen
        # 'e': two 503s on the first book: the status is what the events pane shows first
        term.child.send("e")
        screen = term.wait_for(
            lambda s: "snapshot_error status=503" in s, "snapshot_error status=503", 20
        )
        term.child.send("q")
        assert term.wait_exit(20) == 0
        out = term.plain_output()
        assert "Traceback" not in out and "stopped (q pressed)" in out
        assert "channels: refused orderbook:FOO (unknown symbol 'FOO')" in out
    finally:
        term.close()


# -- the screen, from plain values ---------------------------------------------------------


def _snapshot(**over: object) -> DashboardSnapshot:
    books = (
        BookRow(
            "BTC-USD",
            "crypto",
            "live",
            "snapshot",
            1042,
            0.05,
            (("65000.00", "0.5000"), ("64999.99", "1.2000")),
            (("65000.01", "0.3000"),),
            "0.01",
            True,
        ),
        BookRow("AAPL", "equity", "resyncing", "seq_gap", None, 1.5),
        BookRow(
            "XAU-USD",
            "metal",
            "stale",
            "disconnected",
            77,
            3.0,
            (("2350.00", "1.00"),),
            (("2350.10", "2.00"),),
            "0.10",
        ),
        BookRow("EUR-USD", "fx", "syncing", "subscribed"),
    )
    base = dict(
        target="embedded gateway pid 4242  ws://127.0.0.1:1234/v1/stream",
        uptime_s=12.0,
        books=books,
        connection=ConnectionRow(
            "reconnecting",
            7.5,
            1234.0,
            0.42,
            3.9,
            2,
            3,
            1,
            0.61,
            9,
            4,
            "cancelled 2, failed 0 (own)",
        ),
        strategy=StrategyRow(True, "quoting 3 books", 6, 12, 6),
        events=tuple(f"12:00:{i:02d} event number {i}" for i in range(40)),
        keys=(*(KeyHelp(a.key, a.legend) for a in FAULT_ACTIONS), KeyHelp("q", "quit")),
        notice="key 'd': injected disconnect",
        ends_in_s=5.0,
    )
    base.update(over)
    return DashboardSnapshot(**base)  # type: ignore[arg-type]


def _screen(snap: DashboardSnapshot, width: int = COLS, height: int = ROWS) -> str:
    with open(os.devnull, "w") as sink:
        console = Console(width=width, height=height, record=True, color_system=None, file=sink)
        console.print(render(snap, width, height))
    return console.export_text()


def test_render_shows_each_book_with_state_levels_and_the_connection():
    text = _screen(_snapshot())
    for sym, cls_, state in (
        ("BTC-USD", "crypto", "LIVE"),
        ("AAPL", "equity", "RESYNCING (seq_gap)"),
        ("XAU-USD", "metal", "STALE (disconnected)"),
        ("EUR-USD", "fx", "SYNCING"),
    ):
        assert f"{sym} {cls_}" in text
        assert state in text
    assert "65000.00" in text and "65000.01" in text and "seq 1042" in text and "spr 0.01" in text
    assert "RECONNECTING" in text and "backoff 0.61s" in text
    assert "429s 4" in text and "reconnects 1" in text and "1,234" in text
    assert "0.42ms / 3.90ms" in text
    assert "cancelled 2, failed 0 (own)" in text
    assert "event number 39" in text  # newest event shown, oldest dropped
    assert "event number 0\n" not in text
    assert "[d] disconnect" in text and "[q] quit" in text
    assert "pid 4242" in text and "injected disconnect" in text
    assert len(text.rstrip("\n").splitlines()) <= ROWS


def test_render_fits_a_small_terminal_by_collapsing_books():
    books = tuple(BookRow(s, "crypto", "live", seq=i) for i, s in enumerate(DEFAULT_BOOKS))
    text = _screen(_snapshot(books=books), 80, 24)
    assert len(text.rstrip("\n").splitlines()) <= 24
    for s in ("BTC-USD", "AAPL", "MSFT", "NVDA"):
        assert s in text
    for a in FAULT_ACTIONS:  # the key legend wraps instead of losing keys
        assert f"[{a.key}] {a.legend}" in text


def _realistic_books() -> tuple[BookRow, ...]:
    prices = {
        "BTC-USD": ("65000.00", "65000.01", "0.2728"),
        "ETH-USD": ("3399.97", "3399.98", "1.332"),
        "AAPL": ("188.99", "189.00", "598"),
        "MSFT": ("414.95", "414.96", "580"),
        "NVDA": ("880.01", "880.02", "268"),
        "XAU-USD": ("2350.10", "2350.20", "17.03"),
        "EUR-USD": ("1.08498", "1.08499", "2272000"),
    }
    states = ["live", "resyncing", "stale", "live", "syncing", "live", "stale"]
    reasons = ["", "checksum", "disconnected", "", "subscribed", "", "heartbeat"]
    return tuple(
        BookRow(
            sym, "crypto", states[i], reasons[i], 123456, 0.4,
            ((bid, size),) * 5, ((ask, size),) * 5, "0.01",
        )
        for i, (sym, (bid, ask, size)) in enumerate(prices.items())
    )  # fmt: skip


@pytest.mark.parametrize(("cols", "rows"), [(80, 24), (100, 30), (160, 48)])
def test_narrow_screens_drop_whole_columns_never_cut_symbol_state_or_best_prices(cols, rows):
    books = _realistic_books()
    conn = ConnectionRow(
        "reconnecting", 7.5, 1234.0, 0.42, 3.9, 2, 3, 11, 0.61, 19, 4,
        "cancelled 12, failed 1 (own) at 12:00:03",
    )  # fmt: skip
    text = _screen(_snapshot(books=books, connection=conn), cols, rows)
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= rows
    compact = "╭─ BTC-USD" not in text  # one line per book, else one panel per book
    for b in books:
        state, bid, ask = b.state.upper(), re.escape(b.bids[0][0]), re.escape(b.asks[0][0])
        if compact:
            row = rf"^{re.escape(b.symbol)} +{state}\b.* {bid} +{ask}\b"
            assert re.search(row, text, re.M), (b.symbol, text)
        else:
            assert book_line(text, b.symbol).startswith(f"│{state}"), (b.symbol, text)
            assert re.search(rf" {bid} +{ask} ", text), (b.symbol, text)
    # labels are whole; a value loses whole fields, so no cell of the sidebar ends in "…"
    assert "…" not in text, text
    assert re.search(r"reconnects\s+11", text) and re.search(r"429s 4", text)
    assert re.search(r"kill switch\s+(cancelled 12, failed 1|12 ok, 1 failed)", text), text
    assert "RECONNECTING" in text and "quoting 3 books" in text


def test_events_pane_shows_the_essential_field_first_and_narrow_panes_drop_the_time():
    from tickpipe.client.events import GapEvent, SnapshotError, Stale

    events = (
        format_event(
            SnapshotError(
                channel="orderbook:EUR-USD",
                error="GET /v1/snapshot/EUR-USD?depth=50 -> 503 snapshot_unavailable: injected",
            )
        ),
        format_event(GapEvent(channel="orderbook:XAU-USD", reason="checksum", expected=1, got=2)),
        format_event(Stale(channel="orderbook:BTC-USD", reason="heartbeat")),
    )
    assert re.search(r"^\d\d:\d\d:\d\d snapshot_error status=503 orderbook:EUR-USD", events[0])
    assert "snapshot_unavailable" in events[0] and "GET" not in events[0].split("error=")[0]
    assert "gap reason=checksum orderbook:XAU-USD" in events[1]
    text = _screen(_snapshot(events=events), 80, 24)
    assert "│ snapshot_error status=503 " in text  # no time column at 80 columns
    limited = format_event(SnapshotError(channel="orderbook:AAPL", error="GET /x -> 429 limit: x"))
    assert limited.split(" ", 1)[1] == "snapshot_error status=429 orderbook:AAPL error=limit: x"
    assert "│ gap reason=checksum " in text and "│ stale reason=heartbeat " in text
    wide = _screen(_snapshot(events=events), 160, 48)
    assert re.search(r"\d\d:\d\d:\d\d snapshot_error status=503 ", wide)


def test_book_grid_shape_follows_the_terminal():
    assert book_grid_shape(7, 106, 45) == (2, 5)
    cols, depth = book_grid_shape(7, 40, 20)
    assert cols == 1 and depth == 0  # too short for 7 ladders: compact table
    assert book_grid_shape(0, 100, 40) == (1, 0)


def test_fault_keys_are_unique_and_quit_is_free():
    keys = [a.key for a in FAULT_ACTIONS]
    assert len(keys) == len(set(keys)) and "q" not in keys
    assert {"d", "c", "g", "x", "p", "s", "r", "m", "e", "o"} <= set(ACTIONS_BY_KEY)
    for a in FAULT_ACTIONS:
        assert a.requests, a.name


# -- flags -----------------------------------------------------------------------------------


def test_parse_inject_accepts_name_at_seconds():
    sf = parse_inject("disconnect@2.5")
    assert (sf.name, sf.at_s) == ("disconnect", 2.5)
    assert sf.action.key == "d"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("explode@3", "unknown fault 'explode'"),
        ("disconnect", "expected NAME@SECONDS"),
        ("disconnect@soon", "'soon' is not a number"),
        ("disconnect@-1", ">= 0"),
        ("disconnect@nan", ">= 0"),
    ],
)
def test_parse_inject_rejects_bad_text_naming_it(text, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        parse_inject(text)


def _demo_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["demo", *argv])


def test_options_default_to_the_embedded_gateway_and_the_mixed_channels():
    opts = options_from_args(_demo_args())
    assert opts.stream_url is None and opts.strategy
    kinds = {c.split(":")[0] for c in opts.channels}
    assert kinds == {"orderbook", "ticker", "trades"}
    assert "--seed=1" in opts.gateway_args


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--rest-url", "http://x:1"], "--rest-url needs --stream-url"),
        (["--stream-url", "ws://h:1/v1/stream", "--faults", "flaky"], "embedded gateway"),
        (["--stream-url", "http://h:1/"], "--stream-url must be ws://"),
        (["--channels", "orderbook"], "--channels"),
        (["--channels", "candles:BTC-USD"], "--channels"),
        (["--duration", "0"], "--duration must be > 0"),
        (["--refresh", "100"], "--refresh"),
        (["--inject", "nope@1"], "unknown fault"),
        (
            ["--stream-url", "ws://h:1/v1/stream", "--admin-url", "http://h:2"],
            "--admin-url and --admin-token go together",
        ),
    ],
)
def test_bad_flags_are_config_errors_naming_the_flag(argv, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        options_from_args(_demo_args(*argv))


def test_bad_flag_exits_2_with_a_message(capsys):
    from tickpipe.cli.main import main

    assert main(["demo", "--inject", "boom@1"]) == 2
    assert "tickpipe demo: error: --inject 'boom@1': unknown fault" in capsys.readouterr().err


def test_rest_url_derived_from_stream_url():
    assert rest_url_for("ws://127.0.0.1:8080/v1/stream") == "http://127.0.0.1:8080"
    assert rest_url_for("wss://example.org/v1/stream") == "https://example.org"


# -- pieces ----------------------------------------------------------------------------------


def test_ready_line_parsing():
    line = (
        b'{"event": "ready", "stream_url": "ws://127.0.0.1:5/v1/stream", "rest_url": '
        b'"http://127.0.0.1:5", "admin_url": "http://127.0.0.1:6", "admin_token": "t", "pid": 9}'
    )
    r = parse_ready_line(line, 123)
    assert r is not None
    assert (r.pid, r.stream_url, r.admin_token, r.extra) == (
        123,
        "ws://127.0.0.1:5/v1/stream",
        "t",
        {"pid": 9},
    )
    assert parse_ready_line(b"starting...", 1) is None
    assert parse_ready_line(b'{"event": "log"}', 1) is None
    assert parse_ready_line(b'{"event": "ready"}', 1) is None  # no URLs: not usable


def test_event_and_kill_switch_formatting():
    from tickpipe.client.events import OrdersCancelled, Reconnecting

    line = format_event(Reconnecting(attempt=0, delay_s=0.6123, t=0.0))
    assert line.endswith("reconnecting attempt=0 delay_s=0.61")
    ks = OrdersCancelled(cancelled=["a", "b"], failed=["c"], scope="own", t=0.0)
    assert kill_switch_text(ks).startswith("cancelled 2, failed 1 (own)")
    assert kill_switch_text(None) == "-"


def test_fmt_decimal_keeps_the_instrument_decimals():
    from decimal import Decimal

    assert fmt_decimal(Decimal("2350.1"), 2) == "2350.10"
    assert fmt_decimal(Decimal("1000"), 0) == "1000"
    assert fmt_decimal(Decimal("0.5"), None) == "0.5"


async def test_key_reader_uses_cbreak_delivers_keys_and_restores_the_terminal():
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        with KeyReader(fd=slave) as keys:
            assert keys.interactive
            mode = termios.tcgetattr(slave)
            assert not mode[3] & termios.ICANON and not mode[3] & termios.ECHO
            assert mode[3] & termios.ISIG  # Ctrl-C still signals
            os.write(master, b"dq")
            got = [await asyncio.wait_for(keys.get(), 2), await asyncio.wait_for(keys.get(), 2)]
            assert got == ["d", "q"]
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


async def test_key_reader_does_nothing_without_a_terminal():
    r, w = os.pipe()
    try:
        with KeyReader(fd=r) as keys:
            assert not keys.interactive
    finally:
        os.close(r)
        os.close(w)


# -- the built-in strategy, against a real gateway -------------------------------------------


async def _until(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.mark.slow
@pytest.mark.timeout(30)
async def test_strategy_rests_orders_away_from_the_top_and_the_kill_switch_clears_them(gateway):
    from decimal import Decimal

    from tickpipe import Client
    from tickpipe.cli.demo import fetch_instruments
    from tickpipe.cli.strategy import DemoStrategy, StrategyConfig

    instruments = await fetch_instruments(gateway.rest_url)
    async with Client(gateway.stream_url, gateway.rest_url) as client:
        await client.subscribe(["orderbook:AAPL", "orderbook:EUR-USD"])
        for s in ("AAPL", "EUR-USD"):
            await client.wait_synced(s, timeout=10)
        strategy = DemoStrategy(
            client, ["AAPL", "EUR-USD", "NOT-LISTED"], instruments, StrategyConfig(ticks_away=50)
        )
        assert strategy.symbols == ["AAPL", "EUR-USD"]  # unknown symbols are left out
        await strategy.step()
        assert (strategy.placed, strategy.errors) == (4, 0), strategy.last_error
        orders = await client.open_orders()
        assert len(orders) == 4 and strategy.row().open_orders == 4
        aapl_bid = client.book("AAPL").bids(1)[0][0]
        buys = [Decimal(o.price) for o in orders if o.symbol == "AAPL" and o.side == "buy"]
        assert buys and buys[0] <= aapl_bid - Decimal("0.45")  # ~50 ticks of 0.01 below

        await strategy.step()  # requote: the old pair is cancelled, a new one placed
        assert (strategy.cancelled, strategy.placed) == (4, 8)
        assert len(await client.open_orders()) == 4

        gateway.trigger("disconnect", close_frame=False)  # going blind: the kill switch fires
        await _until(lambda: not client.own_orders, 10, "the kill switch to cancel")
        await _until(
            lambda: client.book("AAPL").usable() and client.book("EUR-USD").usable(),
            10,
            "both books usable again",
        )
        await strategy.step()
        assert strategy.errors == 0, strategy.last_error
        assert strategy.row().open_orders == 4  # forgot the cancelled ones, quoted afresh
        await strategy.stop()
        assert await client.open_orders() == []


# -- fault keys against the real admin API ---------------------------------------------------


async def test_fault_key_requests_are_accepted_by_the_gateway(gateway):
    from tickpipe.cli.dashboard_faults import AdminClient

    async with AdminClient(gateway.admin_url, gateway.admin_token) as admin:
        for action in FAULT_ACTIONS:
            if action.name in ("disconnect", "close", "snapshot_rate_limit"):
                continue  # no connection to cut here; the pty tests cover them
            result = await admin.inject(action, "orderbook:AAPL")
            assert result.startswith(f"injected {action.name}"), result
        pending = gateway.faults_json()["pending"]
        assert pending["frames"]["orderbook:AAPL"] == [
            "drop_delta",
            "bad_checksum",
            "malformed_frame",
            "drop_delta",
            "drop_delta",
        ]
        assert pending["snapshots"] == [
            {"fault": "snapshot_error", "symbol": "AAPL", "count": 2},
            {"fault": "stale_snapshot", "symbol": "AAPL", "count": 1},
        ]


async def test_a_setting_fault_is_put_back_as_it_was(gateway):
    from tickpipe.cli.dashboard_faults import AdminClient, FaultAction, _settings

    gateway.set_faults({"snapshot_rate_limit": 7})
    brief = FaultAction("z", "t", "t", (_settings(snapshot_rate_limit=1),), undo_after_s=0.2)
    async with AdminClient(gateway.admin_url, gateway.admin_token) as admin:
        await admin.inject(brief)
        assert gateway.faults_json()["settings"]["snapshot_rate_limit"] == 1
        await _until(
            lambda: gateway.faults_json()["settings"]["snapshot_rate_limit"] == 7, 5, "undo"
        )
        slow = FaultAction("z", "t", "t", (_settings(snapshot_rate_limit=2),), undo_after_s=60)
        await admin.inject(slow)
        assert gateway.faults_json()["settings"]["snapshot_rate_limit"] == 2
    # leaving restores what is still pending
    assert gateway.faults_json()["settings"]["snapshot_rate_limit"] == 7


async def test_admin_errors_are_one_line_results_not_exceptions(gateway):
    from tickpipe.cli.dashboard_faults import AdminClient

    async with AdminClient(gateway.admin_url, "wrong-token") as admin:
        out = await admin.inject(ACTIONS_BY_KEY["g"], "orderbook:AAPL")
    assert "HTTP 401 bad_admin_token" in out
    async with AdminClient(gateway.admin_url, gateway.admin_token) as admin:
        out = await admin.inject(ACTIONS_BY_KEY["g"], "orderbook:NOPE")
    assert "HTTP 400 invalid_fault" in out and "orderbook:NOPE" in out
    async with AdminClient("http://127.0.0.1:9", "t", timeout_s=2) as admin:
        out = await admin.inject(ACTIONS_BY_KEY["d"])
    assert out.startswith("disconnect: admin API refused: ClientConnectorError")


def test_help_explains_every_flag_and_key(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--stream-url", "--rest-url", "--admin-url", "--admin-token", "--key", "--secret",
        "--seed", "--rate", "--heartbeat-ms", "--faults", "--gateway-arg", "--channels",
        "--no-strategy", "--inject", "--duration", "--refresh",
    ):  # fmt: skip
        assert flag in text, flag
    for a in FAULT_ACTIONS:
        assert re.search(rf"^  {a.key}   {re.escape(a.label)}\s+--inject {a.name}@S$", text, re.M)
    assert "q   quit" in text


def test_admin_token_can_come_from_the_environment_not_argv(monkeypatch):
    """Issue 13: a secret on the command line shows in ps; TICKPIPE_ADMIN_TOKEN keeps it out."""
    monkeypatch.setenv("TICKPIPE_ADMIN_TOKEN", "tok-from-env")
    opts = options_from_args(
        _demo_args("--stream-url", "ws://h:1/v1/stream", "--admin-url", "http://h:2")
    )
    assert opts.admin_token == "tok-from-env"
    monkeypatch.delenv("TICKPIPE_ADMIN_TOKEN")
    with pytest.raises(ConfigError, match="--admin-token go together"):
        options_from_args(
            _demo_args("--stream-url", "ws://h:1/v1/stream", "--admin-url", "http://h:2")
        )
