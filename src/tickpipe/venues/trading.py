"""Orders on a venue, sans I/O: what a venue's order codec builds and decodes (issue 17).

The client shell (``client/signed_orders.py``) sends, times, retries and rate-limits; a venue's
codec (``venues/<name>/orders.py``) only turns an intent (place, list, cancel, cancel all, arm
the venue's dead man's switch, read its clock) into a signed :class:`HttpCall`, and the venue's
answer into :class:`Order` values or a typed error. The reference gateway's dialects verify
the same signatures with the same functions (``venues/<name>/auth.py``).

Errors a codec raises for an answer (``tickpipe.errors``): :class:`CredentialsRejected` (the
venue refused the key or signature: fatal, never retried), :class:`UnknownOrderError`,
:class:`RateLimitedError` (with the venue's wait when it gives one), and :class:`RestError` with
code ``rejected`` (the order itself was refused: bad price, insufficient funds...) or
``venue_error`` (a 5xx or an answer it cannot read: retryable with the same client order id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

FINAL_STATUSES = frozenset({"cancelled", "filled", "rejected", "expired"})


@dataclass(frozen=True, slots=True)
class Credentials:
    """A venue API key. ``secret`` and ``passphrase`` never appear in a repr, a log or an error
    (tests grep for them)."""

    key: str
    secret: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One REST request as the venue wants it: ``query`` already encoded (and signed over as
    written), ``body`` the exact bytes signed."""

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A limit order to place: decimal text as the user gave it (checked > 0), ``side`` buy or
    sell, ``client_order_id`` the idempotency key (the same on every retry)."""

    symbol: str
    side: str
    price: str
    size: str
    client_order_id: str


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the venue last described it. ``raw`` keeps every field it sent. ``status``
    is normalised: ``open`` (resting, partially filled or not), ``filled``, ``cancelled``,
    ``rejected``, ``expired``."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str
    price: str
    size: str
    status: str
    filled_size: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def is_open(self) -> bool:
        return self.status not in FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class GuardStream:
    """A private WebSocket a venue's dead man's switch watches (Bybit's DCP: every order of the
    product is cancelled once every private connection subscribed to a ``dcp`` topic has been
    gone for the window). The client holds it while its market stream is healthy and drops it
    when it goes blind; a network cut drops it too. A codec offers one as its optional
    ``guard_stream`` attribute.

    - ``path``: appended to the venue's stream base URL (``/v5/private``).
    - ``open_frames(creds, ts_ms)``: sent in order after connecting (auth, subscribe); each is
      answered by one frame, read by ``check``: None when good, else the venue's refusal
      (``auth`` in it: a refused key, never retried).
    - ``ping_frame()`` every ``ping_every_s`` (its answer is read and checked too).
    """

    path: str
    ping_every_s: float
    open_frames: Callable[[Credentials, int], list[bytes]]
    ping_frame: Callable[[], bytes]
    check: Callable[[bytes | str], str | None]


class OrderCodec(Protocol):
    """A venue's orders, pure. ``ts_ms`` is the venue's clock (the shell corrects ours by the
    offset it measured with :meth:`time_call`).

    - ``orders_per_s`` / ``orders_burst``: the venue's order-rate limit, a token bucket the
      shell spends before every order call.
    - ``dead_man_refresh_s``: how often the shell re-arms the venue's dead man's switch while
      the stream is healthy (None: the venue has none; :meth:`arm_dead_man` returns None).
    - ``dead_man_per_symbol``: the venue's timer is armed per symbol (Binance USD-M
      ``countdownCancelAll``): the shell arms it for each symbol it has open orders on.
    - ``cancel_needs_symbol``: a cancel names the symbol as well as the id (Binance, OKX,
      Bybit); the shell knows it for its own orders.
    - Optional ``get_order_by_client_id(creds, ts_ms, symbol, client_order_id) -> HttpCall``:
      a venue that refuses a repeated client order id (``DuplicateOrderError`` from
      :meth:`decode_order`) offers it, and the shell reads the earlier try's order back with
      it (``SignedOrders.place``).
    """

    venue: str
    needs_passphrase: bool
    orders_per_s: float
    orders_burst: int
    dead_man_refresh_s: float | None
    dead_man_per_symbol: bool
    cancel_needs_symbol: bool

    def time_call(self) -> HttpCall | None: ...

    def decode_time(self, status: int, body: bytes) -> int:
        """The venue's clock in ms from :meth:`time_call`'s answer."""
        ...

    def place(self, creds: Credentials, ts_ms: int, order: NewOrder) -> HttpCall: ...

    def open_orders(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall: ...

    def get_order(
        self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str
    ) -> HttpCall: ...

    def cancel(
        self, creds: Credentials, ts_ms: int, symbol: str | None, order_id: str
    ) -> HttpCall: ...

    def cancel_all(self, creds: Credentials, ts_ms: int, symbol: str | None) -> HttpCall | None:
        """None: the venue cancels all only per symbol and none was given (the shell then
        cancels each own order)."""
        ...

    def arm_dead_man(
        self, creds: Credentials, ts_ms: int, timeout_s: float, symbol: str | None
    ) -> HttpCall | None:
        """Arm (or refresh) the venue's own timer: the key's orders (``symbol``'s, for a venue
        whose timer is per symbol: ``dead_man_per_symbol``) are cancelled ``timeout_s`` after
        the last refresh. None: the venue has no such switch."""
        ...

    def decode_order(self, status: int, body: bytes, sent: NewOrder | None) -> Order:
        """A place, get or cancel answer (``sent``: the order placed, for venues whose answer
        is only an id)."""
        ...

    def decode_orders(self, status: int, body: bytes) -> list[Order]: ...

    def decode_cancel_all(self, status: int, body: bytes) -> list[str]:
        """The ids cancelled (empty when the venue does not say)."""
        ...

    def decode_ack(self, status: int, body: bytes) -> None:
        """An answer with nothing to return (the dead man's switch): raises on an error."""
        ...
