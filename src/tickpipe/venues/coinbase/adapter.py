"""Coinbase Advanced Trade market data behind the venue interface (``venues.base.Venue``). It
builds frames and decodes bodies and frames with :mod:`.codec`; the client shell does every I/O.
Pure, but it keeps one connection's numbering (see "State" below).

- Stream: ``<stream base>`` (no path), then one ``{"type": "subscribe"|"unsubscribe",
  "channel", "product_ids"}`` per Coinbase channel a request names (``level2``,
  ``market_trades``, ``ticker``). Coinbase has no request ids: it answers each (un)subscribe
  message with one ``subscriptions`` message (everything the connection is subscribed to), or
  an ``{"type": "error", "message"}``. Answers come in the order the messages were sent, so
  the adapter keeps the messages it built in a queue: a ``subscriptions`` message answers the
  oldest one, as one :class:`~tickpipe.venues.base.Ack` per tickpipe channel it named; an error
  refuses it (:class:`~tickpipe.venues.base.Refused`, code ``venue_refused``).
- On open: ``subscribe`` to ``heartbeats`` (no products): Coinbase closes channels after 60-90 s
  without updates otherwise, and the heartbeats (one a second, ``heartbeat_counter``) are the
  link's liveness: each one is a :class:`~tickpipe.venues.base.Pong` to the shell's watchdog.
  Nothing else counts, so a connection whose heartbeats stop is dead after
  ``heartbeat_timeout_s`` (5 s: five missed) even while other channels flow.
- Sequencing (``Continuity.CONNECTION``): every message of a connection carries
  ``sequence_num``, contiguous across all channels. A skip means a message of unknown channel
  was lost: :class:`~tickpipe.venues.base.ConnectionGap` (every book on the connection
  re-seeds); an old number (a duplicate, a late reordered message) is dropped whole. A book's
  ``seq`` is the ``sequence_num`` of the last message applied to it (per connection).
- Books: ``level2`` (``l2_data`` events: ``snapshot`` then ``update``s, ``new_quantity`` the
  new size, ``"0"`` removes), ``Seeding.IN_BAND``; a broken book is re-seeded by unsubscribing
  and subscribing its product on ``level2`` again (Coinbase sends a new snapshot). Coinbase
  sends no checksum: a book is as good as the sequence says (see docs/dialects.md).
- Re-seeds: Coinbase allows 8 unauthenticated messages a second per IP; a re-seed costs 2. The
  shell's bucket (``resubscribes_per_s`` 1.0, ``resubscribe_burst`` 2) sends at most 6 in any
  second (2 sustained), leaving room for the user's own subscribes.
- REST: ``/api/v3/brokerage/market/products`` (public; ``price_increment`` or
  ``quote_increment``, ``base_increment``: the book grid). No API key is sent. Books never seed
  over REST (the product book has no ``sequence_num`` to bridge).
- Orders (issue 17): :meth:`CoinbaseVenue.order_codec` (``venues/coinbase/orders.py``, a JWT
  per request signed with the key's EC private key: ``venues/coinbase/auth.py``). Coinbase has
  no dead man's switch: on going blind the client cancels its own orders itself.

State: :meth:`open_frames` (called once per connection, before anything is read on it) starts
the connection's numbering and answer queue afresh; :meth:`subscribe_frame` and
:meth:`unsubscribe_frame` are called when their frames are sent, and queue them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from tickpipe.errors import ConfigError, FrameError
from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.sync import SyncRules
from tickpipe.venues.base import Ack, ConnectionGap, Opened, OpenRefused, Pong, Refused
from tickpipe.venues.coinbase import codec, endpoints, limits
from tickpipe.venues.coinbase.codec import (
    ConnectionSequence,
    Heartbeat,
    Step,
    SubscribeRequest,
    Subscriptions,
    UnsubscribeRequest,
    VenueError,
)
from tickpipe.venues.coinbase.orders import CoinbaseOrders
from tickpipe.venues.trading import OrderCodec

HEARTBEAT_TIMEOUT_S = 5.0
"""No heartbeat this long (five of Coinbase's 1 s heartbeats missed): the link is dead."""
PRODUCT_BOOK_PATH = "/api/v3/brokerage/market/product_book"  # not used to seed (no sequence)
MAX_PENDING_ANSWERS = 10_000
"""Unanswered (un)subscribe messages remembered per connection (the oldest forgotten past it)."""

_RULES = SyncRules(
    continuity=endpoints.VENUE.continuity,
    seeding=endpoints.VENUE.seeding,
    checksum=None,
)


class CoinbaseVenue:
    """Coinbase Advanced Trade public market data (``--venue coinbase``).

    - ``heartbeat_timeout_s`` (5.0 s): no ``heartbeats`` message this long is a dead link
      (the shell reconnects); shorter is quicker to notice, and closer to a false alarm on a
      busy host.
    - ``resubscribes_per_s`` (1.0), ``resubscribe_burst`` (2): re-seeds by re-subscribing
      (2 messages each, within Coinbase's 8 a second per IP).
    """

    name = "coinbase"
    title = "Coinbase Advanced Trade"
    supports_orders = False
    checks_symbols_locally = True  # an unknown product is refused by Coinbase too, but later
    sends_key = False
    awaits_open_answer = False
    auth_close_code: int | None = None
    rate_limit_statuses: tuple[int, ...] = (429,)
    client_ping: bytes | None = None  # Coinbase pings: the heartbeats channel

    def __init__(
        self,
        heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S,
        resubscribes_per_s: float = 1.0,
        resubscribe_burst: int = 2,
    ) -> None:
        if not heartbeat_timeout_s > 0:
            raise ConfigError(f"heartbeat_timeout_s must be > 0, got {heartbeat_timeout_s!r}")
        spec = endpoints.VENUE
        self.stream_base_url = spec.stream_base
        self.stream_path: str | None = spec.stream_path
        self.rest_base_url = spec.rest_base
        # the shell's timeout is heartbeat_ms x heartbeat_timeout_factor (2.5)
        self.heartbeat_ms: int | None = max(1, int(heartbeat_timeout_s * 400))
        self.resubscribes_per_s = resubscribes_per_s
        self.resubscribe_burst = resubscribe_burst
        self.sequence = ConnectionSequence()
        # (request id, or None for the heartbeats subscription; the tickpipe channels) of each
        # (un)subscribe message sent on this connection and not answered yet, oldest first
        self._unanswered: deque[tuple[int | None, list[str]]] = deque()
        self.duplicates = 0  # messages dropped for an old sequence_num
        self.gaps = 0  # sequence_num skips (ConnectionGap)
        self.decode: Callable[[Any], object] = self._decode

    # -- decode ---------------------------------------------------------------------------------
    def _decode(self, data: Any) -> object:
        if isinstance(data, memoryview):
            data = bytes(data)
        msg = codec.decode(data)
        if msg.sequence_num is None:  # an error answer has no sequence_num
            ev = msg.events[0]
            assert isinstance(ev, VenueError)
            return self._refused(ev.message)
        step = self.sequence.check(msg.sequence_num)
        if step is Step.DUPLICATE:
            self.duplicates += 1
            return []
        out: list[object] = []
        if step is Step.GAP:
            self.gaps += 1
            out.append(ConnectionGap())
        for ev in msg.events:
            tp = type(ev)
            if tp is Heartbeat:
                out.append(Pong())
            elif tp is Subscriptions:
                out.extend(self._answered())
            else:
                out.append(ev)
        return out[0] if len(out) == 1 else out

    def _answered(self) -> list[object]:
        """A ``subscriptions`` message: the oldest (un)subscribe message is done."""
        if not self._unanswered:
            return []  # unsolicited (not sent by this client): nothing to settle
        rid, channels = self._unanswered.popleft()
        if rid is None:
            return []
        return [Ack(rid, ch) for ch in channels]

    def _refused(self, message: str) -> Refused:
        rid = self._unanswered.popleft()[0] if self._unanswered else None
        return Refused(rid, "venue_refused", f"coinbase error: {message}")

    # -- frames ---------------------------------------------------------------------------------
    def parse_channel(self, channel: str) -> tuple[str, str]:
        endpoints.topic(channel)  # ValueError naming the channel
        kind, _, symbol = channel.partition(":")
        return kind, symbol

    def open_frames(self, key: str, secret: str, ts_ms: int) -> list[bytes]:
        """A new connection: numbering starts again, and the first message subscribes
        ``heartbeats`` (its answer settles nothing of the user's)."""
        self.sequence.reset()
        self._unanswered.clear()
        self._unanswered.append((None, []))
        return [codec.encode_request(SubscribeRequest(endpoints.HEARTBEATS_CHANNEL, []))]

    def decode_open(self, data: Any) -> Opened | OpenRefused | None:
        return None  # never asked: awaits_open_answer is False

    def _frames(self, channels: list[str], request_id: int, subscribe: bool) -> list[bytes]:
        groups: dict[str, list[str]] = {}
        for ch in dict.fromkeys(channels):
            name, _ = endpoints.topic(ch)
            groups.setdefault(name, []).append(ch)
        out = []
        for name, chans in groups.items():
            ids = [ch.partition(":")[2] for ch in chans]
            req = SubscribeRequest(name, ids) if subscribe else UnsubscribeRequest(name, ids)
            out.append(codec.encode_request(req))
            if len(self._unanswered) >= MAX_PENDING_ANSWERS:
                self._unanswered.popleft()
            self._unanswered.append((request_id, chans))
        return out

    def subscribe_frame(self, channels: list[str], request_id: int) -> list[bytes]:
        return self._frames(channels, request_id, True)

    def unsubscribe_frame(self, channels: list[str], request_id: int) -> list[bytes]:
        return self._frames(channels, request_id, False)

    def cancel_on_disconnect_frame(self) -> bytes | None:
        return None  # Coinbase has no cancel-on-disconnect

    def order_codec(self) -> OrderCodec:
        """Signed orders on Advanced Trade (used when a key is given: ``key=`` / ``secret=``,
        ``TICKPIPE_COINBASE_KEY`` / ``_SECRET`` (the key name and its EC private key PEM), or
        ``credentials_file``)."""
        return CoinbaseOrders()

    # -- REST -----------------------------------------------------------------------------------
    def instruments_target(self) -> str:
        return endpoints.VENUE.instruments_path

    def decode_instruments(self, body: bytes) -> list[Instrument]:
        return codec.decode_products(body)

    def snapshot_target(self, symbol: str, depth: int | None) -> str:
        return f"{PRODUCT_BOOK_PATH}?product_id={symbol}" + (f"&limit={depth}" if depth else "")

    def decode_snapshot(self, body: bytes, symbol: str) -> Snapshot:
        raise FrameError(
            "Coinbase books are seeded on the stream: the REST product book has no "
            "sequence_num to bridge",
            channel=f"orderbook:{symbol}",
        )

    def snapshot_budget(
        self, depth: int | None, rate_per_s: float, burst: int
    ) -> tuple[float, int]:
        # never used to seed (in band); kept within the public REST 10 requests a second
        per_s = float(limits.REST_PUBLIC_REQUESTS_PER_S)
        return min(rate_per_s, per_s * 0.75), min(burst, int(per_s))

    def sync_rules(self, symbol: str) -> SyncRules:
        return _RULES
