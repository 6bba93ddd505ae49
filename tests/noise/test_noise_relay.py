"""Ours -> ours over the Noise relay through our rendezvous (docs/noise.md §Endpoints): our
harness client and our remote executor, in-process, with a capture of what the rendezvous
forwards; faults; every failure resetting its stream only; --require-noise."""
from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from typing import Any

import aiohttp
import pytest

from execrelay import wire
from execrelay.executor import ExecServer, ExecServerConfig
from execrelay.executor.remote import NOISE_REQUIRE
from execrelay.harness import DIALECT_131, DIALECT_171, ConnectionLost, HarnessClient
from execrelay.stream import noise

from faultproxy import FaultProxy, Faults
from interop.test_noise171 import Capture, NoiseHarnessDriver, _connect, _harness_stream

pytestmark = pytest.mark.timeout(60)


async def test_sessions_run_encrypted_in_both_framings(noise_system, tmp_path) -> None:
    capture = Capture(noise_system.rendezvous)
    executor = await noise_system.start_executor()
    env = executor.config.executor_id
    token = f"secret-{uuid.uuid4().hex}"
    async with noise_system.client(env) as auto, noise_system.client(env, mode="legacy") as legacy:
        for client, framing in ((auto, "reliable"), (legacy, "legacy")):
            session = await client.open_session()
            assert client.stream_mode(session) == framing
            code, out, _ = await session.run(["/bin/sh", "-c", f"echo {token}"], str(tmp_path))
            assert (code, out) == (0, f"{token}\n".encode())
            blob = random.Random(3).randbytes(300_000)          # several records each way
            await session.fs_write_file(str(tmp_path / f"{framing}.bin"), blob)
            assert await session.fs_read_file(str(tmp_path / f"{framing}.bin")) == blob
    assert [v for _, v in executor.validations] == [True, True]
    frames = [wire.decode(f) for f in capture.frames]
    assert sum(f.kind == wire.HANDSHAKE for f in frames) >= 4
    everything = b"".join(capture.frames)
    assert token.encode() not in everything
    assert b'"method"' not in everything and b"jsonrpc" not in everything and b"process/start" not in everything


@pytest.mark.parametrize("compat, dialect", [("0.131", DIALECT_131), ("0.171", DIALECT_171)])
async def test_both_json_rpc_dialects_inside(noise_system, tmp_path, compat: str, dialect: str) -> None:
    executor = await noise_system.start_executor(server=ExecServer(ExecServerConfig(compat=compat)))
    async with noise_system.client(executor.config.executor_id) as client:
        session = await client.open_session()
        assert session.dialect == dialect
        (tmp_path / "f.txt").write_bytes(b"dialect")
        assert await session.fs_read_file(tmp_path / "f.txt") == b"dialect"
        assert (await session.fs_get_metadata(tmp_path))["isDirectory"] is True


async def test_noise_under_faults_every_request_runs_exactly_once(noise_system) -> None:
    """10% loss, duplication and reordering on every relay frame, delays, and the executor's
    websocket killed every second: reliable Noise streams lose nothing and repeat nothing."""
    server = ExecServer()
    seen: list[int] = []

    def count(conn: Any, params: dict) -> dict:
        seen.append(params["n"])
        return {"n": params["n"]}

    server.handlers["test/count"] = count
    proxy = FaultProxy(noise_system.rendezvous.url, Faults(drop=0.1, duplicate=0.1, reorder=0.1, delay=0.05),
                       seed=11)
    await proxy.start()
    streams, per_stream = 8, int(os.environ.get("EXECRELAY_NOISE_FAULT_REQUESTS", "1600")) // 8
    try:
        executor = await noise_system.start_executor(registry=proxy.base, server=server)
        async with noise_system.client(executor.config.executor_id, registry=proxy.base) as client:
            sessions = await asyncio.gather(*(client.open_session(timeout=30) for _ in range(streams)))
            assert {client.stream_mode(s) for s in sessions} == {"reliable"}

            async def killer() -> None:
                while True:
                    await asyncio.sleep(1.0)
                    await proxy.kill_executors()

            async def drive(session: Any, base: int) -> list[int]:
                sem = asyncio.Semaphore(8)

                async def one(n: int) -> int:
                    async with sem:
                        return (await session.call("test/count", {"n": n}, timeout=50))["n"]
                return await asyncio.gather(*(one(base + i) for i in range(per_stream)))

            kill_task = asyncio.ensure_future(killer())
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(*(drive(s, k * per_stream) for k, s in enumerate(sessions))), 50)
            finally:
                kill_task.cancel()
        total = streams * per_stream
        assert sorted(n for r in results for n in r) == list(range(total))
        assert sorted(seen) == list(range(total)), "a request ran twice or never"
        assert proxy.stats["dropped"] > 0 and proxy.stats["duplicated"] > 0 and proxy.stats["kills"] >= 1
    finally:
        await proxy.aclose()


