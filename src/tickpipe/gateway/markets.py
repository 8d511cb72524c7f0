"""The instruments the reference gateway lists, with the parameters its simulator uses.

Each :class:`MarketSpec` pairs a core :class:`~tickpipe.protocol.instruments.Instrument` (the
tick/lot grid every price and size is written on) with the simulator's starting mid price and
typical level size. Grids differ on purpose: ``XAU-USD`` quotes in steps of ``0.10`` (two
decimals, ten units a tick), FX sizes come in lots of 1000, BTC in 0.0001.
"""

from __future__ import annotations

from dataclasses import dataclass

from tickpipe.protocol.instruments import Instrument


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One simulated market.

    - ``instrument``: symbol, asset class, tick and lot size (as ``GET /v1/instruments`` lists).
    - ``start_mid``: the starting mid price, a decimal string on the tick grid.
    - ``typical_lots``: a typical resting level size, in lots (levels draw 1..3x this).
    """

    instrument: Instrument
    start_mid: str
    typical_lots: int


def _spec(symbol: str, asset: str, tick: str, lot: str, mid: str, lots: int) -> MarketSpec:
    return MarketSpec(Instrument(symbol, asset, tick, lot), mid, lots)


DEFAULT_MARKETS: tuple[MarketSpec, ...] = (
    _spec("BTC-USD", "crypto", "0.01", "0.0001", "65000.00", 2_000),
    _spec("ETH-USD", "crypto", "0.01", "0.001", "3400.00", 1_500),
    _spec("SOL-USD", "crypto", "0.001", "0.01", "150.000", 800),
    _spec("AAPL", "equity", "0.01", "1", "189.00", 300),
    _spec("MSFT", "equity", "0.01", "1", "415.00", 200),
    _spec("NVDA", "equity", "0.01", "1", "880.00", 150),
    _spec("XAU-USD", "metal", "0.10", "0.01", "2350.00", 500),
    _spec("XAG-USD", "metal", "0.005", "1", "28.000", 400),
    _spec("EUR-USD", "fx", "0.00001", "1000", "1.08500", 1_000),
    _spec("GBP-USD", "fx", "0.00001", "1000", "1.27000", 800),
    _spec("USD-JPY", "fx", "0.001", "1000", "151.500", 900),
)
