"""Executor restart under live sessions: the harness gets clean errors, nothing hangs."""
from __future__ import annotations

import asyncio

import pytest

from execrelay.harness import ConnectionLost, HarnessClient, RpcCallError


@pytest.mark.parametrize("mode", ["reliable", "legacy"])
@pytest.mark.timeout(60)
async def test_executor_restart_gives_clean_errors(system, mode):
    first = await system.start_executor("exec-r")
    async with HarnessClient(system.rendezvous.harness_url("exec-r"), mode=mode) as client:
        session = await client.open_session()
        assert (await session.fs_get_metadata("/"))["isDirectory"]
        # the executor process dies (its sessions die with it) and a new one registers
        first.close()
        await asyncio.sleep(0.3)
        await system.start_executor("exec-r")
        t0 = asyncio.get_running_loop().time()
        with pytest.raises((ConnectionLost, RpcCallError)):
            await session.call("fs/getMetadata", {"path": "/"}, timeout=20)
        assert asyncio.get_running_loop().time() - t0 < 5, "the error should come at once, not after a timeout"
        # a new session on the same client works against the new executor
        fresh = await client.open_session()
        assert (await fresh.fs_get_metadata("/"))["isDirectory"]
