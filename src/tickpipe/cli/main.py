"""``tickpipe`` entry point: dispatches to sub-commands. Each sub-command lives in its own module
with ``register(subparsers)`` that adds its parser and sets ``func(args) -> int``."""

from __future__ import annotations

import argparse
import sys

from tickpipe import __version__, hotpath


def build_parser() -> argparse.ArgumentParser:
    from tickpipe.cli import demo, gateway_cmd, publish_cmd, record_cmd, replay_cmd, watch

    parser = argparse.ArgumentParser(
        prog="tickpipe",
        description="Resilient, low-latency streaming market data over one WebSocket (VTS/1).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"tickpipe {__version__}, hot path: {hotpath.describe()}",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.register(sub)
    watch.register(sub)
    gateway_cmd.register(sub)
    record_cmd.register(sub)
    publish_cmd.register(sub)
    replay_cmd.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
