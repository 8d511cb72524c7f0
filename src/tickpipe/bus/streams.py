"""The JetStream stream the collectors publish to, and the key-value bucket of their leases.

:func:`ensure_stream` makes sure the stream exists: created when missing (file storage, limits
retention, ``discard old``, direct get allowed for consumers fetching a book's last snapshot),
used as it is when it exists, and every setting that differs from what was asked is returned
(the caller logs them; a user's stream is never changed or deleted). A stream that does not
store the bus's subjects cannot be published to: BusError naming it. Defaults (see
:class:`StreamSettings`): 15 minutes or 1 GiB, whichever is reached first, one replica,
duplicate window 120 s (a retried publish with the same ``Nats-Msg-Id`` within it is stored
once).

:func:`ensure_bucket` does the same for the leader bucket (``schema.DEFAULT_LEADER_BUCKET``,
one key per ``--group``, TTL = the lease). An existing bucket's TTL wins over the one asked
(the lease must end when the server drops the key): it is returned and the difference logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import nats.js.errors as jserr
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.kv import KeyValue

from tickpipe.bus.schema import DEFAULT_STREAM, stream_subjects
from tickpipe.errors import BusError, ConfigError

log = logging.getLogger("tickpipe.bus")

_STREAM_NAME_IN_USE = 10058


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What :func:`ensure_stream` creates.

    - ``name`` (``TICKPIPE``): the stream (``--stream``).
    - ``replicas`` (1): copies on as many servers of a cluster (``--replicas``; 3 on a 3-node
      cluster survives losing one node). Each publish is acked once a majority stored it.
    - ``max_age_s`` (900): messages older than this are dropped. A late joiner can rebuild a
      book only from what is left, so it must exceed ``snapshot_every_s`` by far.
    - ``max_bytes`` (1 GiB): the oldest messages are dropped past it (``discard old``).
    - ``duplicate_window_s`` (120): a retry with the same ``Nats-Msg-Id`` within it is stored
      once. Longer than any retry of the collector (``max_retry_s``), so no retry duplicates.
    """

    name: str = DEFAULT_STREAM
    replicas: int = 1
    max_age_s: float = 900.0
    max_bytes: int = 1 << 30
    duplicate_window_s: float = 120.0

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in ". *>/\\\t\r\n"):
            raise ConfigError(f"--stream {self.name!r} is not a valid stream name")
        if isinstance(self.replicas, bool) or not 1 <= self.replicas <= 5:
            raise ConfigError(f"--replicas must be 1..5, got {self.replicas!r}")
        if not 0 < self.max_age_s < float("inf"):
            raise ConfigError(f"max_age_s must be > 0, got {self.max_age_s!r}")
        if self.max_bytes < 1 << 20:
            raise ConfigError(f"max_bytes must be at least 1 MiB, got {self.max_bytes!r}")
        if not 0 < self.duplicate_window_s <= self.max_age_s:
            raise ConfigError(
                f"duplicate_window_s must be > 0 and <= max_age_s, got {self.duplicate_window_s!r}"
            )

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description="tickpipe bus v1: exact books, trades and tickers (docs/bus.md)",
            subjects=stream_subjects(),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            max_age=self.max_age_s,
            max_bytes=self.max_bytes,
            duplicate_window=self.duplicate_window_s,
            discard=DiscardPolicy.OLD,
            allow_direct=True,
        )


def covers(pattern: str, subject: str) -> bool:
    """Does the stream subject ``pattern`` capture every subject ``subject`` matches (both may
    hold ``*`` and ``>``)?"""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s):
            return False
        if tok == "*":
            if s[i] == ">":
                return False
            continue
        if tok != s[i]:
            return False
    return len(p) == len(s)


def differences(have: StreamConfig, want: StreamConfig) -> list[str]:
    """The settings of an existing stream that are not what ``want`` asks, as text."""
    out: list[str] = []
    for name in ("storage", "retention", "num_replicas", "max_bytes", "discard"):
        h, w = getattr(have, name), getattr(want, name)
        if h != w:
            out.append(f"{name} {_text(h)} (asked {_text(w)})")
    for name in ("max_age", "duplicate_window"):
        h, w = getattr(have, name) or 0.0, getattr(want, name) or 0.0
        if abs(float(h) - float(w)) > 1e-3:
            out.append(f"{name} {float(h):g} s (asked {float(w):g} s)")
    if sorted(have.subjects or []) != sorted(want.subjects or []):
        out.append(f"subjects {have.subjects} (asked {want.subjects})")
    return out


def _text(v: object) -> str:
    value = getattr(v, "value", v)
    return str(value)


async def ensure_stream(js: JetStreamContext, settings: StreamSettings) -> list[str]:
    """Create the stream or use the existing one; returns how an existing one differs from
    ``settings`` (empty when it matches or was created). BusError when it cannot be created or
    does not store the bus's subjects."""
    want = settings.config()
    try:
        info = await js.stream_info(settings.name)
    except jserr.NotFoundError:
        try:
            await js.add_stream(want)
            return []
        except jserr.BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:  # else created meanwhile by another
                raise BusError(
                    f"cannot create stream {settings.name}: {exc.description or exc}"
                ) from None
            info = await js.stream_info(settings.name)
        except jserr.APIError as exc:
            raise BusError(
                f"cannot create stream {settings.name}: {exc.description or exc}"
            ) from None
    have = info.config
    missing = [s for s in stream_subjects() if not any(covers(p, s) for p in have.subjects or [])]
    if missing:
        raise BusError(
            f"stream {settings.name} exists but does not store {', '.join(missing)} (its "
            f"subjects: {', '.join(have.subjects or []) or 'none'}); name another with --stream"
        )
    return differences(have, want)


async def ensure_bucket(
    js: JetStreamContext, bucket: str, ttl_s: float, replicas: int
) -> tuple[KeyValue, float]:
    """The leader bucket (created with ``ttl_s`` and ``replicas`` when missing) and its TTL in
    seconds (an existing bucket's own). BusError when it cannot be made or has no TTL."""
    try:
        kv = await js.key_value(bucket)
    except jserr.BucketNotFoundError:
        try:
            kv = await js.create_key_value(bucket=bucket, ttl=ttl_s, history=1, replicas=replicas)
        except jserr.BadRequestError as exc:
            if exc.err_code != _STREAM_NAME_IN_USE:
                raise BusError(
                    f"cannot create key-value bucket {bucket}: {exc.description or exc}"
                ) from None
            kv = await js.key_value(bucket)
        except jserr.APIError as exc:
            raise BusError(
                f"cannot create key-value bucket {bucket}: {exc.description or exc}"
            ) from None
    info = await js.stream_info(f"KV_{bucket}")
    ttl = float(info.config.max_age or 0.0)
    if ttl <= 0:
        raise BusError(
            f"key-value bucket {bucket} keeps keys forever (no TTL): a lease there never "
            "ends; delete it or name another bucket"
        )
    if abs(ttl - ttl_s) > 1e-3:
        log.warning(
            "key-value bucket %s has TTL %g s (asked %g s): leases last %g s", bucket, ttl,
            ttl_s, ttl,
        )  # fmt: skip
    return kv, ttl
