"""The venue-decode benchmark measures what it says: every venue's frame decodes, through the
client's own adapter, to the book update it was encoded from (not to an error or an empty
answer), and the script runs end to end. No timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import venue_decode as vd  # noqa: E402
from tickpipe.protocol import frames as vts  # noqa: E402
from tickpipe.protocol.normalised import BookDelta  # noqa: E402
from tickpipe.venues.registry import venue_named  # noqa: E402


@pytest.mark.parametrize("name", sorted(vd.ENCODERS))
def test_each_frame_decodes_to_the_update_it_encodes(name: str) -> None:
    decode = venue_named(name).decode
    for i in range(50):
        want = vd._delta("X", i, 4)
        got = decode(vd.ENCODERS[name](i, 4))
        if name == "vts":
            assert isinstance(got, vts.Delta) and got.seq == i + 1
            bids, asks = [tuple(lv) for lv in got.bids], [tuple(lv) for lv in got.asks]
        else:
            assert isinstance(got, BookDelta), got
            bids, asks = [tuple(lv) for lv in got.bids], [tuple(lv) for lv in got.asks]
        assert (bids, asks) == (list(want.bids), list(want.asks))
        assert len(bids) == 2 and len(asks) == 2


def test_the_script_prints_a_row_per_venue(capsys: pytest.CaptureFixture[str]) -> None:
    assert vd.main(["--frames", "200", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for name in vd.ENCODERS:
        assert f"| {name} |" in out
