"""``wss://`` and ``https://``: verified against the system's CA store (or ``ca_file``), never
unverified. The real gateway serves TLS with a certificate of a local CA made by ``trustme``:

- trusted (``ca_file``, ``--ca-file`` or ``SSL_CERT_FILE``): books sync over wss + https, on
  VTS/1 and on the ``binance`` dialect (wss stream + https REST snapshots), equal to the truth;
- not trusted (the system store, another CA, a certificate for another host name): start-up
  fails at once with :class:`CertificateRejected` naming OpenSSL's reason; no retry loop, and
  the gateway keeps serving other clients.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.integration.conftest import assert_books_match_truth
from tickpipe import Client
from tickpipe.client.config import ClientConfig
from tickpipe.errors import CertificateRejected, ConfigError
from tickpipe.gateway import Gateway, GatewayConfig
from tickpipe.protocol.backoff import BackoffPolicy

WAIT_S = 20.0  # generous: the machine is shared
FAST_RECONNECT = BackoffPolicy(base_s=0.05, cap_s=0.4, healthy_after_s=5.0)
UNKNOWN_CA = "unable to get local issuer certificate"


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: str  # the CA that issued the gateway's certificate
    other_ca: str  # a CA that did not
    cert: str  # the gateway's chain for 127.0.0.1 and localhost
    key: str
    cert_localhost_only: str  # a chain valid for "localhost" only (served on 127.0.0.1)
    key_localhost_only: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    d = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    other.cert_pem.write_to_path(str(d / "other-ca.pem"))
    for name, hosts in (("server", ("127.0.0.1", "localhost")), ("localhost", ("localhost",))):
        cert = ca.issue_cert(*hosts)
        (d / f"{name}.pem").write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(d / f"{name}.key"))
    yield Pki(
        ca=str(d / "ca.pem"),
        other_ca=str(d / "other-ca.pem"),
        cert=str(d / "server.pem"),
        key=str(d / "server.key"),
        cert_localhost_only=str(d / "localhost.pem"),
        key_localhost_only=str(d / "localhost.key"),
    )


def tls_config(pki: Pki, **over: Any) -> GatewayConfig:
    base: dict[str, Any] = {
        "port": 0,
        "admin_port": 0,
        "seed": 7,
        "rate": 40.0,
        "heartbeat_ms": 500,
        "tls_cert_file": pki.cert,
        "tls_key_file": pki.key,
    }
    base.update(over)
    return GatewayConfig(**base)


@pytest.fixture
async def vts_tls(pki: Pki) -> AsyncIterator[Gateway]:
    async with Gateway(tls_config(pki)) as g:
        yield g


@pytest.fixture
async def binance_tls(pki: Pki) -> AsyncIterator[Gateway]:
    async with Gateway(tls_config(pki, dialect="binance")) as g:
        yield g


def vts_client(g: Gateway, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("snapshot_jitter_s", 0.02)
    return Client(g.stream_url, g.rest_url, key=g.key, secret=g.secret, **knobs)


def binance_client(g: Gateway, **knobs: Any) -> Client:
    knobs.setdefault("reconnect", FAST_RECONNECT)
    knobs.setdefault("snapshot_jitter_s", 0.02)
    return Client(venue="binance", stream_url=g.stream_url, rest_url=g.rest_url, **knobs)


async def _sync_and_check(client: Client, gw: Gateway, symbols: list[str]) -> None:
    async with client:
        res = await client.subscribe([f"orderbook:{s}" for s in symbols])
        assert sorted(res.accepted) == sorted(f"orderbook:{s}" for s in symbols)
        for s in symbols:
            await client.wait_synced(s, timeout=WAIT_S)
        assert client.stats().connection == "connected"
        assert assert_books_match_truth(client, gw) == len(symbols)


async def _refused(client: Client, url_prefix: str, reason: str) -> CertificateRejected:
    """``start()`` raises CertificateRejected naming ``reason`` well before its timeout."""
    t0 = time.monotonic()
    with pytest.raises(CertificateRejected) as info:
        await client.start()
    took = time.monotonic() - t0
    assert took < client.config.first_connect_timeout_s / 2, f"refused only after {took:.1f}s"
    exc = info.value
    assert exc.url.startswith(url_prefix), exc.url
    assert reason in exc.reason, exc.reason
    assert reason in str(exc) and "ca_file" in str(exc)
    return exc


# -- the gateway's TLS option ------------------------------------------------------------------
async def test_gateway_urls_say_wss_and_https(vts_tls: Gateway, binance_tls: Gateway) -> None:
    assert vts_tls.stream_url.startswith("wss://127.0.0.1:")
    assert vts_tls.rest_url.startswith("https://127.0.0.1:")
    assert binance_tls.stream_url == f"wss://127.0.0.1:{binance_tls.port}"
    assert binance_tls.rest_url == f"https://127.0.0.1:{binance_tls.port}"


def test_gateway_tls_needs_both_files(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file"):
        GatewayConfig(tls_cert_file=pki.cert)
    with pytest.raises(ConfigError, match="tls_cert_file and tls_key_file"):
        GatewayConfig(tls_key_file=pki.key)


async def test_gateway_bad_tls_file_is_a_config_error_naming_it(pki: Pki) -> None:
    gw = Gateway(tls_config(pki, tls_cert_file=pki.ca, tls_key_file="/nonexistent.key"))
    with pytest.raises(ConfigError, match="tls_cert_file") as info:
        await gw.start()
    assert "/nonexistent.key" in str(info.value)
    await gw.stop()


# -- trusted: books sync over wss + https ------------------------------------------------------
async def test_vts_over_tls_with_ca_file_syncs_books_equal_to_truth(
    vts_tls: Gateway, pki: Pki
) -> None:
    client = vts_client(vts_tls, ca_file=pki.ca)
    assert client.stream_url.startswith("wss://") and client.rest_url.startswith("https://")
    await _sync_and_check(client, vts_tls, ["BTC-USD", "AAPL"])


async def test_binance_dialect_over_tls_syncs_books_from_https_snapshots(
    binance_tls: Gateway, pki: Pki
) -> None:
    client = binance_client(binance_tls, ca_file=pki.ca)
    assert client.stream_url == binance_tls.stream_url + "/ws"
    await _sync_and_check(client, binance_tls, ["BTCUSDT", "ETHUSDT"])
    assert client.stats().snapshot_requests >= 2  # seeded over https


# -- not trusted: refused at once, by name, nothing else broken -------------------------------
async def test_vts_system_store_does_not_trust_a_private_ca(vts_tls: Gateway, pki: Pki) -> None:
    client = vts_client(vts_tls, first_connect_timeout_s=30.0)
    await _refused(client, "https://127.0.0.1:", UNKNOWN_CA)
    # the gateway keeps serving: a client that trusts the CA syncs
    await _sync_and_check(vts_client(vts_tls, ca_file=pki.ca), vts_tls, ["ETH-USD"])


async def test_binance_another_ca_is_refused(binance_tls: Gateway, pki: Pki) -> None:
    client = binance_client(binance_tls, ca_file=pki.other_ca, first_connect_timeout_s=30.0)
    await _refused(client, "https://127.0.0.1:", UNKNOWN_CA)
    await _sync_and_check(binance_client(binance_tls, ca_file=pki.ca), binance_tls, ["BTCUSDT"])


async def test_certificate_for_another_host_name_is_refused(pki: Pki) -> None:
    cfg = tls_config(
        pki, tls_cert_file=pki.cert_localhost_only, tls_key_file=pki.key_localhost_only
    )
    async with Gateway(cfg) as g:  # served on 127.0.0.1 with a certificate for localhost
        client = vts_client(g, ca_file=pki.ca, first_connect_timeout_s=30.0)
        await _refused(client, "https://127.0.0.1:", "mismatch")


async def test_untrusted_stream_is_refused_by_the_supervisor(vts_tls: Gateway) -> None:
    """REST over plain http (trusted), the stream over wss with an unknown CA: the stream's
    own connect refuses it at once (no connect_retry loop), naming the wss:// URL."""
    async with Gateway(GatewayConfig(port=0, admin_port=None, seed=7)) as plain:
        client = Client(
            vts_tls.stream_url,
            plain.rest_url,
            key=vts_tls.key,
            secret=vts_tls.secret,
            venue="vts",
            first_connect_timeout_s=30.0,
        )
        events = client.events()
        exc = await _refused(client, "wss://127.0.0.1:", UNKNOWN_CA)
        assert exc.url == vts_tls.stream_url
        seen = []
        with pytest.raises(StopAsyncIteration):  # the feed ends with the closed client
            while True:
                seen.append(await asyncio.wait_for(events.__anext__(), 5.0))
        assert not [e for e in seen if e.name == "connect_retry"], seen