async def _driver_stream(http: aiohttp.ClientSession, system: Any, env: str,
                         executor_key: noise.PublicKey | None = None) -> tuple[Any, NoiseHarnessDriver]:
    """A raw Noise harness (tests/interop's driver) on its own websocket."""
    identity = noise.StaticKeyPair.generate()
    conn = await _connect(http, system.rendezvous, env, identity)
    if executor_key is not None:
        conn["executor_public_key"] = executor_key.to_json()
    ws = await http.ws_connect(conn["url"])
    return ws, NoiseHarnessDriver(ws, _harness_stream(conn, env, identity))


async def _next_reset(driver: NoiseHarnessDriver) -> Any:
    while True:
        frame = await driver._next_frame()  # noqa: SLF001
        if frame.kind == wire.RESET:
            return frame


@pytest.mark.parametrize("attack", ["tamper", "replay", "wrong_key", "unauthorized"])
async def test_a_bad_stream_is_reset_alone(noise_system, attack: str) -> None:
    executor = await noise_system.start_executor()
    env = executor.config.executor_id
    async with noise_system.client(env) as client, aiohttp.ClientSession() as http:
        bystander = await client.open_session()           # another stream on the same executor
        wrong = noise.StaticKeyPair.generate().public if attack == "wrong_key" else None
        ws, driver = await _driver_stream(http, noise_system, env, wrong)
        try:
            if attack == "unauthorized":
                driver.stream._initiator = noise.Initiator(  # noqa: SLF001 - another key's authorization
                    noise.StaticKeyPair.generate(), executor.identity.public,
                    noise.prologue(env, executor.registration_id, driver.sid), b"na1.9999999999.forged")
            if attack in ("wrong_key", "unauthorized"):
                for raw in driver.stream.start():
                    await ws.send_bytes(raw)
            else:
                await driver.handshake()
                init = await driver.call(1, "initialize", {"clientName": "attacker"})
                assert "result" in init
                good = driver.stream.send(json.dumps({"id": 2, "method": "initialize"}).encode())
                frame = wire.decode(good[0])
                if attack == "tamper":
                    payload = bytearray(frame.payload)
                    payload[5] ^= 0x40
                    await ws.send_bytes(wire.encode_data(driver.sid, frame.seq, 0, 0, bytes(payload)))
                else:   # a genuine record, then the same record again as the next one
                    await ws.send_bytes(good[0])
                    await ws.send_bytes(wire.encode_data(driver.sid, frame.seq + 1, 0, 0, frame.payload))
            reset = await asyncio.wait_for(_next_reset(driver), 10)
            assert reset.reason == noise.RESET_REASON
        finally:
            await ws.close()
        assert (await bystander.fs_get_metadata("/"))["isDirectory"] is True
        second = await client.open_session()                 # and new streams still open
        assert (await second.fs_get_metadata("/"))["isDirectory"] is True
    valid = [v for _, v in executor.validations]
    if attack == "unauthorized":
        assert False in valid
    if attack == "wrong_key":
        assert len(valid) == 2 and all(valid)               # never reached the registry


async def test_require_noise_refuses_plaintext_streams_with_a_reason(noise_system) -> None:
    executor = await noise_system.start_executor(noise=NOISE_REQUIRE)
    env = executor.config.executor_id
    for mode in ("reliable", "legacy"):
        async with HarnessClient(noise_system.rendezvous.harness_url(env), mode=mode) as plain:
            with pytest.raises(ConnectionLost) as info:
                await plain.open_session(timeout=10)
            assert "noise_required" in str(info.value), info.value
    async with noise_system.client(env) as client:
        session = await client.open_session()
        assert (await session.fs_get_metadata("/"))["isDirectory"] is True


async def test_plain_executor_still_serves_plaintext_and_noise(noise_system) -> None:
    """Noise on (the default) keeps plaintext harnesses working on the same executor."""
    executor = await noise_system.start_executor()
    env = executor.config.executor_id
    async with HarnessClient(noise_system.rendezvous.harness_url(env)) as plain, \
            noise_system.client(env) as enc:
        a, b = await plain.open_session(), await enc.open_session()
        assert (await a.fs_get_metadata("/"))["isDirectory"] and (await b.fs_get_metadata("/"))["isDirectory"]


