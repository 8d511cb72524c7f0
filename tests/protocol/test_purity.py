"""The pure core imports nothing that does I/O, reads a clock or draws random numbers."""

from __future__ import annotations

import ast
from pathlib import Path

import tickpipe.protocol as core
import tickpipe.venues as venues

FORBIDDEN = {
    "asyncio",
    "socket",
    "ssl",
    "select",
    "selectors",
    "threading",
    "multiprocessing",
    "subprocess",
    "time",
    "datetime",
    "random",
    "secrets",
    "os",
    "io",
    "pathlib",
    "http",
    "urllib",
    "aiohttp",
    "picows",
    "websockets",
    "uvloop",
    "logging",
    "signal",
    "concurrent",
}


PURE_SUBMODULES = {"urllib.parse"}  # text only (quoting a signed query): no I/O in it


def _top(module: str) -> str:
    """The name a module is judged by: its top package, except a pure submodule of a
    forbidden one, which is judged by itself (allowed)."""
    if module in PURE_SUBMODULES:
        return module
    return module.split(".")[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(_top(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(_top(node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.add("__import__")
    return names


def test_core_modules_exist() -> None:
    files = sorted(Path(core.__file__).parent.glob("*.py"))
    assert {f.stem for f in files} >= {"frames", "book", "sync", "backoff", "instruments"}


def test_core_has_no_io_clock_or_random_imports() -> None:
    """The core, and every venue's modules (codecs, checksums, endpoints, limits)."""
    offenders = {}
    files = [*Path(core.__file__).parent.glob("*.py"), *Path(venues.__file__).parent.rglob("*.py")]
    for f in files:
        bad = _imports(f) & (FORBIDDEN | {"__import__"})
        if bad:
            offenders[f.name] = sorted(bad)
    assert offenders == {}


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import time\nfrom asyncio import sleep\n")
    assert _imports(f) & FORBIDDEN == {"time", "asyncio"}


def test_core_imports_nothing_outside_the_core() -> None:
    """No import circles into the shells: the core and the venue codecs never import the
    client, the gateway or the CLI."""
    offenders = {}
    files = [*Path(core.__file__).parent.glob("*.py"), *Path(venues.__file__).parent.rglob("*.py")]
    for f in files:
        tree = ast.parse(f.read_text(), filename=str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if (
                    parts[0] == "tickpipe"
                    and len(parts) > 1
                    and parts[1]
                    in (
                        "client",
                        "gateway",
                        "cli",
                    )
                ):
                    offenders.setdefault(f.name, []).append(node.module)
    assert offenders == {}
