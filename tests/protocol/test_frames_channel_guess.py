from tickpipe.errors import FrameError
from tickpipe.protocol.frames import _with_channel_guess


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


def test_decode_server_frame_names_the_channel_of_a_truncated_frame() -> None:
    from tickpipe.protocol.frames import decode_server_frame

    data = b'{"type":"delta","channel":"orderbook:BTC-USD","seq":12,"ts":1,"bids":[["1'
    for given in (data, memoryview(data), data.decode()):
        try:
            decode_server_frame(given)
        except FrameError as exc:
            assert exc.channel == "orderbook:BTC-USD"
            assert "not valid JSON" in str(exc)
        else:
            raise AssertionError("a truncated frame must not decode")
