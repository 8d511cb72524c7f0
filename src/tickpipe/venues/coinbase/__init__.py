"""Coinbase Advanced Trade market data (``wss://advanced-trade-ws.coinbase.com``): pure codec,
endpoints and limits. ``legacy`` decodes the Exchange feed's ``level2`` frames of the recorded
sessions (tests/fixtures)."""
