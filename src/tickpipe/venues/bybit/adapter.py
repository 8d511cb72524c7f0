"""Bybit v5 public market data behind the venue interface (``venues.base.Venue``): ``bybit``
(spot) and ``bybit-linear`` (USDT/USDC perpetuals). Pure: it builds frames and decodes bodies
and frames with :mod:`.codec`; the client shell does every I/O.

- Stream: ``<stream base>/v5/public/spot`` or ``/v5/public/linear``, then
  ``{"op":"subscribe"|"unsubscribe","args":[topics],"req_id":"7"}``. Bybit answers a request
  as a whole by ``req_id`` and names no topic (:class:`~tickpipe.venues.base.Ack` of the
  request; ``"success": false`` -> :class:`~tickpipe.venues.base.Refused`, code
  ``venue_refused``). Spot takes at most 10 topics a request ("Spot can input up to 10 args for
  each subscription request"): a larger request is sent as several, ``req_id`` ``7-0``,
  ``7-1``..., each answer acknowledging its own topics one by one (``Ack`` with a ``channel``)
  so the request is done once every topic was answered. Nothing is sent on open.
- Books: ``orderbook.200.SYMBOL`` (200 levels, pushed every 100 ms), ``Seeding.IN_BAND``: the
  snapshot arrives on the socket after a subscribe; a broken book is re-seeded by unsubscribing
  and subscribing that one topic again. A ``snapshot`` frame, or a frame with ``u == 1`` ("a
  snapshot data due to the restart of the service. So please overwrite your local orderbook"),
  replaces the book (:meth:`BookSync.on_stream_snapshot` while LIVE). The book is kept 200
  levels deep (``SyncRules.depth``). Bybit defines no checksum. A book's ``seq`` is ``u``.
- Continuity: ``Continuity.SEQ`` on ``u`` (each delta is the previous ``u`` + 1), so a lost or
  reordered delta is seen on the frame after it. The sentence relied on is Bybit's own
  orderbook page, ``u``: "Update ID. Is a sequence." (English, to 22 October 2024) and, in the
  current Chinese page, "一般情況下該id是連續的" ("normally this id is contiguous"); the only
  discontinuity either documents is the ``u == 1`` restart snapshot, handled above. (The
  current English page says only "Update ID": if Bybit ever skipped ids without a restart, each
  skip would cost one re-subscribe of that book, never a wrong book.)
- Tickers: ``tickers.SYMBOL``. Linear sends a snapshot and then deltas holding only the fields
  that changed: they are merged with the last ticker of the symbol (:func:`codec.merge_ticker`).
  Spot tickers are snapshots with no best bid/ask (Bybit sends none), passed on as such.
- Heartbeat: Bybit never pings; the shell sends ``{"op":"ping"}`` every
  ``client_ping_interval_s`` (20 s, Bybit's advice) and Bybit answers ``pong``
  (:class:`~tickpipe.venues.base.Pong`). Every frame counts as alive; ``heartbeat_ms`` is set so
  that the client's ``heartbeat_timeout_factor`` (2.5) gives ping interval + pong deadline
  (20 s + 10 s = 30 s) without a frame as a dead link.
- Re-seeds: Bybit documents no subscribe-message rate for public streams (only the 21,000
  characters of ``args`` a connection and 500 connections per 5 minutes per IP); the shell's
  token bucket over re-seeds (``resubscribes_per_s`` 1.0, ``resubscribe_burst`` 10) keeps a storm
  of broken books to one re-subscribe a second sustained.
- REST: ``/v5/market/instruments-info?category=spot`` (``tickSize`` / ``basePrecision``) or
  ``?category=linear&limit=1000`` (``tickSize`` / ``qtyStep``; one page of up to 1000, which
  covers Bybit's linear list). No API key is sent. Books never seed over REST.
- Orders (issue 17): :meth:`BybitVenue.order_codec` is the category's signed v5 orders
  (:class:`~tickpipe.venues.bybit.orders.BybitOrders`), used when a Bybit key is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tickpipe.errors import FrameError
from tickpipe.protocol.frames import Snapshot
from tickpipe.protocol.instruments import Instrument
from tickpipe.protocol.normalised import BookDelta, TickerEvent
from tickpipe.protocol.sync import SyncRules
from tickpipe.venues.base import Ack, Opened, OpenRefused, Pong, Refused
from tickpipe.venues.bybit import codec, endpoints, limits
from tickpipe.venues.bybit.endpoints import BYBIT, BYBIT_LINEAR, VenueSpec
from tickpipe.venues.bybit.orders import BybitOrders
from tickpipe.venues.trading import OrderCodec

MAX_SPLIT_REQUESTS = 1024
"""Split subscribe requests (spot, more than 10 topics) awaiting their answer, at most; the
oldest is forgotten past it (its answer then counts as unexpected)."""


def _request_id(text: str | None) -> int | str | None:
    if text is not None and text.isascii() and text.isdigit():
        return int(text)
    return text


class BybitVenue:
    """Bybit v5 public market data, spot (``--venue bybit``); ``spec`` picks the category.

    ``client_ping_interval_s`` (20.0 s) and ``pong_timeout_s`` (10.0 s) are Bybit's documented
    heartbeat; tests pass shorter ones. ``resubscribes_per_s`` (1.0) and ``resubscribe_burst``
    (10) bound re-seeds by re-subscribing (Bybit documents no public subscribe rate)."""

    title = "Bybit spot"
    supports_orders = False
    checks_symbols_locally = True  # Bybit refuses an unknown topic too, but after the request
    sends_key = False
    awaits_open_answer = False
    auth_close_code: int | None = None
    rate_limit_statuses: tuple[int, ...] = (403, 429)  # Bybit REST: 403 "access too frequently"
    client_ping: bytes | None = endpoints.ping_message()

    def __init__(
        self,
        client_ping_interval_s: float = endpoints.CLIENT_PING_INTERVAL_S,
        pong_timeout_s: float = endpoints.PONG_TIMEOUT_S,
        resubscribes_per_s: float = 1.0,
        resubscribe_burst: int = 10,
        spec: VenueSpec = BYBIT,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.stream_base_url = spec.stream_base_url
        self.stream_path: str | None = spec.stream_path
        self.rest_base_url = spec.rest_base_url
        self.client_ping_interval_s = client_ping_interval_s
        self.heartbeat_ms: int | None = max(1, int((client_ping_interval_s + pong_timeout_s) * 400))
        self.resubscribes_per_s = resubscribes_per_s
        self.resubscribe_burst = resubscribe_burst
        self._rules = SyncRules(
            continuity=spec.continuity,
            seeding=spec.seeding,
            checksum=None,
            depth=spec.book_depth,
        )
        self._split: dict[str, tuple[int, list[str]]] = {}  # "7-1" -> (7, its channels)
        self._tickers: dict[str, TickerEvent] = {}  # last merged ticker per symbol (linear)
        self.decode: Callable[[Any], object] = self._decode

    # -- the stream --------------------------------------------------------------------------
    def _decode(self, data: Any) -> object:
        if isinstance(data, memoryview):
            data = bytes(data)
        events = codec.decode(data)
        if len(events) == 1 and type(events[0]) is BookDelta:  # the flood: as it is
            return events[0]
        out: list[object] = []
        for ev in events:
            got = self._value(ev)
            if isinstance(got, list):
                out.extend(got)
            else:
                out.append(got)
        return out[0] if len(out) == 1 else out

    def _value(self, ev: object) -> object:
        tp = type(ev)
        if tp is TickerEvent:
            assert isinstance(ev, TickerEvent)
            merged = codec.merge_ticker(self._tickers.get(ev.symbol), ev)
            self._tickers[ev.symbol] = merged
            return merged
        if tp is codec.Subscribed:
            assert isinstance(ev, codec.Subscribed)
            split = self._split.pop(ev.request_id or "", None)
            if split is not None:
                return [Ack(split[0], ch) for ch in split[1]]
            return Ack(_request_id(ev.request_id))
        if tp is codec.VenueError:
            assert isinstance(ev, codec.VenueError)
            split = self._split.pop(ev.request_id or "", None)
            rid = split[0] if split is not None else _request_id(ev.request_id)
            return Refused(rid, "venue_refused", f"bybit {ev.op} failed: {ev.message}")
        if tp is codec.Pong:
            return Pong()
        return ev

    def parse_channel(self, channel: str) -> tuple[str, str]:
        endpoints.to_topic(channel)  # ConfigError (a ValueError) names a bad channel
        kind, _, symbol = channel.partition(":")
        return kind, symbol

    def open_frames(self, key: str, secret: str, ts_ms: int) -> list[bytes]:
        return []

    def decode_open(self, data: Any) -> Opened | OpenRefused | None:
        return None  # never asked: awaits_open_answer is False

    def _frames(self, op: str, channels: list[str], request_id: int) -> bytes | list[bytes]:
        build = endpoints.subscribe_message if op == "subscribe" else endpoints.unsubscribe_message
        cap = self.spec.max_args_per_subscribe
        if cap is None or len(channels) <= cap:
            return build(channels, str(request_id), self.spec)
        out: list[bytes] = []
        for k in range(0, len(channels), cap):
            rid = f"{request_id}-{k // cap}"
            chunk = channels[k : k + cap]
            while len(self._split) >= MAX_SPLIT_REQUESTS:
                del self._split[next(iter(self._split))]
            self._split[rid] = (request_id, chunk)
            out.append(build(chunk, rid, self.spec))
        return out

    def subscribe_frame(self, channels: list[str], request_id: int) -> bytes | list[bytes]:
        return self._frames("subscribe", channels, request_id)

    def unsubscribe_frame(self, channels: list[str], request_id: int) -> bytes | list[bytes]:
        return self._frames("unsubscribe", channels, request_id)

    def cancel_on_disconnect_frame(self) -> bytes | None:
        return None  # Bybit's public streams carry no orders

    def order_codec(self) -> OrderCodec:
        """Signed v5 orders of this category (``spot`` or ``linear``): pure, see
        :mod:`tickpipe.venues.bybit.orders`."""
        return BybitOrders(self.spec)

    # -- REST --------------------------------------------------------------------------------
    def instruments_target(self) -> str:
        path = self.spec.instruments_path
        return path if self.spec.category == "spot" else f"{path}&limit=1000"

    def decode_instruments(self, body: bytes) -> list[Instrument]:
        instruments, _cursor = codec.decode_instruments(body, self.spec.category)
        return instruments

    def snapshot_target(self, symbol: str, depth: int | None) -> str:
        cap = limits.REST_ORDERBOOK_MAX_DEPTH[self.spec.category]
        return (
            f"{codec.ORDERBOOK_PATH}?category={self.spec.category}&symbol={symbol}"
            f"&limit={min(depth or cap, cap)}"
        )

    def decode_snapshot(self, body: bytes, symbol: str) -> Snapshot:
        raise FrameError(
            "Bybit books are seeded on the stream (a snapshot after each subscribe)",
            channel=f"orderbook:{symbol}",
        )

    def snapshot_budget(
        self, depth: int | None, rate_per_s: float, burst: int
    ) -> tuple[float, int]:
        # never used to seed (in band); kept within 600 requests per 5 s per IP all the same
        per_s = limits.REST_REQUESTS_PER_5S_PER_IP / 5.0
        return min(rate_per_s, per_s / 2), min(burst, int(per_s / 2))

    def sync_rules(self, symbol: str) -> SyncRules:
        return self._rules


class BybitLinearVenue(BybitVenue):
    """Bybit v5 public market data, USDT/USDC perpetuals (``--venue bybit-linear``)."""

    title = "Bybit linear"

    def __init__(
        self,
        client_ping_interval_s: float = endpoints.CLIENT_PING_INTERVAL_S,
        pong_timeout_s: float = endpoints.PONG_TIMEOUT_S,
        resubscribes_per_s: float = 1.0,
        resubscribe_burst: int = 10,
    ) -> None:
        super().__init__(
            client_ping_interval_s,
            pong_timeout_s,
            resubscribes_per_s,
            resubscribe_burst,
            spec=BYBIT_LINEAR,
        )
