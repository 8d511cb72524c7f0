"""``tickpipe demo --dialect NAME``: the embedded gateway serves a venue's wire format and the
dashboard's client reads it as that venue, in a pseudo-terminal as a person sees it.

Per dialect: every default book (under the venue's symbols) goes LIVE, a fault key the dialect
has makes one book gap and re-seed, a key it does not have is refused on screen (the process
goes on), the strategy is off because the venue has no orders, ``q`` quits with exit 0 and the
gateway is gone. An unknown dialect exits 2 naming the choices.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from collections.abc import Callable

import pytest

from tests.cli.test_demo import PYTHON, ROOT, DemoTerminal, book_line, gateway_pid, pid_gone
from tickpipe.cli.demo import DEFAULT_BOOKS, DemoOptions, default_channels, options_from_args
from tickpipe.cli.main import build_parser
from tickpipe.gateway.dialects import DIALECTS


def _books(dialect: str) -> list[str]:
    return [c.partition(":")[2] for c in default_channels(dialect) if c.startswith("orderbook:")]


def _all_live(symbols: list[str]) -> Callable[[str], bool]:
    return lambda s: all("LIVE" in book_line(s, sym) for sym in symbols)


def _gaps_resyncs(screen: str) -> tuple[int, int]:
    m = re.search(r"gaps/resyncs\s+(\d+) / (\d+)", screen)
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


# dialect -> (a fault key it has, the gap reason it shows, a key it has not, the refusal)
CASES = {
    "binance": ("g", "seq_gap", "x", "bad_checksum does not apply to the binance dialect"),
    "okx": ("g", "seq_gap", "p", "stop_pings does not apply to the okx dialect"),
    "kraken": ("x", "checksum", "e", "snapshot_error does not apply to the kraken dialect"),
}


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("dialect", list(CASES))
def test_dialect_books_go_live_a_fault_key_reseeds_an_unsupported_one_is_refused(
    dialect: str,
) -> None:
    key, reason, bad_key, refusal = CASES[dialect]
    books = _books(dialect)
    assert books[0] != DEFAULT_BOOKS[0] or dialect == "coinbase"  # the venue's own symbols
    term = DemoTerminal("--dialect", dialect, "--duration", "90", "--refresh", "8")
    try:
        screen = term.wait_for(_all_live(books), f"every {dialect} book LIVE", timeout_s=40)
        assert f"dialect {dialect}" in screen
        pid = gateway_pid(screen)
        assert re.search(r"strategy\s+off: .* has no orders", screen), screen
        assert "Traceback" not in screen and "last None" not in screen
        assert _gaps_resyncs(screen) == (0, 0), screen

        term.child.send(key)  # aimed at the first book
        screen = term.wait_for(
            lambda s: f"gap reason={reason} orderbook:{books[0]}" in s,
            f"a {reason} gap on {books[0]} in the events pane",
            timeout_s=20,
        )
        screen = term.wait_for(
            lambda s: _gaps_resyncs(s)[1] >= 1 and _all_live(books)(s),
            "the book re-seeded and every book LIVE again",
            timeout_s=30,
        )
        assert re.search(r"reconnects 0\b", screen), screen  # only that book re-seeded

        term.child.send(bad_key)
        screen = term.wait_for(lambda s: refusal in s, f"the refusal {refusal!r}", timeout_s=15)
        assert _all_live(books)(screen)

        term.child.send("q")
        assert term.wait_exit(20) == 0
        out = term.plain_output()
        assert "stopped (q pressed)" in out and "Traceback" not in out
        assert pid_gone(pid), f"gateway pid {pid} still running"
    finally:
        term.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_okx_snapshot_rate_limit_key_is_refused_not_pretended() -> None:
    books = _books("okx")
    term = DemoTerminal("--dialect", "okx", "--duration", "60", "--no-strategy")
    try:
        term.wait_for(_all_live(books), "every okx book LIVE", timeout_s=40)
        term.child.send("r")
        screen = term.wait_for(
            lambda s: "snapshot_rate_limit does not apply to the okx dialect" in s,
            "the r key refused on okx",
            timeout_s=10,
        )
        assert "reconnects 0" in screen  # nothing was injected
        term.child.send("q")
        assert term.wait_exit(20) == 0
    finally:
        term.close()


def test_unknown_dialect_exits_2_naming_the_choices() -> None:
    res = subprocess.run(
        [PYTHON, "-m", "tickpipe", "demo", "--dialect", "nasdaq", "--duration", "5"],
        cwd=str(ROOT), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "--dialect" in res.stderr and "'nasdaq'" in res.stderr
    for name in DIALECTS:
        assert f"'{name}'" in res.stderr
    assert "Traceback" not in res.stderr


def test_help_names_the_dialect_flag_and_its_choices() -> None:
    out = subprocess.run(
        [PYTHON, "-m", "tickpipe", "demo", "--help"],
        cwd=str(ROOT), capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "--dialect NAME" in out and "tickpipe demo --dialect binance" in out
    assert ", ".join(DIALECTS) in re.sub(r"-\s+", "-", " ".join(out.split()))  # argparse wraps


def _opts(*argv: str) -> DemoOptions:
    args: argparse.Namespace = build_parser().parse_args(["demo", *argv])
    return options_from_args(args)


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "vts"])
def test_options_rename_the_default_channels_and_turn_the_strategy_off(dialect: str) -> None:
    opts = _opts("--dialect", dialect)
    names = {"binance": "BTCUSDT", "binance-usdm": "BTCUSDT", "bybit": "BTCUSDT"}
    names |= {"okx": "BTC-USDT", "kraken": "BTC/USD", "coinbase": "BTC-USD"}
    assert opts.channels[0] == f"orderbook:{names[dialect]}"
    assert len(opts.channels) == 12
    assert f"--dialect={dialect}" in opts.gateway_args
    assert opts.strategy is False
    assert "has no orders" in opts.strategy_off


def test_options_keep_the_users_channels_in_the_venues_style() -> None:
    opts = _opts("--dialect", "kraken", "--channels", "orderbook:ETH/USD", "ticker:BTC/USD")
    assert opts.channels == ["orderbook:ETH/USD", "ticker:BTC/USD"]
    vts = _opts()
    assert vts.strategy is True and "--dialect=vts" not in " ".join(vts.gateway_args)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_coinbase_gap_key_says_every_book_reseeds_as_the_venue_works() -> None:
    books = _books("coinbase")
    term = DemoTerminal("--dialect", "coinbase", "--duration", "60")
    try:
        term.wait_for(_all_live(books), "every coinbase book LIVE", timeout_s=40)
        term.child.send("g")
        term.wait_for(
            lambda s: "one sequence per connection, so every book re-seeds" in s,
            "the notice naming the connection-wide re-seed",
            timeout_s=15,
        )
        screen = term.wait_for(
            lambda s: _gaps_resyncs(s)[1] >= len(books) and _all_live(books)(s),
            "every book re-seeded and LIVE",
            timeout_s=30,
        )
        assert "reconnects 0" in screen, screen
        term.child.send("q")
        assert term.wait_exit(20) == 0
    finally:
        term.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_stream_url_with_a_dialect_reads_another_gateway_as_that_venue() -> None:
    from tickpipe.gateway.testing import GatewayProcess

    gp = GatewayProcess("--dialect", "binance", "--rate", "10").start()
    try:
        books = _books("binance")
        term = DemoTerminal(
            "--dialect", "binance", "--stream-url", gp.stream_url, "--duration", "40"
        )
        try:
            screen = term.wait_for(_all_live(books), "every binance book LIVE", timeout_s=40)
            assert "embedded gateway" not in screen and gp.stream_url in screen
            term.child.send("q")
            assert term.wait_exit(20) == 0
        finally:
            term.close()
    finally:
        gp.stop()
