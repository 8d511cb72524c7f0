import json

import pytest

from tickpipe.client import events as ev


def test_every_event_has_a_unique_name_and_jsonable_dict() -> None:
    names = [t.name for t in ev.EVENT_TYPES]
    assert len(names) == len(set(names))
    assert "event" not in names


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        (ev.Connected(url="ws://x/v1/stream"), {"url"}),
        (ev.SubscribedEvent(channels=["orderbook:AAPL"]), {"channels"}),
        (ev.SubscribeError(channel="orderbook:NOPE", code="unknown_channel"), {"channel", "code"}),
        (ev.SyncedEvent(channel="orderbook:AAPL", seq=5), {"channel", "seq"}),
        (
            ev.GapEvent(channel="orderbook:AAPL", reason="seq_gap", expected=5, got=7),
            {"channel", "reason", "expected", "got"},
        ),
        (ev.Stale(channel="ticker:BTC-USD", reason="heartbeat"), {"channel", "reason"}),
        (ev.Disconnected(reason="heartbeat"), {"reason"}),
        (ev.Reconnecting(attempt=1, delay_s=0.4), {"attempt", "delay_s"}),
        (ev.OrdersCancelled(cancelled=["a"], failed=["b"]), {"cancelled", "failed"}),
        (ev.AuthFailed(message="bad key"), {"message"}),
        (ev.BadFrame(channel=None, error="not JSON"), {"channel", "error"}),
    ],
)
def test_contract_fields(event: ev.ClientEvent, fields: set[str]) -> None:
    d = event.to_dict()
    assert d["event"] == event.name
    assert isinstance(d["t"], float)
    assert fields <= set(d)
    assert json.loads(json.dumps(d)) == d


def test_events_are_frozen() -> None:
    e = ev.SyncedEvent(channel="orderbook:AAPL", seq=1)
    with pytest.raises(AttributeError):
        e.seq = 2  # type: ignore[misc]
