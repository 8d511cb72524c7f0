"""A benchmark sender (``sender``, ``sat_sender``, ``venue_flood_sender``) as a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class SenderProc:
    """``python -m benchmarks.<module> --corpus DIR --stop-on-stdin-eof [args] [--cpu N]``,
    started and waited for (its first stdout line, the JSON ``ready`` event, is ``ready``);
    it stops when :meth:`stop` closes its stdin (terminated if it is not gone 10 s later)."""

    def __init__(
        self, module: str, corpus: Path, args: Sequence[str] = (), cpu: int | None = None
    ) -> None:
        cmd = [sys.executable, "-m", f"benchmarks.{module}", "--corpus", str(corpus)]
        cmd += ["--stop-on-stdin-eof", *args]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"benchmarks.{module} exited before it was ready")
        self.ready: dict[str, Any] = json.loads(line)
        self.stream_url: str = self.ready["stream_url"]
        self.rest_url: str = self.ready["rest_url"]

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=10)
