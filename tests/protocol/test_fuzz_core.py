"""CI-sized run of benchmarks/fuzz_core.py: the same code, 20,000 frames, two seeds, on the
compiled hot path and on the pure-Python reference (``--pure``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tickpipe import hotpath

FUZZ = Path(__file__).resolve().parents[2] / "benchmarks" / "fuzz_core.py"


def load_fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_core", FUZZ)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_core"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
@pytest.mark.parametrize("seed", [11, 12])
def test_fuzz_20k_frames_no_unexpected_error_and_no_corrupt_synced_book(
    seed: int, pure: bool
) -> None:
    if not pure and hotpath.hot is None:
        pytest.skip(f"compiled hot path not in use: {hotpath.describe()}")
    fuzz = load_fuzz()
    report = fuzz.run(frames_max=20_000, seconds=30.0, seed=seed, pure=pure)  # FuzzFailure
    assert report.hot_path == fuzz.path_name(pure)
    assert report.hot_path.startswith("pure Python" if pure else "compiled")
    assert report.frames == 20_000
    # the run exercised what it is meant to exercise
    assert report.frame_errors > 500 and report.level_errors > 20
    assert report.applied > 2_000 and report.synced_checks > 2_000
    assert report.snapshots > 500 and report.duplicates > 100
    assert {"seq_gap", "checksum", "bad_frame", "stale_snapshot"} <= set(report.gaps)


def test_the_fuzzer_catches_a_corrupt_synced_book() -> None:
    """A fuzzer that cannot fail proves nothing: break the book on purpose."""
    fuzz = load_fuzz()
    shell = fuzz.Shell(seed=3)
    for _ in range(2_000):
        shell.step()
        synced = [s for s in shell.syncs.values() if s.synced]
        if synced:
            break
    assert synced, "no book synced in 2,000 steps"
    sync = synced[0]
    best = sync.book.bids.best() or sync.book.asks.best()
    assert best is not None
    (sync.book.bids if sync.book.bids.best() else sync.book.asks).set(best[0], best[1] + 1)
    with pytest.raises(fuzz.FuzzFailure, match="not the true one"):
        shell.check(sync.channel)


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
def test_main_prints_the_figures_and_the_path(
    capsys: pytest.CaptureFixture[str], pure: bool
) -> None:
    fuzz = load_fuzz()
    args = ["--frames", "2000", "--seconds", "10", "--seed", "5"]
    assert fuzz.main(args + ["--pure"] * pure) == 0
    out = capsys.readouterr().out
    assert "frames: 2000" in out and "frames/s" in out
    path = "pure Python (--pure" if pure else hotpath.describe()
    assert out.startswith(f"hot path: {path}") and f"hot_path: {path}" in out


def test_both_paths_fuzz_alike() -> None:
    """The same seed on both paths: the same frames, so the same counts of every outcome (any
    difference between the paths would change some: a book applied or broken differently)."""
    if hotpath.hot is None:
        pytest.skip(f"compiled hot path not in use: {hotpath.describe()}")
    fuzz = load_fuzz()
    compiled = vars(fuzz.run(frames_max=5_000, seconds=30.0, seed=21))
    pure = vars(fuzz.run(frames_max=5_000, seconds=30.0, seed=21, pure=True))
    for report in (compiled, pure):
        del report["hot_path"], report["elapsed_s"]
    assert compiled == pure
