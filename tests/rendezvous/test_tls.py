"""Issue 13 item 14: the rendezvous over TLS, and clients that verify it.

A throwaway CA made with the ``openssl`` CLI (``cryptography`` is not a dependency): a good
leaf for 127.0.0.1/localhost, a leaf for another host name, and an expired leaf.
"""
from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from _rdv_helpers import SECRET

from execrelay.executor import ExecServer
from execrelay.executor.remote import RegistryError, RemoteExecutor, RemoteExecutorConfig, register
from execrelay.harness.client import HarnessClient
from execrelay.rendezvous import RendezvousServer
from execrelay.transport.tls import client_context, server_context

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _leaf(d: Path, name: str, san: str, days: str) -> tuple[str, str]:
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", f"{name}.pem", "-days", days, "-extfile", f"{name}.ext", cwd=d)
    return str(d / f"{name}.pem"), str(d / f"{name}.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("pki")
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=execrelay test CA", "-days", "2",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
         cwd=d)
    return {
        "ca": str(d / "ca.pem"),
        "good": _leaf(d, "good", "IP:127.0.0.1,DNS:localhost", "2"),
        "wrong_host": _leaf(d, "wrong", "DNS:other.example", "2"),
        "expired": _leaf(d, "expired", "IP:127.0.0.1,DNS:localhost", "-1"),  # notAfter < now
    }


async def _tls_server(leaf: tuple[str, str], **overrides: object) -> RendezvousServer:
    overrides.setdefault("heartbeat", None)
    server = RendezvousServer(SECRET, **overrides)  # type: ignore[arg-type]
    await server.start("127.0.0.1", 0, ssl_context=server_context(*leaf))
    return server


async def test_executor_and_harness_over_tls(pki, tmp_path) -> None:
    server = await _tls_server(pki["good"])
    executor = None
    task = None
    try:
        assert server.url.startswith("https://")
        config = RemoteExecutorConfig.with_bearer_token(
            server.url, "tls-exec", server.mint_token("executor", "tls-exec"))
        config.ca_file = pki["ca"]
        _, url = await register(config)
        assert url.startswith("wss://")  # the registry answers wss:// when serving TLS
        executor = RemoteExecutor(config, ExecServer())
        task = asyncio.ensure_future(executor.run())
        await asyncio.wait_for(executor.connected.wait(), 10)
        async with HarnessClient(server.harness_url("tls-exec"), ca_file=pki["ca"]) as client:
            session = await asyncio.wait_for(client.open_session(), 10)
            result = await asyncio.wait_for(
                session.call("fs/getMetadata", {"path": str(tmp_path)}), 10)
            assert result["isDirectory"] is True
    finally:
        if executor is not None:
            executor.close()
        if task is not None:
            await asyncio.wait_for(task, 10)
        await server.aclose()


async def test_clients_refuse_unknown_ca_wrong_host_and_expired(pki) -> None:
    for leaf, ca in ((pki["good"], None), (pki["wrong_host"], pki["ca"]), (pki["expired"], pki["ca"])):
        server = await _tls_server(leaf)
        try:
            config = RemoteExecutorConfig.with_bearer_token(
                server.url, "e", server.mint_token("executor", "e"))
            config.ca_file = ca  # type: ignore[assignment]
            with pytest.raises(RegistryError, match="certificate verify failed"):
                await register(config)
            client = HarnessClient(server.harness_url("e"), ca_file=ca, connect_timeout=5)
            with pytest.raises(ssl.SSLCertVerificationError):
                await client.connect()
            await client.aclose()
        finally:
            await server.aclose()


async def test_forwarded_proto_only_behind_the_option(pki) -> None:
    headers = {"Authorization": "", "X-Forwarded-Proto": "https"}
    for trust, scheme in ((False, "ws://"), (True, "wss://")):
        server = RendezvousServer(SECRET, heartbeat=None, trust_forwarded_proto=trust)
        await server.start("127.0.0.1", 0)
        try:
            headers["Authorization"] = f"Bearer {server.mint_token('executor', 'e')}"
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{server.url}/cloud/executor/e/register",
                                     headers=headers) as resp:
                    assert resp.status == 200
                    assert (await resp.json())["url"].startswith(scheme)
        finally:
            await server.aclose()


def test_client_context_verifies() -> None:
    ctx = client_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
