"""`tickpipe demo`: being built (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("demo", help="(not built yet)")
    p.set_defaults(func=lambda args: 2)
