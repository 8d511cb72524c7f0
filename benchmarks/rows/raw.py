"""Rows 1 and 2: the ceiling of the stack, then the same plus the fastest decoders.

Variants (``--variant``):

- ``receive``: picows on uvloop, count text frames, no decoding. In rate mode the ``ts`` digits
  are cut out of the bytes (no JSON parse) so the latency floor of socket + loop is visible.
- ``msgspec``: plus ``msgspec.json.Decoder`` into tickpipe's typed frame union (the structs the
  client decodes into), straight from picows' buffer (a memoryview, no copy).
- ``orjson``: plus ``orjson.loads`` into dicts, from the same memoryview.

Python -m benchmarks.rows.raw --stream-url ... --rest-url ... --corpus DIR [--variant msgspec]
"""

from __future__ import annotations

import time

import msgspec
import orjson
from picows import WSFrame

from benchmarks.rows import picows_base
from benchmarks.rows.common import Run, parse_args
from tickpipe.protocol import frames as vts

_DELTA_PREFIX = b'{"type":"delta"'


class Receive(picows_base.Handler):
    def on_data(self, frame: WSFrame) -> None:
        self.n += 1
        if self.run.rate_mode:
            p = frame.get_payload_as_bytes()
            if p.startswith(_DELTA_PREFIX):
                i = p.find(b'"ts":') + 5
                self.run.lat.append(time.time_ns() - int(p[i : i + 19]))
        if self.n == self.expected:
            self.finish()


class MsgspecDecode(picows_base.Handler):
    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.decode = msgspec.json.Decoder(vts.ServerFrame).decode
        self.last: object = None

    def on_data(self, frame: WSFrame) -> None:
        f = self.decode(frame.get_payload_as_memoryview())
        self.last = f
        self.n += 1
        if self.run.rate_mode and type(f) is vts.Delta:
            self.run.lat.append(time.time_ns() - f.ts)
        if self.n == self.expected:
            self.finish()


class OrjsonDecode(picows_base.Handler):
    def __init__(self, run: Run) -> None:
        super().__init__(run)
        self.last: object = None

    def on_data(self, frame: WSFrame) -> None:
        f = orjson.loads(frame.get_payload_as_memoryview())
        self.last = f
        self.n += 1
        if self.run.rate_mode and f["type"] == "delta":
            self.run.lat.append(time.time_ns() - f["ts"])
        if self.n == self.expected:
            self.finish()


VARIANTS = {"receive": Receive, "msgspec": MsgspecDecode, "orjson": OrjsonDecode}


if __name__ == "__main__":
    args = parse_args(variants=tuple(VARIANTS))
    picows_base.main("raw", args, VARIANTS[args.variant])
