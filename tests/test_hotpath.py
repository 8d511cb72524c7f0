"""Which hot path runs (``tickpipe.hotpath``), and that a missing or stale build is never silent.

The compiled twin (``tickpipe._hot``) is built by ``setup.sh``; every test run on a machine that
ran it must use it (a silent fallback would leave the differential tests skipped and the
benchmarks measuring the wrong code), unless ``TICKPIPE_PURE`` asks for the pure path. The
failure modes are played in subprocesses, each a fresh interpreter: ``TICKPIPE_PURE=1``, a
build that cannot be imported, a build of another ABI; and ``tickpipe --version`` names the
path.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tickpipe import hotpath

SRC = Path(hotpath.__file__).resolve().parent  # src/tickpipe
PURE_WANTED = os.environ.get(hotpath.PURE_ENV, "") not in ("", "0")
TIMEOUT_S = 60

# what a subprocess prints after importing tickpipe: the path, and a level parsed through it
PARSE_A_LEVEL = """
import tickpipe.hotpath as h
from tickpipe.protocol import frames
from tickpipe.protocol.instruments import Instrument
inst = Instrument("XAU-USD", "metal", "0.50", "1")
print(h.describe())
print(h.hot is None, frames.parse_levels([["2412.50", "3"]], inst, "orderbook:XAU-USD", "bids"))
"""

BLOCK_THE_BUILD = """
import sys

class NoCompiledHotPath:
    def find_spec(self, name, path=None, target=None):
        if name == "tickpipe._hot":
            raise ModuleNotFoundError("No module named 'tickpipe._hot' (blocked by the test)")
        return None

sys.meta_path.insert(0, NoCompiledHotPath())
"""

STALE_BUILD = """
import sys, types
stale = types.ModuleType("tickpipe._hot")
stale.ABI = 0
sys.modules["tickpipe._hot"] = stale
"""


def python(code: str, *flags: str, pure: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter of this venv; ``pure``: TICKPIPE_PURE's value (None:
    unset). Default warning filters (no PYTHONWARNINGS from the outside)."""
    env = {k: v for k, v in os.environ.items() if k not in (hotpath.PURE_ENV, "PYTHONWARNINGS")}
    if pure is not None:
        env[hotpath.PURE_ENV] = pure
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_the_compiled_path_is_in_use_here() -> None:
    """Loud, not skipped: a test run without the build would pass on the pure path alone."""
    if PURE_WANTED:
        assert hotpath.hot is None
        assert hotpath.describe().startswith(f"pure Python ({hotpath.PURE_ENV}=")
        return
    assert hotpath.hot is not None, (
        f"the compiled hot path is not in use: {hotpath.describe()}. Run `bash setup.sh` "
        f"(gcc and the Python headers), or set {hotpath.PURE_ENV}=1 to test the pure path only"
    )
    assert hotpath.describe() == "compiled (tickpipe._hot)"
    assert hotpath.hot.ABI == hotpath.EXPECTED_ABI


def modules_binding_the_hot_path() -> set[str]:
    """Every module under src/tickpipe whose source binds ``_hot = hotpath.hot``."""
    found = set()
    for path in SRC.rglob("*.py"):
        if re.search(r"^_hot\s*(:[^=]+)?=\s*hotpath\.hot\b", path.read_text(), re.MULTILINE):
            parts = path.relative_to(SRC.parent).with_suffix("").parts
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_users_are_exactly_the_modules_that_bind_the_hot_path() -> None:
    """``hotpath.pure()`` switches only the modules in USERS: one missing from it would keep
    the compiled path inside pure() (and the differential tests would compare it to itself)."""
    found = modules_binding_the_hot_path()
    assert found, "no module binds _hot = hotpath.hot: the scan is broken"
    assert set(hotpath.USERS) == found
    assert len(hotpath.USERS) == len(set(hotpath.USERS))


def test_pure_switches_every_user_and_restores_it() -> None:
    modules = [importlib.import_module(name) for name in hotpath.USERS]
    assert all(m._hot is hotpath.hot for m in modules)
    with hotpath.pure():
        assert all(m._hot is None for m in modules)
        with hotpath.pure():  # nested: still pure, and the outer block restores
            assert all(m._hot is None for m in modules)
        assert all(m._hot is None for m in modules)
    assert all(m._hot is hotpath.hot for m in modules)
    with pytest.raises(RuntimeError, match="inside"), hotpath.pure():
        raise RuntimeError("inside")
    assert all(m._hot is hotpath.hot for m in modules)


