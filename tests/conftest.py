"""Shared fixtures: a reference gateway in-process (``gateway``) or as a subprocess
(``gateway_process``), both on 127.0.0.1 with free ports, the demo key pair and a modest rate.

    async def test_x(gateway):            # tickpipe.gateway.Gateway, running
        gateway.stream_url, gateway.rest_url, gateway.admin_url, gateway.admin_token
        gateway.key, gateway.secret       # "demo", "demo-secret"
        gateway.true_book("AAPL", seq)

    def test_y(gateway_process):          # tickpipe.gateway.testing.GatewayProcess, ready
        gateway_process.stream_url, ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tickpipe import hotpath
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.gateway.testing import GatewayProcess

GATEWAY_RATE = 50.0  # deltas a second per instrument: enough to see flow, light on 2 cores
GATEWAY_HEARTBEAT_MS = 1000


def gateway_config(**overrides: object) -> GatewayConfig:
    """The fixtures' config (free ports, demo keys, seed 1, modest rate), with overrides."""
    base: dict[str, object] = {
        "port": 0,
        "admin_port": 0,
        "seed": 1,
        "rate": GATEWAY_RATE,
        "heartbeat_ms": GATEWAY_HEARTBEAT_MS,
        "keys": (("demo", "demo-secret"),),
        "admin_token": "test-admin-token",
    }
    base.update(overrides)
    return GatewayConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """A running in-process gateway (see the module docstring)."""
    async with Gateway(gateway_config()) as gw:
        yield gw


@pytest.fixture
def gateway_process() -> Iterator[GatewayProcess]:
    """A gateway subprocess, ready; stopped (and killed if need be) after the test."""
    with GatewayProcess(
        "--rate", str(GATEWAY_RATE), "--heartbeat-ms", str(GATEWAY_HEARTBEAT_MS)
    ) as gp:
        yield gp


@pytest.fixture(params=["compiled", "pure"])
def hot_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test once on the compiled hot path and once on the pure-Python reference
    (``tickpipe.hotpath.pure()``); the compiled run is skipped only where it is not built
    (``tests/test_hotpath.py`` fails loudly then). Hypothesis tests taking it suppress
    ``HealthCheck.function_scoped_fixture``: the path holds for every example."""
    if request.param == "pure":
        with hotpath.pure():
            yield "pure"
        return
    if hotpath.hot is None:
        pytest.skip(f"compiled hot path not in use: {hotpath.describe()}")
    yield "compiled"
