"""Channels and fan-out: each data frame is built once, encoded once, and its bytes are queued
to every subscribed connection (VTS/1 section 5: ``seq`` is per channel for the whole gateway).

:class:`Market` ties one instrument's simulator, its truth history and its three channels;
:class:`Hub` owns every channel and applies the frame faults on the way out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from tickpipe.gateway.config import GatewayConfig
from tickpipe.gateway.faults import Faults
from tickpipe.gateway.history import BookHistory
from tickpipe.gateway.markets import MarketSpec
from tickpipe.gateway.simulator import MarketSim, SimTrade, StepResult
from tickpipe.protocol import frames
from tickpipe.protocol.book import OrderBook
from tickpipe.protocol.instruments import Instrument

if TYPE_CHECKING:
    from tickpipe.gateway.dialects.base import MarketSink

KINDS = ("orderbook", "ticker", "trades")


class Subscriber(Protocol):
    """What the hub needs of a connection."""

    id: str

    def enqueue(self, data: bytes) -> None: ...


class Channel:
    """One ``KIND:SYMBOL`` stream: its seq, subscribers and counters."""

    __slots__ = ("held", "kind", "name", "sent", "seq", "subscribers", "symbol")

    def __init__(self, kind: str, symbol: str) -> None:
        self.kind = kind
        self.symbol = symbol
        self.name = f"{kind}:{symbol}"
        self.seq = 0
        self.subscribers: dict[Subscriber, None] = {}  # an ordered set
        self.sent = 0  # frames queued to connections (fan-out counted per connection)
        self.held: bytes | None = None  # a frame held back by reorder_delta


class MarketSource(Protocol):
    """What moves a market's truth book: the simulator (:class:`MarketSim`) or a recording
    (:class:`~tickpipe.gateway.replay_source.ReplayMarketSim`)."""

    book: OrderBook
    last_price: int  # price units of the last trade
    volume: int  # size units traded

    def step(self) -> StepResult: ...


class Market:
    """One instrument: simulator (truth book), history, channels, silence merge buffer.
    ``sim``: the truth book's source (default: a :class:`MarketSim` of ``spec``)."""

    def __init__(
        self, spec: MarketSpec, config: GatewayConfig, sim: MarketSource | None = None
    ) -> None:
        self.instrument: Instrument = spec.instrument
        self.sim: MarketSource = (
            sim if sim is not None else MarketSim(spec, config.seed, depth=config.depth)
        )
        self.history = BookHistory(self.sim.book, config.history_deltas)
        sym = spec.instrument.symbol
        self.book_channel = Channel("orderbook", sym)
        self.ticker_channel = Channel("ticker", sym)
        self.trades_channel = Channel("trades", sym)
        self.pending_bids: dict[int, int] = {}
        self.pending_asks: dict[int, int] = {}
        self.steps = 0


TradeListener = Callable[[str, list[SimTrade]], None]


