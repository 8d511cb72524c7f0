"""Kraken spot, WebSocket v2 (``wss://ws.kraken.com/v2``): pure codec, checksum, endpoints and
limits. ``v1`` decodes the v1 ``book`` frames of the recorded sessions (tests/fixtures)."""
