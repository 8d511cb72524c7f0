"""Single key presses from the terminal, without blocking the event loop.

:class:`KeyReader` puts a terminal stdin in cbreak mode (keys arrive one by one, no echo; Ctrl-C
still raises SIGINT) and registers the fd with the loop, so each key lands in an
``asyncio.Queue``. Leaving the ``with`` block restores the saved terminal settings, whatever
ended it. When stdin is not a terminal (a pipe, CI) nothing is changed and no key ever comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from typing import Any


class KeyReader:
    """Context manager; ``await keys.get()`` returns the next key as a one-character string."""

    def __init__(self, fd: int | None = None) -> None:
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=64)
        self.interactive = False
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> KeyReader:
        try:
            is_tty = os.isatty(self.fd)
        except OSError:
            is_tty = False
        if not is_tty:
            return self
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._on_readable)
        self.interactive = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the terminal back as it was (idempotent)."""
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.fd)
            self._loop = None
        if self._saved is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        self.interactive = False

    def _on_readable(self) -> None:
        try:
            data = os.read(self.fd, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the terminal went away: stop reading, treat it as quit
            if self._loop is not None:
                self._loop.remove_reader(self.fd)
            data = b"q"
        for ch in data.decode(errors="ignore"):
            if ch == "\x1b":  # escape sequences (arrows...) are ignored
                continue
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(ch)

    async def get(self) -> str:
        return await self.queue.get()
