"""Registrations valid on every node (docs/rendezvous.md §Several nodes, "Registrations"): the
P5.1 executor registrations and the 0.171 Noise registry, shared through the ``rdv_reg`` bucket.

* a Noise registration on n1 answers ``/connect`` on n2 and ``/validate`` on n3;
* an executor URL minted by n1 takes the executor over on n2 (same registration), while
  another registration of the id, live on n1, gets on n2 the 409 a single node gives;
* a re-registration on one node is what every other node hands out next;
* an expired registration is gone on every node; an entry without the secret's MAC is ignored;
* the real 0.171 ``codex exec`` with its registry on n2 drives the real 0.171
  ``codex exec-server --remote`` registered on n1, every frame across NATS.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import nats
import orjson
import pytest

from execrelay.rendezvous import RendezvousServer
from execrelay.rendezvous.cluster.registrations import BUCKET, env_key
from execrelay.stream import noise
from interop.conftest import codex171_bin, process_factory  # noqa: F401 - fixtures
from interop.test_noise171 import _noise_tool_call
from nodes import SECRET, Cluster, Node
from test_cluster_codex import _wait_owned

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster(shared_cluster: Cluster) -> Cluster:
    """These cases kill nothing: one cluster for the module (distinct ids)."""
    return shared_cluster


async def _post(http: aiohttp.ClientSession, base: str, path: str, bearer: str,
                body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{base}{path}", headers={"Authorization": f"Bearer {bearer}"},
                         json=body) as resp:
        return resp.status, await resp.json()


async def _noise_register(http: aiohttp.ClientSession, base: str, env: str, bearer: str,
                          key: noise.StaticKeyPair) -> dict[str, Any]:
    status, body = await _post(http, base, f"/cloud/environment/{env}/register", bearer,
                               {"security_profile": noise.SECURITY_PROFILE,
                                "executor_public_key": key.public.to_json()})
    assert status == 200, body
    return body


async def _noise_connect(http: aiohttp.ClientSession, base: str, env: str, bearer: str,
                         key: noise.StaticKeyPair) -> tuple[int, dict[str, Any]]:
    return await _post(http, base, f"/cloud/environment/{env}/connect", bearer,
                       {"harness_public_key": key.public.to_json()})


async def test_noise_registration_on_n1_answers_connect_on_n2_and_validate_on_n3(cluster: Cluster) -> None:
    n1, n2, n3 = cluster.nodes
    env = f"env-{uuid.uuid4().hex[:8]}"
    executor_key, harness_key = noise.StaticKeyPair.generate(), noise.StaticKeyPair.generate()
    executor_token, harness_token = cluster.executor_token(env), cluster.harness_token(env)
    reads_before = (await n2.metrics())["cluster_registration_reads_total"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        status, body = await _noise_connect(http, n2.url, env, harness_token, harness_key)
        assert status == 503 and body["error"]["code"] == "environment_unavailable", body
        reg = await _noise_register(http, n1.url, env, executor_token, executor_key)
        status, conn = await _noise_connect(http, n2.url, env, harness_token, harness_key)
        assert status == 200, conn
        assert conn["executor_registration_id"] == reg["executor_registration_id"]
        assert conn["executor_public_key"] == executor_key.public.to_json()
        assert conn["url"].startswith(n2.ws_url + "/harness?")
        validate = {"executor_registration_id": reg["executor_registration_id"],
                    "harness_public_key": harness_key.public.to_json(),
                    "harness_key_authorization": conn["harness_key_authorization"]}
        path = f"/cloud/environment/{env}/validate"
        assert await _post(http, n3.url, path, executor_token, validate) == (200, {"valid": True})
        other = {**validate, "harness_public_key": noise.StaticKeyPair.generate().public.to_json()}
        assert await _post(http, n3.url, path, executor_token, other) == (200, {"valid": False})
    # n2 read the bucket once on its miss, and has it cached since
    assert (await n2.metrics())["cluster_registration_reads_total"] > reads_before


def _on(url: str, node: Node) -> str:
    """``url`` with the host and port of ``node`` (an executor URL minted by another node)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=urlsplit(node.ws_url).netloc))


