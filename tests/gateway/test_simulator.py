"""The simulated market: realistic shape, never crossed, on the grid, deterministic by seed;
and the truth history it keeps."""

from __future__ import annotations

import random

import pytest

from tests.conftest import gateway_config
from tickpipe.gateway import Gateway
from tickpipe.gateway.history import BookHistory, SeqUnknown
from tickpipe.gateway.markets import DEFAULT_MARKETS, MarketSpec
from tickpipe.gateway.simulator import MarketSim
from tickpipe.protocol.book import OrderBook


def test_markets_span_asset_classes_and_grids() -> None:
    assert len(DEFAULT_MARKETS) >= 8
    symbols = {m.instrument.symbol for m in DEFAULT_MARKETS}
    assert {"BTC-USD", "ETH-USD", "AAPL", "MSFT", "NVDA", "XAU-USD", "EUR-USD"} <= symbols
    assert {m.instrument.asset_class for m in DEFAULT_MARKETS} == {
        "crypto",
        "equity",
        "metal",
        "fx",
    }


@pytest.mark.parametrize("spec", DEFAULT_MARKETS, ids=lambda m: m.instrument.symbol)
def test_book_stays_deep_uncrossed_and_on_grid(spec: MarketSpec) -> None:
    sim = MarketSim(spec, seed=3)
    inst = spec.instrument
    mirror = OrderBook(inst)
    mirror.load(*sim.book.to_lists())
    kinds = {"trades": 0, "multi_level_walks": 0}
    for _ in range(2000):
        res = sim.step()
        assert not sim.book.is_crossed()
        for levels in (res.bids, res.asks):
            for p, s in levels.items():
                assert p > 0 and p % inst.tick_units == 0 and s % inst.lot_units == 0 and s >= 0
        mirror.apply(res.bids.items(), res.asks.items())
        assert len(res.trades) == 0 or all(t.size > 0 for t in res.trades)
        kinds["trades"] += bool(res.trades)
        kinds["multi_level_walks"] += len({t.price for t in res.trades}) > 1
    assert mirror == sim.book  # the deltas describe every change
    assert 250 <= len(sim.book.bids) <= 330 and 250 <= len(sim.book.asks) <= 330
    assert kinds["trades"] > 100 and kinds["multi_level_walks"] > 5


def test_same_seed_same_market_other_seed_other_market() -> None:
    spec = DEFAULT_MARKETS[0]
    a, b, c = MarketSim(spec, 7), MarketSim(spec, 7), MarketSim(spec, 8)
    ra = [a.step() for _ in range(500)]
    rb = [b.step() for _ in range(500)]
    for _ in range(500):
        c.step()
    assert [(r.bids, r.asks, r.trades) for r in ra] == [(r.bids, r.asks, r.trades) for r in rb]
    assert a.book == b.book
    assert a.book != c.book


def test_gateways_with_one_seed_publish_the_same_books() -> None:
    g1, g2 = Gateway(gateway_config(seed=42)), Gateway(gateway_config(seed=42))
    g1.step_market(300)
    g2.step_market(300)
    for sym in ("AAPL", "EUR-USD", "XAU-USD"):
        seq = g1.seq(f"orderbook:{sym}")
        assert seq == g2.seq(f"orderbook:{sym}") and seq > 250
        assert g1.true_book(sym, seq - 17) == g2.true_book(sym, seq - 17)


def test_history_rebuilds_any_recent_seq() -> None:
    sim = MarketSim(DEFAULT_MARKETS[3], seed=5)
    hist = BookHistory(sim.book, max_deltas=200)
    copies: dict[int, OrderBook] = {}
    for seq in range(1, 401):
        res = sim.step()
        hist.remember_prior(res.prior_bids, res.prior_asks)
        hist.published(seq)
        if seq % 7 == 0:
            snap = OrderBook(sim.book.instrument)
            snap.load(*sim.book.to_lists())
            copies[seq] = snap
    for seq, snap in copies.items():
        if seq >= hist.oldest_seq:
            assert hist.book_at(seq) == snap
    with pytest.raises(SeqUnknown) as old:
        hist.book_at(hist.oldest_seq - 1)
    assert old.value.too_old
    with pytest.raises(SeqUnknown) as future:
        hist.book_at(401)
    assert not future.value.too_old


def test_history_undoes_unpublished_changes() -> None:
    """While a channel is silenced its changes are pending: the truth stays at the last seq."""
    sim = MarketSim(DEFAULT_MARKETS[4], seed=9)
    hist = BookHistory(sim.book)
    res = sim.step()
    hist.remember_prior(res.prior_bids, res.prior_asks)
    hist.published(1)
    at1 = hist.book_at(1)
    rng = random.Random(1)
    for _ in range(rng.randint(5, 20)):
        res = sim.step()
        hist.remember_prior(res.prior_bids, res.prior_asks)
    assert hist.book_at(1) == at1 and hist.book_at() == at1
    hist.published(2)
    assert hist.book_at(2) == sim.book and hist.book_at(1) == at1
