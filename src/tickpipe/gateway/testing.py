"""Run the gateway as a subprocess in tests and scripts: :class:`GatewayProcess`.

    with GatewayProcess("--rate", "50") as gp:
        gp.stream_url, gp.rest_url, gp.admin_url, gp.admin_token, gp.key, gp.secret

It starts ``python -m tickpipe gateway --port 0 --admin-port 0 --ready-json *extra_args`` with
the key pair in the child's ``TICKPIPE_KEY``/``TICKPIPE_SECRET`` (never on its command line,
which ``ps`` shows to every user), waits (bounded) for the ready line, and always stops the
process on exit (SIGTERM, then SIGKILL after ``stop_timeout_s``). Stderr (the structured log)
goes to a temporary file readable with :meth:`GatewayProcess.log_text`.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Any

from tickpipe.errors import TickpipeError
from tickpipe.gateway.config import DEMO_KEY, DEMO_SECRET


class GatewayStartError(TickpipeError):
    """The gateway process exited or said nothing within the ready timeout."""


class GatewayProcess:
    """A gateway subprocess; see the module docstring.

    - ``key``/``secret`` (demo pair): set as ``TICKPIPE_KEY``/``TICKPIPE_SECRET`` in the child's
      environment (over any inherited value), so the caller's environment cannot change them.
    - ``ready_timeout_s`` (20.0): how long to wait for the ready line.
    - ``stop_timeout_s`` (5.0): how long SIGTERM gets before SIGKILL.
    """

    def __init__(
        self,
        *extra_args: str,
        key: str = DEMO_KEY,
        secret: str = DEMO_SECRET,
        ready_timeout_s: float = 20.0,
        stop_timeout_s: float = 5.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = [
            sys.executable, "-m", "tickpipe", "gateway",
            "--port", "0", "--admin-port", "0", "--ready-json", *extra_args,
        ]  # fmt: skip
        self.key = key
        self.secret = secret
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self.returncode: int | None = None
        self._log: IO[bytes] | None = None

    # -- what the ready line said ------------------------------------------------------------
    @property
    def stream_url(self) -> str:
        return str(self.ready["stream_url"])

    @property
    def rest_url(self) -> str:
        return str(self.ready["rest_url"])

    @property
    def admin_url(self) -> str:
        return str(self.ready["admin_url"])

    @property
    def admin_token(self) -> str:
        return str(self.ready["admin_token"])

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_text(self) -> str:
        """Everything the gateway wrote on stderr so far."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return f.read().decode(errors="replace")

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> GatewayProcess:
        self._log = tempfile.NamedTemporaryFile(prefix="tickpipe-gateway-", suffix=".log")  # noqa: SIM115
        env = dict(os.environ if self.env is None else self.env)
        env.update(TICKPIPE_KEY=self.key, TICKPIPE_SECRET=self.secret)
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, env=env
        )
        try:
            self.ready = self._read_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_ready(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        deadline = time.monotonic() + self.ready_timeout_s
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(out, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GatewayStartError(
                        f"gateway not ready within {self.ready_timeout_s} s; "
                        f"log:\n{self.log_text()}"
                    )
                if not sel.select(left):
                    continue
                chunk = os.read(out.fileno(), 65536)
                if not chunk:
                    raise GatewayStartError(
                        f"gateway exited ({self.proc.wait()}) before ready; log:\n{self.log_text()}"
                    )
                buf += chunk
        line = buf.split(b"\n", 1)[0]
        ready: dict[str, Any] = json.loads(line)
        if ready.get("event") != "ready":
            raise GatewayStartError(f"unexpected first stdout line: {line!r}")
        return ready

    def stop(self) -> int | None:
        """SIGTERM, wait up to ``stop_timeout_s``, then SIGKILL. Returns the exit code."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(self.stop_timeout_s)
        if proc is not None:
            self.returncode = proc.returncode
            if proc.stdout is not None:
                proc.stdout.close()
        return self.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None
