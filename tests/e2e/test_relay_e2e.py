"""Ours -> ours through our rendezvous: reliable streams, faults, isolation, security."""
from __future__ import annotations

import asyncio
import os
import random

import pytest

from execrelay.executor import ExecServer
from execrelay.harness import ConnectionLost, HarnessClient, RpcCallError

from faultproxy import FaultProxy, Faults


def counting_server() -> tuple[ExecServer, list]:
    """An ExecServer with a ``test/count`` method that records every execution."""
    server = ExecServer()
    seen: list = []

    def count(conn, params):
        seen.append((conn.session.id if conn.session else None, params["n"]))
        return {"n": params["n"]}

    server.handlers["test/count"] = count
    return server, seen


async def test_two_sessions_reliable_with_segmented_messages(system, tmp_path):
    await system.start_executor("exec-1")
    async with HarnessClient(system.rendezvous.harness_url("exec-1")) as client:
        a, b = await asyncio.gather(client.open_session(), client.open_session())
        assert a.session_id != b.session_id
        assert client.stream_mode(a) == client.stream_mode(b) == "reliable"
        blob = random.Random(7).randbytes(5 * 1024 * 1024 + 17)  # ~7 MiB of JSON: >100 segments
        path = str(tmp_path / "blob.bin")
        await a.fs_write_file(path, blob)
        assert await b.fs_read_file(path) == blob
        with pytest.raises(RpcCallError) as info:
            await a.call("test/unknown-a", {})
        assert info.value.code == -32601 and "test/unknown-a" in info.value.message
        code, out, _ = await b.run(["/bin/sh", "-c", "echo hi"], str(tmp_path))
        assert (code, out) == (0, b"hi\n")


async def test_harness_for_executor_a_cannot_reach_b(system):
    await system.start_executor("exec-a")
    await system.start_executor("exec-b")
    url_a = system.rendezvous.harness_url("exec-a")
    forged = url_a.replace("executor_id=exec-a", "executor_id=exec-b")
    with pytest.raises(Exception):
        async with HarnessClient(forged) as client:
            await client.open_session(timeout=3)
    async with HarnessClient(url_a) as client:
        session = await client.open_session()
        assert session.session_id


async def test_session_close_resets_only_that_stream(system):
    await system.start_executor("exec-1")
    async with HarnessClient(system.rendezvous.harness_url("exec-1")) as client:
        a = await client.open_session()
        b = await client.open_session()
        a.close()
        with pytest.raises(ConnectionLost):
            await a.fs_get_metadata("/")
        assert (await b.fs_get_metadata("/"))["isDirectory"] is True


REQUESTS = int(os.environ.get("EXECRELAY_FAULT_REQUESTS", "10000"))
STREAMS = int(os.environ.get("EXECRELAY_FAULT_STREAMS", "50"))


@pytest.mark.timeout(240)
async def test_faults_every_request_answered_exactly_once(system):
    """10% loss + 10% duplication + reordering + delays on every relay frame, and the executor's
    websocket killed every second: every request runs exactly once and is answered."""
    proxy = FaultProxy(system.registry_base, Faults(drop=0.1, duplicate=0.1, reorder=0.1, delay=0.05), seed=5)
    await proxy.start()
    server, seen = counting_server()
    try:
        await system.start_executor("exec-f", registry=proxy.base, server=server)
        harness_url = proxy.ws_url(system.rendezvous.harness_url("exec-f"))
        per_stream = REQUESTS // STREAMS

        async def killer() -> None:
            while True:
                await asyncio.sleep(1.0)
                await proxy.kill_executors()

        async with HarnessClient(harness_url, mode="reliable") as client:
            sessions = await asyncio.gather(*(client.open_session(timeout=60) for _ in range(STREAMS)))
            kill_task = asyncio.ensure_future(killer())

            async def drive(session, base: int) -> list:
                sem = asyncio.Semaphore(8)

                async def one(n: int):
                    async with sem:
                        return (await session.call("test/count", {"n": n}, timeout=120))["n"]
                return await asyncio.gather(*(one(base + i) for i in range(per_stream)))

            try:
                results = await asyncio.wait_for(
                    asyncio.gather(*(drive(s, k * per_stream) for k, s in enumerate(sessions))), 200)
            finally:
                kill_task.cancel()
        answers = sorted(n for r in results for n in r)
        assert answers == list(range(STREAMS * per_stream))
        executed = sorted(n for _, n in seen)
        assert executed == list(range(STREAMS * per_stream)), "a request ran twice or never"
        assert proxy.stats["dropped"] > 0 and proxy.stats["duplicated"] > 0 and proxy.stats["kills"] >= 1
    finally:
        await proxy.aclose()


@pytest.mark.timeout(60)
async def test_duplicating_link_legacy_keeps_0131_semantics_reliable_exactly_once(system):
    """Every frame duplicated in both directions: a legacy stream behaves as 0.131.0 (each
    request runs twice, nothing de-duplicates), a reliable stream runs each request once."""
    proxy = FaultProxy(system.registry_base, Faults(duplicate=1.0), seed=9)
    await proxy.start()
    server, seen = counting_server()
    try:
        await system.start_executor("exec-dup", registry=proxy.base, server=server)
        url = proxy.ws_url(system.rendezvous.harness_url("exec-dup"))
        async with HarnessClient(url, mode="legacy") as legacy, HarnessClient(url, mode="reliable") as reliable:
            s_legacy = await legacy.open_session()
            s_reliable = await reliable.open_session()
            assert legacy.stream_mode(s_legacy) == "legacy" and reliable.stream_mode(s_reliable) == "reliable"
            for n in range(20):
                assert (await s_legacy.call("test/count", {"n": n}))["n"] == n
                assert (await s_reliable.call("test/count", {"n": 100 + n}))["n"] == 100 + n
            await asyncio.sleep(0.2)
        legacy_runs = sorted(n for sid, n in seen if sid == s_legacy.session_id)
        reliable_runs = sorted(n for sid, n in seen if sid == s_reliable.session_id)
        # each frame crosses the proxy twice (harness socket, then executor socket): 4 copies
        assert legacy_runs == sorted(list(range(20)) * 4)
        assert reliable_runs == list(range(100, 120))
    finally:
        await proxy.aclose()
