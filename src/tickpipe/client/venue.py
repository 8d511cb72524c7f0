"""The client's venue: which adapter, and the URLs the user's base URLs make with it.

The shell is generic: everything venue-specific is behind ``tickpipe.venues.base.Venue``
(pure adapters in ``tickpipe/venues/<name>/adapter.py``, looked up by name in
``tickpipe.venues.registry``). This module only resolves a name to an adapter and joins URLs.

URLs: for a venue with a documented stream path (Binance ``/ws``), ``stream_url`` and
``rest_url`` replace only the scheme, host and port of the venue's documented base URLs
(``wss://stream.binance.com:9443``, ``https://api.binance.com``); the documented paths are
appended unchanged. A URL with a path of its own is refused (ConfigError naming it), so a
copied full URL is not silently cut. VTS/1 (no documented path) uses its stream URL whole.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tickpipe.errors import ConfigError
from tickpipe.venues.base import Venue, WeightBudget
from tickpipe.venues.registry import VENUES, venue_named

__all__ = [
    "VENUES",
    "Venue",
    "base_url",
    "client_ping",
    "exact_depth",
    "max_connection_age",
    "max_streams_per_connection",
    "resolve_venue",
    "resubscribe_budget",
    "weight_budget",
]

DEFAULT_RESUBSCRIBES_PER_S = 1.0
DEFAULT_RESUBSCRIBE_BURST = 10


def client_ping(venue: Venue) -> tuple[bytes, float] | None:
    """(text frame, interval in s) for a venue whose client pings (optional attributes
    ``client_ping`` and ``client_ping_interval_s``); None when the venue pings itself."""
    frame = getattr(venue, "client_ping", None)
    interval = getattr(venue, "client_ping_interval_s", None)
    if not isinstance(frame, bytes) or not isinstance(interval, int | float) or interval <= 0:
        return None
    return frame, float(interval)


def resubscribe_budget(venue: Venue) -> tuple[float, int]:
    """The token bucket (rate a second, burst) over re-seeds by re-subscribing one channel
    (in-band seeding), from the venue's optional ``resubscribes_per_s`` and
    ``resubscribe_burst`` (default 1/s, 10)."""
    rate = getattr(venue, "resubscribes_per_s", DEFAULT_RESUBSCRIBES_PER_S)
    burst = getattr(venue, "resubscribe_burst", DEFAULT_RESUBSCRIBE_BURST)
    if not isinstance(rate, int | float) or rate <= 0:
        rate = DEFAULT_RESUBSCRIBES_PER_S
    if not isinstance(burst, int) or burst < 1:
        burst = DEFAULT_RESUBSCRIBE_BURST
    return float(rate), burst


def weight_budget(venue: Venue, depth: int | None) -> WeightBudget | None:
    """The venue's request-weight window for ``depth``-level snapshots (its optional
    ``weight_budget(depth)``), or None: then the scheduler's token bucket from
    ``snapshot_budget`` is the only budget. ConfigError when the stated budget cannot pay for
    one snapshot a window after its reserve (or a depth the venue does not serve)."""
    method = getattr(venue, "weight_budget", None)
    if method is None:
        return None
    budget = method(depth)
    if not isinstance(budget, WeightBudget):
        return None
    spendable = budget.weight_per_window - budget.reserve_weight
    if not (budget.window_s > 0 and budget.snapshot_weight >= 1 and budget.snapshot_levels >= 1):
        raise ConfigError(f"venue weight budget is not usable: {budget!r}")
    if budget.snapshot_weight > spendable:
        raise ConfigError(
            f"a {budget.snapshot_levels}-level snapshot costs weight {budget.snapshot_weight}, "
            f"over the {spendable} a {budget.window_s:g} s window leaves after its reserve"
        )
    return budget


def max_connection_age(venue: Venue) -> float | None:
    """Seconds after which the venue closes every connection (optional attribute
    ``max_connection_age_s``: Binance 86,400); None (the default) when it keeps them open.
    The supervisor rotates to a new connection before that age."""
    age = getattr(venue, "max_connection_age_s", None)
    if isinstance(age, bool) or not isinstance(age, int | float) or not age > 0:
        return None
    return float(age) if age != float("inf") else None


def max_streams_per_connection(venue: Venue) -> int | None:
    """Channels one connection may carry (optional attribute ``max_streams_per_connection``:
    Binance spot and USD-M 1024); None (the default) when the venue states no limit. Past it
    the client opens another connection (a shard) for the next channels; every channel the
    client subscribes counts as one stream."""
    n = getattr(venue, "max_streams_per_connection", None)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        return None
    return n


def resolve_venue(venue: str | Venue) -> Venue:
    """A venue name (``"vts"``, ``"binance"``) or an adapter object."""
    if isinstance(venue, str):
        return venue_named(venue)
    return venue


def base_url(name: str, url: str | None, default: str, schemes: tuple[str, ...]) -> str:
    """``scheme://host[:port]`` from ``url`` (``default`` when None); ConfigError when ``url``
    is not such a base URL (a path other than ``/``, a query or a fragment)."""
    if url is None:
        url = default
    if not isinstance(url, str):
        raise ConfigError(f"{name} must be a string URL, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name} must be a {'/'.join(schemes)} URL with a host, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"{name} {url!r}: give only scheme, host and port; the venue's documented paths "
            "are appended"
        )
    return f"{parts.scheme}://{parts.netloc}"


def exact_depth(budget: WeightBudget | None, snapshot_depth: int | None) -> int | None:
    """Levels a side that a seeding snapshot carries (``BookView.exact_depth``): the weight
    budget's depth where the venue has one (Binance: 1000 unless ``snapshot_depth`` says
    fewer), else the configured ``snapshot_depth`` (None: the whole book)."""
    return budget.snapshot_levels if budget is not None else snapshot_depth
