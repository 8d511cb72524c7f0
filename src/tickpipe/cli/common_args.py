"""The arguments ``watch``, ``record`` and ``publish`` share, checked once."""

from __future__ import annotations

import argparse

from tickpipe.client.venue import Venue
from tickpipe.errors import ConfigError
from tickpipe.venues.registry import venue_named


def check_stream_args(args: argparse.Namespace) -> Venue | str:
    """The venue named by ``--venue`` once ``CHANNEL...``, ``--duration`` and
    ``--metrics-port`` are valid for it, else the usage error to print."""
    try:
        venue = venue_named(args.venue)
    except ConfigError as exc:
        return str(exc)
    for ch in args.channels:
        try:
            venue.parse_channel(ch)
        except ValueError as exc:
            return str(exc)
    if args.duration is not None and not 0 < args.duration < float("inf"):
        return f"--duration must be a number of seconds > 0, got {args.duration}"
    port = getattr(args, "metrics_port", None)
    if port is not None and not 0 <= port <= 65535:
        return f"--metrics-port must be 0..65535 (0: any free), got {port}"
    return venue
