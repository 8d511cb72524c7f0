"""Connecting to NATS: ``--nats URL[,URL...]`` checked, and a connection made within a bound.

:func:`parse_servers` turns the flag's text into a list of server URLs or raises
:class:`~tickpipe.errors.ConfigError` naming the bad one (scheme ``nats://`` or ``tls://``, a
host, a port 1..65535 when given, no path). :func:`connect_nats` connects to any of them within
``timeout_s`` (default :data:`CONNECT_TIMEOUT_S`, 5 s; each attempt ``attempt_timeout_s``,
2 s) or raises :class:`~tickpipe.errors.BusError` naming the URLs and the last error: it never
hangs. Once connected, nats-py reconnects by itself, forever (every
``reconnect_wait_s``, 0.5 s, a server; while it does, up to nats-py's 2 MiB of publishes are
buffered, then a publish fails and is retried by its caller). Passwords in a URL are never
printed (:func:`redact`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from nats.aio.client import Client as NATS

from tickpipe.errors import BusError, ConfigError

log = logging.getLogger("tickpipe.bus")

NATS_SCHEMES = ("nats", "tls")
CONNECT_TIMEOUT_S = 5.0
ATTEMPT_TIMEOUT_S = 2.0
RECONNECT_WAIT_S = 0.5

Callback = Callable[[], Awaitable[None]]


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_servers(text: str | Sequence[str], flag: str = "--nats") -> list[str]:
    """The server URLs of ``--nats nats://h1:4222,nats://h2:4222`` (or a list); ConfigError
    naming ``flag`` and the bad URL otherwise."""
    items = text.split(",") if isinstance(text, str) else list(text)
    servers = [s.strip() for s in items if s.strip()]
    if not servers:
        raise ConfigError(f"{flag} needs at least one URL such as nats://127.0.0.1:4222")
    for url in servers:
        what = f"{flag} {redact(url)!r}"
        try:
            parts = urlsplit(url)
            port = parts.port  # ValueError when not a number in 0..65535
        except ValueError as exc:
            raise ConfigError(f"{what} is not a URL: {exc}") from None
        if parts.scheme not in NATS_SCHEMES:
            raise ConfigError(
                f"{what}: the scheme must be nats:// or tls:// (e.g. nats://127.0.0.1:4222)"
            )
        if not parts.hostname:
            raise ConfigError(f"{what} names no host (e.g. nats://127.0.0.1:4222)")
        if port == 0:
            raise ConfigError(f"{what}: the port must be 1..65535")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"{what}: a NATS URL has no path, query or fragment")
    return servers


async def connect_nats(
    servers: Sequence[str],
    *,
    name: str = "tickpipe",
    timeout_s: float = CONNECT_TIMEOUT_S,
    attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
    reconnect_wait_s: float = RECONNECT_WAIT_S,
    on_disconnected: Callback | None = None,
    on_reconnected: Callback | None = None,
) -> NATS:
    """A connected nats-py client (it reconnects by itself afterwards); BusError naming the
    servers and the last error when none answered within ``timeout_s``."""
    nc = NATS()
    errors: list[BaseException] = []
    connected = False

    async def error_cb(exc: Exception) -> None:
        errors.append(exc)
        del errors[:-1]
        if connected:
            log.debug("nats: %s", exc)

    async def disconnected_cb() -> None:
        if connected and on_disconnected is not None:
            await on_disconnected()

    async def reconnected_cb() -> None:
        if on_reconnected is not None:
            await on_reconnected()

    where = ", ".join(redact(s) for s in servers)
    try:
        await asyncio.wait_for(
            nc.connect(
                servers=list(servers),
                name=name,
                connect_timeout=max(0.1, min(attempt_timeout_s, timeout_s)),  # type: ignore[arg-type]
                reconnect_time_wait=reconnect_wait_s,  # type: ignore[arg-type]
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=error_cb,
                disconnected_cb=disconnected_cb,
                reconnected_cb=reconnected_cb,
            ),
            timeout_s,
        )
    except (TimeoutError, Exception) as exc:
        with contextlib.suppress(Exception):
            await nc.close()
        last = errors[-1] if errors else exc
        why = str(last) or type(last).__name__
        raise BusError(f"cannot connect to NATS at {where} within {timeout_s:g} s: {why}") from None
    connected = True
    return nc