class Hub:
    """All markets and channels; :meth:`step` advances every market by one delta."""

    def __init__(
        self,
        config: GatewayConfig,
        faults: Faults,
        sims: dict[str, MarketSource] | None = None,
    ) -> None:
        """``sims``: symbol -> the source of that market's book (a replay), else simulated."""
        self.config = config
        self.faults = faults
        given = sims or {}
        self.markets: dict[str, Market] = {
            s.instrument.symbol: Market(s, config, given.get(s.instrument.symbol))
            for s in config.markets
        }
        self.channels: dict[str, Channel] = {}
        for m in self.markets.values():
            for ch in (m.book_channel, m.ticker_channel, m.trades_channel):
                self.channels[ch.name] = ch
        self.trade_listeners: list[TradeListener] = []
        rate = config.rate if config.rate > 0 else 500.0
        self.ticker_every = max(1, round(rate / config.ticker_hz))
        self.generated: dict[str, int] = dict.fromkeys(KINDS, 0)
        # a venue dialect (tickpipe.gateway.dialects) takes the book and trade changes instead
        # of the VTS/1 channels; None = VTS/1
        self.dialect: MarketSink | None = None

    # -- subscriptions --------------------------------------------------------------------
    def subscribe(self, channel: str, sub: Subscriber) -> None:
        self.channels[channel].subscribers[sub] = None

    def unsubscribe(self, channel: str, sub: Subscriber) -> None:
        self.channels[channel].subscribers.pop(sub, None)

    def drop_subscriber(self, sub: Subscriber, channels: set[str]) -> None:
        for name in channels:
            self.channels[name].subscribers.pop(sub, None)

    # -- the market -------------------------------------------------------------------------
    def step(self) -> None:
        """One simulator step of every market, published."""
        silent = self.faults.settings.silence_channel
        for m in self.markets.values():
            res = m.sim.step()
            m.steps += 1
            self._publish_step(m, res, silent)

    def publish(self, symbol: str, res: StepResult) -> None:
        """One step of ``symbol``'s market made elsewhere (a replay: its book already changed
        by ``res``), published as :meth:`step` publishes the simulator's."""
        m = self.markets[symbol]
        m.steps += 1
        self._publish_step(m, res, self.faults.settings.silence_channel)

    def _publish_step(self, m: Market, res: StepResult, silent: tuple[str, ...]) -> None:
        m.history.remember_prior(res.prior_bids, res.prior_asks)
        m.pending_bids.update(res.bids)
        m.pending_asks.update(res.asks)
        if res.trades:
            for listener in self.trade_listeners:
                listener(m.instrument.symbol, res.trades)
        bc = m.book_channel
        if bc.name not in silent and (m.pending_bids or m.pending_asks):
            self._publish_delta(m)
        tc = m.trades_channel
        if res.trades and tc.name not in silent:
            for t in res.trades:
                self._publish_trade(m, t)
        kc = m.ticker_channel
        if m.steps % self.ticker_every == 0 and kc.name not in silent:
            self._publish_ticker(m)

    def _publish_delta(self, m: Market) -> None:
        ch = m.book_channel
        ch.seq += 1
        self.generated["orderbook"] += 1
        m.history.published(ch.seq)
        bids, asks = m.pending_bids, m.pending_asks
        m.pending_bids, m.pending_asks = {}, {}
        if self.dialect is not None:
            self.dialect.on_book(m, ch.seq, bids, asks)
            return
        if not ch.subscribers:
            return
        inst = m.instrument
        fp, fs = inst.format_price, inst.format_size
        payload: dict[str, Any] = {
            "type": "delta",
            "channel": ch.name,
            "seq": ch.seq,
            "ts": time.time_ns(),
            "bids": [[fp(p), fs(s)] for p, s in bids.items()],
            "asks": [[fp(p), fs(s)] for p, s in asks.items()],
            "checksum": m.sim.book.checksum(),
        }
        self._send(ch, payload)

    def _publish_trade(self, m: Market, t: SimTrade) -> None:
        ch = m.trades_channel
        ch.seq += 1
        self.generated["trades"] += 1
        if self.dialect is not None:
            self.dialect.on_trade(m, ch.seq, t)
            return
        if not ch.subscribers:
            return
        inst = m.instrument
        payload: dict[str, Any] = {
            "type": "trade",
            "channel": ch.name,
            "seq": ch.seq,
            "ts": time.time_ns(),
            "id": f"T{ch.seq}",
            "price": inst.format_price(t.price),
            "size": inst.format_size(t.size),
            "side": t.side,
        }
        self._send(ch, payload)

    def _publish_ticker(self, m: Market) -> None:
        ch = m.ticker_channel
        book = m.sim.book
        bb, ba = book.best_bid(), book.best_ask()
        if bb is None or ba is None:
            return
        ch.seq += 1
        self.generated["ticker"] += 1
        if not ch.subscribers:
            return
        inst = m.instrument
        payload: dict[str, Any] = {
            "type": "ticker",
            "channel": ch.name,
            "seq": ch.seq,
            "ts": time.time_ns(),
            "bid": inst.format_price(bb[0]),
            "bid_size": inst.format_size(bb[1]),
            "ask": inst.format_price(ba[0]),
            "ask_size": inst.format_size(ba[1]),
            "last": inst.format_price(m.sim.last_price),
            "volume": inst.format_size(m.sim.volume),
        }
        self._send(ch, payload)

    # -- fan-out with faults -----------------------------------------------------------------
    def _send(self, ch: Channel, payload: dict[str, Any]) -> None:
        data = frames.encode(payload)
        fault = self.faults.frame_fault(ch.kind, ch.name, ch.symbol)
        held, ch.held = ch.held, None
        if fault is not None:
            if fault == "reorder_delta" and held is not None:
                fault = None  # one frame held back at a time
            else:
                self.faults.record(fault, channel=ch.name, seq=ch.seq)
        if fault == "drop_delta":
            data = b""
        elif fault == "duplicate_delta":
            self._fan_out(ch, data)
        elif fault == "reorder_delta":
            ch.held = data
            data = b""
        elif fault == "bad_checksum":
            payload["checksum"] = (int(payload["checksum"]) + 1) & 0xFFFFFFFF
            data = frames.encode(payload)
        elif fault == "malformed_frame":
            data = data[: len(data) // 2]
        if data:
            self._fan_out(ch, data)
        if held is not None:
            self._fan_out(ch, held)

    def _fan_out(self, ch: Channel, data: bytes) -> None:
        for sub in list(ch.subscribers):
            sub.enqueue(data)
        ch.sent += len(ch.subscribers)
