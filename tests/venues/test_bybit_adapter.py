"""The Bybit adapters (``venues/bybit/adapter.py``) with no socket: request splitting and the
answers mapped back to the shell's request ids, control values, merged linear tickers, the
sync rules and the REST targets."""

from __future__ import annotations

import json

from tickpipe.protocol.normalised import BookSnapshot, Continuity, Seeding, TickerEvent
from tickpipe.venues.base import Ack, Pong, Refused
from tickpipe.venues.bybit.adapter import BybitLinearVenue, BybitVenue
from tickpipe.venues.registry import venue_named


def test_registry_names_and_urls() -> None:
    spot, linear = venue_named("bybit"), venue_named("bybit-linear")
    assert isinstance(spot, BybitVenue) and isinstance(linear, BybitLinearVenue)
    assert (spot.stream_base_url, spot.stream_path) == ("wss://stream.bybit.com", "/v5/public/spot")
    assert linear.stream_path == "/v5/public/linear"
    assert spot.instruments_target() == "/v5/market/instruments-info?category=spot"
    assert linear.instruments_target().endswith("category=linear&limit=1000")
    assert spot.client_ping == b'{"op":"ping"}' and spot.heartbeat_ms == 12_000  # 30 s / 2.5


def test_sync_rules_seq_in_band_200_levels_no_checksum() -> None:
    rules = BybitVenue().sync_rules("BTCUSDT")
    assert rules.continuity is Continuity.SEQ and rules.seeding is Seeding.IN_BAND
    assert rules.depth == 200 and rules.checksum is None


def test_a_spot_request_of_12_is_split_and_acked_per_topic() -> None:
    v = BybitVenue()
    chans = [f"ticker:S{i}USDT" for i in range(12)]
    frames = v.subscribe_frame(chans, 7)
    assert isinstance(frames, list) and len(frames) == 2
    bodies = [json.loads(f) for f in frames]
    assert [b["req_id"] for b in bodies] == ["7-0", "7-1"]
    assert [len(b["args"]) for b in bodies] == [10, 2]
    ack = v.decode(b'{"success":true,"ret_msg":"","conn_id":"c","req_id":"7-1","op":"subscribe"}')
    assert ack == [Ack(7, "ticker:S10USDT"), Ack(7, "ticker:S11USDT")]
    err = v.decode(
        b'{"success":false,"ret_msg":"error:handler not found,topic:x","conn_id":"c",'
        b'"req_id":"7-0","op":"subscribe"}'
    )
    assert isinstance(err, Refused) and err.id == 7 and "handler not found" in err.message
    # linear has no per-request cap: one frame, answered as a whole
    lin = BybitLinearVenue()
    assert isinstance(lin.subscribe_frame(chans, 8), bytes)
    whole = b'{"success":true,"ret_msg":"","conn_id":"c","req_id":"8","op":"subscribe"}'
    assert lin.decode(whole) == Ack(8)


def test_pongs_and_a_u1_delta_is_a_reset_snapshot() -> None:
    v = BybitVenue()
    assert v.decode(b'{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}') == Pong()
    frame = (
        b'{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT",'
        b'"b":[["1.0","2"]],"a":[],"u":1,"seq":5}}'
    )
    snap = v.decode(frame)
    assert isinstance(snap, BookSnapshot) and snap.last_id == 1


def test_linear_ticker_deltas_are_merged_onto_the_last_ticker() -> None:
    v = BybitLinearVenue()
    first = v.decode(
        b'{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{"symbol":"BTCUSDT",'
        b'"bid1Price":"10","bid1Size":"1","ask1Price":"11","ask1Size":"2","lastPrice":"10.5"}}'
    )
    assert isinstance(first, TickerEvent) and first.bid == "10"
    later = v.decode(
        b'{"topic":"tickers.BTCUSDT","type":"delta","ts":2,"data":{"symbol":"BTCUSDT",'
        b'"ask1Price":"10.9"}}'
    )
    assert isinstance(later, TickerEvent)
    assert (later.bid, later.bid_size, later.ask, later.ask_size, later.last) == (
        "10", "1", "10.9", "2", "10.5"
    )  # fmt: skip
