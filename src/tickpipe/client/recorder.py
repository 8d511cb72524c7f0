"""The seam through which a recorder sees what the client receives (``tickpipe record``).

The shell calls a :class:`Recorder` (when one is given: ``Client(recorder=...)``) with
everything a book depends on, as received: each stream frame (the reader's text callback is
wrapped once per connection, no cost when there is no recorder), each REST answer body
(``RestClient.request_bytes``), which snapshot outcome went to which book seeding
(``SnapshotScheduler``), connection events and the (un)subscribe requests sent (the
supervisor). Every call is made on the event loop and must return at once: the implementation
(``tickpipe.record.writer.RecordingWriter``) only queues, bounded, for a writer thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

TextHandler = Callable[[bytes | memoryview], None]


class Recorder(Protocol):
    def wrap_text(self, handler: TextHandler, opened: bool) -> TextHandler:
        """A text handler that records each frame, then calls ``handler``. ``opened``: after
        the venue's open answer (frames that feed the books); False: before it."""
        ...

    def rest(
        self, method: str, path: str, status: int, body: bytes, retry_after: str | None
    ) -> None:
        """A REST answer (status 0: none came)."""
        ...

    def snapshot_delivered(
        self, channel: str, epoch: int, error: BaseException | None, retry_after_s: float | None
    ) -> None:
        """A snapshot fetch's outcome handed to the book of ``channel`` for ``epoch``."""
        ...

    def connection(self, what: str, **fields: Any) -> None:
        """connected | disconnected | reconnecting | connect_retry | snapshot_overdue."""
        ...

    def sent(self, req_id: int, kind: str, channels: list[str]) -> None:
        """An (un)subscribe request sent with id ``req_id``."""
        ...
