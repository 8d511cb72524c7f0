"""The recording file format (pure: bytes in, bytes out; no file or clock access).

A recording part (``*.tpr.zst``) is a sequence of **independently decodable zstd frames**.
Each frame decompresses to whole records, each one::

    u32 little-endian length | msgpack body (a msgspec tagged array, see the classes below)

The first record of every part is a :class:`Header` (self-describing: format version, tickpipe
version, venue, channels, the venue's instruments answer, the client knobs replay needs). A
writer compresses and writes one zstd frame per flush (every ``flush_records`` records or
``flush_interval_s``), so a file cut anywhere (``kill -9``, a full disk) still decodes up to
its last whole record: :func:`decode_parts` reads frame after frame and, in a cut frame, every
record whose bytes are all there, then stops (``DecodedPart.truncated`` says so).

Times: ``mono_ns`` is ``time.monotonic_ns()`` and ``wall_ns`` ``time.time_ns()`` when the
record was taken (a stream frame: as the client read it, before decoding it). Replay clocks
come from these, never from the machine replaying.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zstandard

FORMAT_VERSION = 1
MAGIC = "tickpipe-recording"
_LEN = 4  # bytes of the length prefix
MAX_RECORD_BYTES = 1 << 30  # a length above this is corruption, not a record


class Header(msgspec.Struct, tag="header", array_like=True, frozen=True):
    """First record of every part."""

    magic: str
    format_version: int
    tickpipe_version: str
    venue: str
    channels: list[str]
    part: int
    started_wall_ns: int
    stream_url: str
    rest_url: str
    snapshot_depth: int | None = None
    max_snapshot_levels: int = 10_000
    instruments_target: str = ""
    instruments_body: bytes | None = None  # the venue's last instruments answer, as received


class Frame(msgspec.Struct, tag="f", array_like=True, frozen=True):
    """A stream text frame the client's books are fed from, as received."""

    mono_ns: int
    wall_ns: int
    data: bytes


class OpenFrame(msgspec.Struct, tag="o", array_like=True, frozen=True):
    """A stream frame read before the venue's open answer (VTS/1: the auth answer)."""

    mono_ns: int
    wall_ns: int
    data: bytes


class Rest(msgspec.Struct, tag="r", array_like=True, frozen=True):
    """A REST answer as received (status 0: no answer; body empty then)."""

    mono_ns: int
    wall_ns: int
    method: str
    path: str
    status: int
    body: bytes
    retry_after: str | None = None


class SnapshotDelivered(msgspec.Struct, tag="s", array_like=True, frozen=True):
    """The snapshot scheduler handed a fetch's outcome to a book (which seeding: ``epoch``).
    ``ok``: the body is the last :class:`Rest` answer of the book's snapshot target; else
    ``error`` is the error's text (``retry_after_s`` for a 429)."""

    mono_ns: int
    wall_ns: int
    channel: str
    epoch: int
    ok: bool
    error: str | None = None
    retry_after_s: float | None = None


class Connection(msgspec.Struct, tag="c", array_like=True, frozen=True):
    """A connection event of the supervisor: ``what`` is connected | disconnected |
    reconnecting | connect_retry | snapshot_overdue; ``fields`` its values."""

    mono_ns: int
    wall_ns: int
    what: str
    fields: dict[str, Any]


class Sent(msgspec.Struct, tag="q", array_like=True, frozen=True):
    """A (un)subscribe request sent (never its bytes: only what its answer is matched by)."""

    mono_ns: int
    wall_ns: int
    id: int
    kind: str
    channels: list[str]


class Event(msgspec.Struct, tag="e", array_like=True, frozen=True):
    """A client event seen live (``gap``, ``stale``...), kept for the record; replay
    recomputes events from the frames and does not read these."""

    mono_ns: int
    wall_ns: int
    event: dict[str, Any]


class Overflow(msgspec.Struct, tag="x", array_like=True, frozen=True):
    """The writer fell behind: ``dropped`` records were lost before this one."""

    mono_ns: int
    wall_ns: int
    dropped: int


class End(msgspec.Struct, tag="z", array_like=True, frozen=True):
    """The recording stopped on purpose (``reason``): the live run's books end here."""

    mono_ns: int
    wall_ns: int
    reason: str