def test_tickpipe_pure_forces_the_pure_path_without_a_warning() -> None:
    done = python("import tickpipe.hotpath as h; print(h.describe())", pure="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"pure Python ({hotpath.PURE_ENV}=1)"
    assert done.stderr == ""
    # and it is the pure path that then runs
    done = python(PARSE_A_LEVEL, "-W", "error", pure="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "True [(241250, 3)]"


@pytest.mark.parametrize("value", ["", "0"])
def test_tickpipe_pure_empty_or_0_is_the_compiled_path(value: str) -> None:
    if hotpath.hot is None:
        pytest.skip(f"compiled hot path not in use: {hotpath.describe()}")
    done = python("import tickpipe.hotpath as h; print(h.describe())", "-W", "error", pure=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "compiled (tickpipe._hot)"


def test_a_missing_build_warns_and_the_pure_path_runs() -> None:
    done = python(BLOCK_THE_BUILD + PARSE_A_LEVEL)
    assert done.returncode == 0, done.stderr
    describe, parsed = done.stdout.splitlines()
    assert describe.startswith("pure Python (the compiled hot path tickpipe._hot is not built")
    assert "blocked by the test" in describe
    assert parsed == "True [(241250, 3)]"
    warning = done.stderr
    assert "RuntimeWarning" in warning
    assert "tickpipe._hot is not built" in warning
    assert "`bash setup.sh`" in warning and f"{hotpath.PURE_ENV}=1" in warning
    assert warning.count("RuntimeWarning") == 1  # once, at import
    # as an error (setup.sh checks the build so): the import itself fails
    done = python(BLOCK_THE_BUILD + "import tickpipe.hotpath", "-W", "error::RuntimeWarning")
    assert done.returncode != 0
    assert "RuntimeWarning: the compiled hot path tickpipe._hot is not built" in done.stderr


def test_a_stale_build_warns_and_is_not_used() -> None:
    done = python(STALE_BUILD + PARSE_A_LEVEL)
    assert done.returncode == 0, done.stderr
    describe, parsed = done.stdout.splitlines()
    assert describe == (
        f"pure Python (tickpipe._hot is a stale build (ABI 0, this tickpipe needs "
        f"{hotpath.EXPECTED_ABI}))"
    )
    assert parsed == "True [(241250, 3)]"
    assert "RuntimeWarning: tickpipe._hot is a stale build" in done.stderr
    assert "`bash setup.sh`" in done.stderr and f"{hotpath.PURE_ENV}=1" in done.stderr


def test_a_missing_build_with_tickpipe_pure_is_silent() -> None:
    """Choosing the pure path is an answer to the warning: the build is not even looked at."""
    done = python(BLOCK_THE_BUILD + STALE_BUILD + PARSE_A_LEVEL, pure="1")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[0] == f"pure Python ({hotpath.PURE_ENV}=1)"


def tickpipe_command() -> Path:
    script = Path(sys.executable).parent / "tickpipe"
    if not script.exists():
        pytest.skip(f"no tickpipe console script beside {sys.executable}")
    return script


@pytest.mark.parametrize("pure", [None, "1"], ids=["default", "TICKPIPE_PURE=1"])
def test_version_names_the_hot_path(pure: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != hotpath.PURE_ENV}
    if pure is not None:
        env[hotpath.PURE_ENV] = pure
    done = subprocess.run(
        [str(tickpipe_command()), "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # the path an interpreter in the same environment reports
    want = python("import tickpipe.hotpath as h; print(h.describe())", pure=pure).stdout.strip()
    if pure is not None:
        assert want == f"pure Python ({hotpath.PURE_ENV}=1)"
    elif not PURE_WANTED:
        assert want == hotpath.describe()  # this process's: compiled (the first test above)
    assert re.fullmatch(r"tickpipe \S+, hot path: (.+)\n", done.stdout)
    assert done.stdout.rstrip("\n").endswith(f", hot path: {want}")