def test_ca_file_is_checked_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ca_file '/nonexistent\.pem'"):
        ClientConfig(ca_file="/nonexistent.pem")
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="ca_file"):
        Client(ca_file=str(empty))


def test_no_setting_turns_verification_off() -> None:
    names = set(ClientConfig.__dataclass_fields__)
    for word in ("verify", "insecure", "ssl", "tls", "cert_reqs", "check_hostname"):
        assert not [n for n in names if word in n], names


# -- the CLI: --ca-file, and SSL_CERT_FILE honoured --------------------------------------------
async def _watch(gw: Gateway, *extra: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tickpipe",
        "watch",
        "--venue",
        "binance",
        "orderbook:BTCUSDT",
        "--stream-url",
        gw.stream_url,
        "--rest-url",
        gw.rest_url,
        "--duration",
        "15",
        "--jsonl",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60.0)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _env(**over: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["TICKPIPE_NO_UVLOOP"] = ""
    env.update(over)
    return env


def _synced_in(out: str) -> bool:
    return any(
        e.get("event") == "synced" for e in (json.loads(x) for x in out.splitlines() if x.strip())
    )


@pytest.mark.slow
@pytest.mark.parametrize("how", ["--ca-file", "SSL_CERT_FILE"])
async def test_watch_trusts_the_ca_by_flag_or_environment(
    binance_tls: Gateway, pki: Pki, how: str
) -> None:
    if how == "--ca-file":
        code, out, err = await _watch(binance_tls, "--ca-file", pki.ca, env=_env())
    else:
        code, out, err = await _watch(binance_tls, env=_env(SSL_CERT_FILE=pki.ca))
    assert code == 0, err
    assert _synced_in(out), out[-2000:]


@pytest.mark.slow
async def test_watch_untrusted_exits_1_naming_the_certificate(binance_tls: Gateway) -> None:
    t0 = time.monotonic()
    code, out, err = await _watch(binance_tls, env=_env())
    assert code == 1, (out, err)
    assert "TLS certificate of https://127.0.0.1:" in err and UNKNOWN_CA in err, err
    assert time.monotonic() - t0 < 14.0  # refused at once, not at the end of --duration
    assert "Traceback" not in err, err


def test_watch_bad_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    import subprocess

    r = subprocess.run(
        [sys.executable, "-m", "tickpipe", "watch", "orderbook:AAPL", "--ca-file", "/nope.pem"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r
    assert "ca_file '/nope.pem'" in r.stderr