async def _register(http: aiohttp.ClientSession, base: str, eid: str, bearer: str) -> str:
    status, body = await _post(http, base, f"/cloud/executor/{eid}/register", bearer, {})
    assert status == 200, body
    return str(body["url"])


async def _refusal(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    """The HTTP status and body a websocket upgrade to ``url`` is refused with."""
    async with http.get(url, headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                      "Sec-WebSocket-Version": "13",
                                      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as resp:
        return resp.status, await resp.text()


async def _single_node_answer(eid: str) -> tuple[int, str]:
    """What one rendezvous answers a second registration's socket while the first is live."""
    server = RendezvousServer(SECRET, heartbeat=None)
    await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            first = await _register(http, server.url, eid, server.mint_token("executor", eid))
            async with http.ws_connect(first):
                await asyncio.sleep(1.05)  # another second: another URL token (see below)
                second = await _register(http, server.url, eid, server.mint_token("executor", eid, 7200))
                return await _refusal(http, second)
    finally:
        await server.aclose()


async def test_registration_from_n1_holds_on_n2(cluster: Cluster) -> None:
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    eid = f"p51-{uuid.uuid4().hex[:8]}"
    expected = await _single_node_answer(eid)
    assert expected[0] == 409, expected
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        first_url = await _register(http, n1.url, eid, cluster.executor_token(eid))
        async with http.ws_connect(first_url) as first:
            await _wait_owned(cluster, n1, eid, _NoProcess())
            # URL tokens are stateless: minted for one id within one second they are one token
            await asyncio.sleep(1.05)
            # another registration of the id (another bearer token), on n2: refused as on one node
            second_url = await _register(http, n2.url, eid, cluster.executor_token(eid, 7200))
            assert await _refusal(http, second_url) == expected
            assert not first.closed
            # the URL n1 handed out belongs to the first registration on n2 too: a takeover
            async with http.ws_connect(_on(first_url, n2)):
                await _wait_owned(cluster, n2, eid, _NoProcess())
                msg = await asyncio.wait_for(first.receive(), 10)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg


class _NoProcess:
    """``_wait_owned`` watches an executor process; these executors are the test's sockets."""

    proc = None

    def stderr_text(self) -> str:
        return ""


async def test_re_registration_on_n3_is_what_n1_hands_out_next(cluster: Cluster) -> None:
    n1, n2, n3 = cluster.nodes
    env = f"env-{uuid.uuid4().hex[:8]}"
    harness_key = noise.StaticKeyPair.generate()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        first = await _noise_register(http, n2.url, env, cluster.executor_token(env),
                                      noise.StaticKeyPair.generate())
        status, conn = await _noise_connect(http, n1.url, env, cluster.harness_token(env), harness_key)
        assert status == 200 and conn["executor_registration_id"] == first["executor_registration_id"]
        new_key = noise.StaticKeyPair.generate()  # the executor restarted with a new key
        second = await _noise_register(http, n3.url, env, cluster.executor_token(env), new_key)
        assert second["executor_registration_id"] != first["executor_registration_id"]
        deadline = time.monotonic() + 2.0  # n1 hears of the rewrite within NATS delivery time
        while True:
            status, conn = await _noise_connect(http, n1.url, env, cluster.harness_token(env), harness_key)
            assert status == 200, conn
            if conn["executor_registration_id"] == second["executor_registration_id"] \
                    or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert conn["executor_registration_id"] == second["executor_registration_id"]
        assert conn["executor_public_key"] == new_key.public.to_json()


async def test_expired_registration_is_gone_on_every_node(cluster: Cluster) -> None:
    env = f"env-{uuid.uuid4().hex[:8]}"
    harness_key = noise.StaticKeyPair.generate()
    n1 = cluster.node("n1")
    # the registration lives as long as the executor's bearer token (docs/rendezvous.md)
    bearer = cluster.executor_token(env, ttl=3)
    expiry = int(bearer.split(".")[1])
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        await _noise_register(http, n1.url, env, bearer, noise.StaticKeyPair.generate())
        for node in cluster.nodes:  # known (and now cached) everywhere
            status, body = await _noise_connect(http, node.url, env, cluster.harness_token(env), harness_key)
            assert status == 200, (node.node_id, body)
        await asyncio.sleep(max(0.0, expiry - time.time()) + 0.2)
        for node in cluster.nodes:
            status, body = await _noise_connect(http, node.url, env, cluster.harness_token(env), harness_key)
            assert status == 503 and body["error"]["code"] == "environment_unavailable", (node.node_id, body)


async def test_entry_without_the_secrets_mac_is_ignored(cluster: Cluster) -> None:
    """A NATS user without the token secret cannot plant an executor key for harnesses."""
    env = f"env-{uuid.uuid4().hex[:8]}"
    n2 = cluster.node("n2")
    planted = noise.StaticKeyPair.generate()
    payload = orjson.dumps({"rid": "reg-" + "0" * 32, "key": planted.public.to_json(),
                            "exp": time.time() + 600})
    nc = await nats.connect(cluster.nats.url, connect_timeout=5, max_reconnect_attempts=2)
    try:
        kv = await nc.jetstream().key_value(BUCKET)
        await kv.put(env_key(env), b"0" * 64 + payload)
    finally:
        await nc.close()
    errors = (await n2.metrics())["cluster_registration_errors_total"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        status, body = await _noise_connect(http, n2.url, env, cluster.harness_token(env),
                                            noise.StaticKeyPair.generate())
    assert status == 503 and body["error"]["code"] == "environment_unavailable", body
    assert (await n2.metrics())["cluster_registration_errors_total"] == errors + 1


class _Registry:
    """What ``_noise_tool_call`` needs of a rendezvous: the registry URL (n2) and tokens."""

    def __init__(self, cluster: Cluster, node: Node) -> None:
        self.url = node.url
        self._cluster = cluster

    def mint_token(self, role: str, executor_id: str) -> str:
        if role == "harness":
            return self._cluster.harness_token(executor_id)
        return self._cluster.executor_token(executor_id)


@pytest.mark.interop
@pytest.mark.timeout(150)
async def test_real_171_harness_on_n2_drives_real_171_executor_on_n1(
        cluster: Cluster, codex171_bin: Path, tmp_path: Path, process_factory: Any) -> None:  # noqa: F811
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    env = f"real171-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex
    executor = process_factory(
        [str(codex171_bin), "exec-server", "--remote", n1.url, "--environment-id", env],
        {"CODEX_API_KEY": cluster.executor_token(env), "EXECRELAY_TEST_EXECUTOR_TAG": tag},
        wait_url=False, name=f"real171-noise-{env}")
    await _wait_owned(cluster, n1, env, executor)
    before = await n2.metrics()
    token, model, result = await _noise_tool_call(codex171_bin, tmp_path, _Registry(cluster, n2), env)
    diag = (f"rc={result.returncode}\nstderr:\n{result.stderr[-3000:]}\nexecutor stderr:\n"
            f"{executor.stderr_text()[-2000:]}\nn1:\n{n1.log()[-1500:]}\nn2:\n{n2.log()[-1500:]}")
    assert result.returncode == 0, diag
    outputs = model.tool_outputs()
    assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
    after = await n2.metrics()
    # /connect on n2 found n1's registration in the bucket; the Noise stream crossed NATS
    assert after["cluster_registration_reads_total"] > before["cluster_registration_reads_total"], diag
    assert after['cluster_frames_total{direction="out"}'] > before['cluster_frames_total{direction="out"}'], diag
    assert after['cluster_frames_total{direction="in"}'] > before['cluster_frames_total{direction="in"}'], diag
