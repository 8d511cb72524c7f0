from tickpipe.client.channels import _with_channel_guess
from tickpipe.errors import FrameError


def test_channel_guessed_from_truncated_frame() -> None:
    data = b'{"type":"delta","channel":"orderbook:BTC-USD","seq":12,"ts":1,"bids":[["1'
    exc = _with_channel_guess(FrameError("frame is not valid JSON"), data)
    assert exc.channel == "orderbook:BTC-USD"
    assert "not valid JSON" in str(exc)


def test_no_guess_without_a_channel() -> None:
    exc = FrameError("frame is not valid JSON")
    assert _with_channel_guess(exc, b"\x00\xff garbage") is exc
    hostile = b'{"channel":"' + b"x" * 500 + b'"'
    assert _with_channel_guess(exc, hostile).channel is None
