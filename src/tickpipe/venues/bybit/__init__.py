"""Bybit v5 public market data: venues ``bybit`` (spot, ``/v5/public/spot``) and
``bybit-linear`` (USDT/USDC perpetuals and futures, ``/v5/public/linear``). Pure codec,
endpoints and limits; Bybit defines no book checksum."""