async def test_a_registry_without_noise_gets_the_plain_registration(noise_system) -> None:
    """Noise "auto" in front of a registry that only has the 0.131-style endpoint: the plain
    registration (plaintext streams served); "require" keeps refusing to register plainly."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    rdv = noise_system.rendezvous
    calls: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        calls.append(request.path)
        async with aiohttp.ClientSession() as http:
            async with http.post(rdv.url + request.path,
                                 headers={"Authorization": request.headers.get("Authorization", "")}) as r:
                return web.Response(status=r.status, body=await r.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/cloud/executor/{id}/register", forward)
    plain_registry = TestServer(app, host="127.0.0.1")
    await plain_registry.start_server()
    registry = str(plain_registry.make_url("")).rstrip("/")
    try:
        executor = await noise_system.start_executor(registry=registry)
        assert executor.registration_id is None and calls == [f"/cloud/executor/{executor.config.executor_id}/register"]
        async with HarnessClient(rdv.harness_url(executor.config.executor_id)) as plain:
            session = await plain.open_session()
            assert (await session.fs_get_metadata("/"))["isDirectory"] is True
        with pytest.raises(asyncio.TimeoutError):
            await noise_system.start_executor(registry=registry, noise=NOISE_REQUIRE, timeout=1.5)
        assert len(calls) == 1    # "require" never fell back to the plain endpoint
    finally:
        await plain_registry.close()


async def test_reconnect_resumes_and_asks_the_registry_again_once_the_url_expired(tmp_path) -> None:
    """A lost socket is replaced at the same URL while its short-lived token is valid (the
    reliable Noise session goes on: no new handshake); once the token expired, through a new
    /connect (sessions of the old token end, new ones open)."""
    from execrelay.rendezvous import RendezvousServer

    from interop.our_executor import remote_executor

    rdv = RendezvousServer(b"noise-reconnect-secret-0123456789abcdef", heartbeat=None,
                           harness_grace=30.0, url_token_ttl=3.0)
    await rdv.start("127.0.0.1", 0)
    try:
        async with remote_executor(rdv, "env-r", noise="auto") as executor:
            async with HarnessClient(rdv.url, environment_id="env-r",
                                     auth_token=rdv.mint_token("harness", "env-r")) as client:
                session = await client.open_session()
                first_url = client.ws_url
                assert client._link is not None  # noqa: SLF001
                client._link.close()  # noqa: SLF001 - the socket drops
                assert (await session.fs_get_metadata(tmp_path))["isDirectory"] is True
                assert client.ws_url == first_url
                assert [v for _, v in executor.validations] == [True]   # the same channel
                await asyncio.sleep(3.5)                                  # the token expired
                assert client._link is not None  # noqa: SLF001
                client._link.close()  # noqa: SLF001
                with pytest.raises(ConnectionLost):
                    await asyncio.wait_for(session.fs_get_metadata(tmp_path), 15)
                assert client.ws_url != first_url
                fresh = await client.open_session()
                assert (await fresh.fs_get_metadata(tmp_path))["isDirectory"] is True
    finally:
        await rdv.aclose()


async def test_a_new_session_follows_an_executor_that_re_registered_with_a_new_key(tmp_path) -> None:
    """The client's /connect answer pins the executor's key; the executor restarts with a new
    one: the next session's handshake is refused, the client asks /connect again, and it opens."""
    from execrelay.rendezvous import RendezvousServer

    from interop.our_executor import remote_executor

    async with RendezvousServer(b"noise-rekey-secret-0123456789abcdef-x", heartbeat=None) as rdv:
        client = HarnessClient(rdv.url, environment_id="env-k", auth_token=rdv.mint_token("harness", "env-k"))
        try:
            async with remote_executor(rdv, "env-k", noise="auto") as first:
                session = await client.open_session()
                assert (await session.fs_get_metadata(tmp_path))["isDirectory"] is True
                old_key = client.noise_target.executor_key if client.noise_target else None
            async with remote_executor(rdv, "env-k", noise="auto") as second:
                assert second.identity is not None and second.identity.public != old_key
                fresh = await client.open_session()
                assert (await fresh.fs_get_metadata(tmp_path))["isDirectory"] is True
                assert client.noise_target is not None and client.noise_target.executor_key == second.identity.public
                assert [v for _, v in first.validations] == [True]
        finally:
            await client.aclose()
