"""tickpipe: resilient, low-latency streaming market data over one multiplexed WebSocket."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
