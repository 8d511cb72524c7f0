"""The demo's embedded reference gateway: a child process on loopback that never outlives us.

``python -m tickpipe gateway --port 0 --admin-port 0 --ready-json ...`` is started in its own
process group (so the terminal's Ctrl-C reaches only the demo, which then stops the gateway in
order), with ``PR_SET_PDEATHSIG`` on Linux (so even a ``kill -9`` of the demo takes the gateway
with it). :meth:`EmbeddedGateway.start` waits for the one JSON ``ready`` line on the child's
stdout; the rest of its stdout is drained and kept (last 50 lines) so the pipe never fills, and
its stderr goes to a temporary file that is quoted when it fails to start.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from tickpipe.errors import TickpipeError

PR_SET_PDEATHSIG = 1


class GatewayStartError(TickpipeError):
    """The embedded gateway exited or stayed silent before printing its ready line."""


@dataclass(frozen=True, slots=True)
class GatewayReady:
    """The ready line: where the gateway serves. ``extra`` keeps any other field it printed."""

    pid: int
    stream_url: str
    rest_url: str
    admin_url: str | None
    admin_token: str | None
    extra: dict[str, Any] = field(default_factory=dict)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """In the child before exec: ask Linux to SIGTERM us when the demo dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def parse_ready_line(line: bytes, pid: int) -> GatewayReady | None:
    """The ready info when ``line`` is the gateway's JSON ready line, else None."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("event") != "ready":
        return None
    try:
        stream_url, rest_url = str(obj["stream_url"]), str(obj["rest_url"])
    except KeyError:
        return None
    admin_url = obj.get("admin_url")
    token = obj.get("admin_token")
    known = {"event", "stream_url", "rest_url", "admin_url", "admin_token"}
    return GatewayReady(
        pid=pid,
        stream_url=stream_url,
        rest_url=rest_url,
        admin_url=None if admin_url is None else str(admin_url),
        admin_token=None if token is None else str(token),
        extra={k: v for k, v in obj.items() if k not in known},
    )


class EmbeddedGateway:
    """Start, watch and stop ``tickpipe gateway`` as a child process.

    - ``gateway_args``: extra arguments after ``gateway --port 0 --admin-port 0 --ready-json``
      (``--seed``, ``--rate``, ``--faults``...).
    - ``ready_timeout_s`` (20 s): how long to wait for the ready line (a cold start imports
      aiohttp and builds the books: ~1 s on a quiet machine).
    - ``python`` (this interpreter): the interpreter that runs the gateway.
    - ``env``: variables set for the child on top of this process's environment (secrets go
      here, e.g. ``TICKPIPE_KEY``/``TICKPIPE_SECRET``, never into ``gateway_args``).
    """

    def __init__(
        self,
        gateway_args: list[str] | None = None,
        *,
        ready_timeout_s: float = 20.0,
        python: str = sys.executable,
        env: dict[str, str] | None = None,
    ) -> None:
        self.extra_env = dict(env or {})
        self.argv = [
            python,
            "-m",
            "tickpipe",
            "gateway",
            "--port",
            "0",
            "--admin-port",
            "0",
            "--ready-json",
            *(gateway_args or []),
        ]
        self.ready_timeout_s = ready_timeout_s
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: GatewayReady | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=50)
        self._stderr: IO[bytes] | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> GatewayReady:
        # closed in stop(): it must outlive this method (the child writes to it)
        self._stderr = tempfile.TemporaryFile(prefix="tickpipe-demo-gateway-")  # noqa: SIM115
        env = dict(os.environ)
        env.pop("PYTHONINSPECT", None)
        env.update(self.extra_env)
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env=env,
        )
        try:
            self.ready = await asyncio.wait_for(self._read_ready(), self.ready_timeout_s)
        except TimeoutError:
            await self.stop()
            raise GatewayStartError(
                f"the embedded gateway printed no ready line within {self.ready_timeout_s:.0f} s"
                f"{self._stderr_tail()}"
            ) from None
        except GatewayStartError:
            await self.stop()
            raise
        self._drain = asyncio.create_task(self._drain_stdout(), name="gateway-stdout")
        return self.ready

    async def _read_ready(self) -> GatewayReady:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                code = await self.proc.wait()
                raise GatewayStartError(
                    f"the embedded gateway exited with code {code} before it was ready"
                    f"{self._stderr_tail()}"
                )
            ready = parse_ready_line(line, self.proc.pid)
            if ready is not None:
                return ready
            self.output.append(line.decode(errors="replace").rstrip())

    async def _drain_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.output.append(line.decode(errors="replace").rstrip())

    def _stderr_tail(self, n: int = 15) -> str:
        f = self._stderr
        if f is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            f.seek(0)
            lines = f.read().decode(errors="replace").strip().splitlines()[-n:]
            if lines:
                return ":\n  " + "\n  ".join(lines)
        return ""

    async def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM the gateway's process group, SIGKILL it after ``timeout_s``; reap it.

        Safe to call more than once and when the child already exited. Returns its exit code.
        """
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        else:  # the leader is gone; make sure nothing it started lingers
            _signal_group(proc.pid, signal.SIGKILL)
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
            self._drain = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return proc.returncode

    def kill_now(self) -> None:
        """Synchronous last resort (for ``finally`` blocks outside the loop): SIGKILL the group."""
        if self.proc is not None and self.proc.returncode is None:
            _signal_group(self.proc.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