Record = (
    Header
    | Frame
    | OpenFrame
    | Rest
    | SnapshotDelivered
    | Connection
    | Sent
    | Event
    | Overflow
    | End
)
TIMED = (Frame, OpenFrame, Rest, SnapshotDelivered, Connection, Sent, Event, Overflow, End)

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Record] = msgspec.msgpack.Decoder(Record)


class FormatError(ValueError):
    """A part that is not a tickpipe recording, or corrupt before its end."""


def encode_record(rec: Record) -> bytes:
    """One record with its length prefix."""
    body = _encoder.encode(rec)
    return len(body).to_bytes(_LEN, "little") + body


def encode_records(recs: list[Record], buf: bytearray | None = None) -> bytearray:
    """Records appended, each with its length prefix, to ``buf`` (a new one if None)."""
    out = bytearray() if buf is None else buf
    enc = _encoder.encode
    for rec in recs:
        body = enc(rec)
        out += len(body).to_bytes(_LEN, "little")
        out += body
    return out


def compress_chunk(raw: bytes | bytearray, level: int = 3) -> bytes:
    """One independently decodable zstd frame of records (content size written)."""
    return zstandard.ZstdCompressor(level=level).compress(bytes(raw))


def split_records(raw: bytes | bytearray | memoryview) -> tuple[list[Record], int]:
    """Whole records at the start of ``raw`` and how many bytes they used (the rest is a cut
    record). FormatError on a record that is complete but cannot be decoded."""
    out: list[Record] = []
    pos, n = 0, len(raw)
    view = memoryview(raw)
    while pos + _LEN <= n:
        length = int.from_bytes(view[pos : pos + _LEN], "little")
        if length > MAX_RECORD_BYTES:
            raise FormatError(f"record at byte {pos} claims {length} bytes: corrupt")
        end = pos + _LEN + length
        if end > n:
            break
        try:
            out.append(_decoder.decode(view[pos + _LEN : end]))
        except msgspec.DecodeError as exc:
            raise FormatError(f"record at byte {pos} does not decode: {exc}") from None
        pos = end
    return out, pos


@dataclass
class DecodedPart:
    """What one part held: its header, records in order, and whether it was cut short."""

    header: Header
    records: list[Record] = field(default_factory=list)
    truncated: bool = False
    chunks: int = 0


def iter_chunks(data: bytes) -> Iterator[tuple[bytes, bool]]:
    """(decompressed bytes, complete?) of each zstd frame in ``data``; a cut last frame gives
    what could be decompressed of it, then ends."""
    dctx = zstandard.ZstdDecompressor()
    pos, n = 0, len(data)
    while pos < n:
        dobj = dctx.decompressobj()
        try:
            out = dobj.decompress(data[pos:])
        except zstandard.ZstdError:  # a damaged frame: nothing of it, nothing after it
            yield b"", False
            return
        if not dobj.eof:
            yield out, False
            return
        used = n - pos - len(dobj.unused_data)
        yield out, True
        pos += used


def decode_part(data: bytes) -> DecodedPart:
    """Decode one part's bytes. FormatError when it is not a tickpipe recording."""
    header: Header | None = None
    part: DecodedPart | None = None
    for raw, complete in iter_chunks(data):
        try:
            recs, used = split_records(raw)
        except FormatError as exc:
            if header is None:
                raise FormatError(f"not a tickpipe recording ({exc})") from None
            raise
        if header is None:
            if not recs or not isinstance(recs[0], Header) or recs[0].magic != MAGIC:
                raise FormatError("not a tickpipe recording (no header record)")
            header = recs[0]
            if header.format_version > FORMAT_VERSION:
                raise FormatError(
                    f"recording format {header.format_version} is newer than this tickpipe "
                    f"reads ({FORMAT_VERSION})"
                )
            part = DecodedPart(header)
            recs = recs[1:]
        assert part is not None
        part.chunks += 1
        part.records.extend(recs)
        if not complete or used != len(raw):
            part.truncated = True
            return part
    if part is None:
        raise FormatError("not a tickpipe recording (empty, or cut inside its first chunk)")
    return part
