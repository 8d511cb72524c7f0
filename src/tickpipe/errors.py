"""tickpipe's exceptions: one root, one tree.

    TickpipeError                     root of everything tickpipe raises on purpose
    ├── ConfigError (ValueError)      a user setting or argument is invalid (names the setting)
    │   └── UnsupportedError          the venue does not offer this (orders on a market-data
    │                                 venue): names the venue and the call
    ├── ProtocolError                 the peer broke VTS/1
    │   └── FrameError                one frame could not be decoded or validated;
    │                                 .channel and .field name what was wrong
    ├── IllegalTransition             a pure state machine was fed an input its state forbids;
    │                                 names the state and the input (a bug in the caller)
    ├── StreamError                   the stream connection failed or was lost
    │   ├── AuthError                 the gateway refused our credentials (close 4001): fatal,
    │   │                             never retried in a loop
    │   ├── ClientClosedError         the client was closed: every call on it raises this at
    │   │                             once ("client is closed"); nothing is sent any more
    │   ├── BlindError                an order was refused because the stream is down (the
    │   │                             client is blind: VTS/1 section 8) and no kill switch
    │   │                             could protect it; retry once connected again
    │   ├── HandshakeRejected         the stream URL answered the upgrade with a permanent 4xx
    │   │                             (.status): a wrong URL, fatal at start-up
    │   └── CertificateRejected       a wss:// or https:// peer's TLS certificate failed
    │                                 verification (.url, .reason): fatal at start-up
    ├── RestError                     a REST call answered with an error body (.status, .code)
    │   ├── RateLimitedError          429; .retry_after_s from Retry-After
    │   ├── UnknownOrderError         404 unknown_order
    │   ├── CredentialsRejected       the venue refused the key or signature: fatal
    │   └── DuplicateOrderError       a real venue refused a place: its client order id is an
    │                                 order's already (an earlier try whose answer was lost)
    ├── BusError                      the message bus (NATS JetStream) failed or is missing
    │   └── NatsServerError           a local nats-server could not be found, started or
    │                                 made healthy (.log_tail: the end of its stderr)
    └── SyncTimeout (TimeoutError)    a book did not sync within the time asked

Peer errors never escape the frame decoder as anything but FrameError; retryable versus
fatal is decided in one place (``tickpipe.client.supervisor``), never by a blanket except.
"""

from __future__ import annotations


class TickpipeError(Exception):
    """Root of every error tickpipe raises on purpose."""


class ConfigError(TickpipeError, ValueError):
    """A user setting or argument is invalid. The message names the setting."""


class UnsupportedError(ConfigError):
    """The client's venue does not offer this call (orders on a market-data-only venue).
    ``.venue`` names the venue."""

    def __init__(self, message: str, venue: str) -> None:
        super().__init__(message)
        self.venue = venue


class ProtocolError(TickpipeError):
    """The peer broke VTS/1."""


class FrameError(ProtocolError):
    """A frame could not be decoded or validated.

    ``channel`` is the channel the frame belonged to when it could be read (else None),
    ``field`` the offending field (for example ``"bids[2].price"``), ``reason`` a short text.
    """

    def __init__(self, reason: str, *, channel: str | None = None, field: str | None = None):
        self.reason = reason
        self.channel = channel
        self.field = field
        where = []
        if channel is not None:
            where.append(f"channel {channel!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


class IllegalTransition(TickpipeError):
    """A state machine got an input that its current state does not allow."""

    def __init__(self, machine: str, state: str, event: str):
        self.machine = machine
        self.state = state
        self.event = event
        super().__init__(f"{machine}: input {event!r} is illegal in state {state!r}")


class StreamError(TickpipeError):
    """The stream connection failed or was lost."""


class AuthError(StreamError):
    """The gateway refused our credentials. Not a network fault: never retried in a loop."""


class ClientClosedError(StreamError):
    """The client was closed (``close()`` or the end of ``async with``): every call raises this
    at once, and nothing is sent to the gateway any more."""


class BlindError(StreamError):
    """An order was refused: the stream is down (the client is blind and reconnecting), so no
    book can be trusted and no kill switch would protect the order. Retry once connected."""


class HandshakeRejected(StreamError):
    """The stream URL answered the WebSocket upgrade with HTTP ``status`` (a permanent 4xx:
    400-499 but 408 and 429), e.g. 404 for a wrong path. Fatal before the first connection."""

    def __init__(self, message: str, status: int):
        self.status = status
        super().__init__(message)


class CertificateRejected(StreamError):
    """The TLS certificate of ``url`` (``wss://`` or ``https://``) failed verification:
    ``reason`` is OpenSSL's (``unable to get local issuer certificate`` for an unknown CA,
    ``Hostname mismatch``, ``certificate has expired``). Fatal before the first connection
    (trusting the peer's CA is a setting: ``ca_file`` or ``SSL_CERT_FILE``); once connected, a
    reconnect refused so is retried with backoff, verified every time."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(
            f"TLS certificate of {url} failed verification: {reason} (trust its CA with the "
            "ca_file setting, --ca-file, or SSL_CERT_FILE; verification is never turned off)"
        )


class RestError(TickpipeError):
    """A REST call answered with an error. ``status`` is the HTTP status, ``code`` VTS/1's code."""

    def __init__(self, status: int, code: str, message: str, *, method: str = "", path: str = ""):
        self.status = status
        self.code = code
        self.message = message
        self.method = method
        self.path = path
        target = f"{method} {path} " if method else ""
        super().__init__(f"{target}-> {status} {code}: {message}")


class RateLimitedError(RestError):
    """429 Too Many Requests; ``retry_after_s`` is the gateway's Retry-After in seconds."""

    def __init__(self, message: str, retry_after_s: float, *, method: str = "", path: str = ""):
        self.retry_after_s = retry_after_s
        super().__init__(429, "rate_limited", message, method=method, path=path)


class UnknownOrderError(RestError):
    """The key has no such order (404 unknown_order)."""


class CredentialsRejected(RestError):
    """The venue refused the API key or its signature (code ``auth_failed``): fatal, never
    retried. The message names the venue and what it said, never the secret."""


class DuplicateOrderError(RestError):
    """A real venue refused a place because an order already has its client order id (Binance
    ``-2010 Duplicate order sent.`` / ``-4116``, OKX 51016, Bybit 110072): usually an earlier
    try of the same place whose answer was lost. The signed-orders shell then reads that order
    back by its client order id (where the codec can) instead of failing."""


class BusError(TickpipeError):
    """The message bus (NATS JetStream) failed, or what it needs is not installed."""


class NatsServerError(BusError):
    """A local ``nats-server`` (``tickpipe.bus.natsserver``) could not be found, started or
    made healthy in time. ``log_tail`` is the end of the server's stderr ("" if it never ran)."""

    def __init__(self, message: str, log_tail: str = ""):
        self.log_tail = log_tail
        super().__init__(f"{message}; nats-server said:\n{log_tail}" if log_tail else message)

    @property
    def port_in_use(self) -> bool:
        """True when the server failed because one of its ports was taken by someone else."""
        return "address already in use" in self.log_tail


class SyncTimeout(TickpipeError, TimeoutError):
    """A book did not become synced within the time asked for."""
