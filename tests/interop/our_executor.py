"""Our remote executor (an in-process ExecServer behind a RemoteExecutor), registered with a
rendezvous for the length of an ``async with``: the harness-side tests (tests/harness,
tests/interop) all need one the same way."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

from execrelay.executor import ExecServer
from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig
from execrelay.rendezvous import RendezvousServer


@asynccontextmanager
async def remote_executor(rdv: RendezvousServer, executor_id: str,
                          timeout: float = 10.0) -> AsyncIterator[RemoteExecutor]:
    """Yield once the executor is connected to ``rdv``; closed and awaited (each step within
    ``timeout``) on the way out."""
    server = ExecServer()
    ex = RemoteExecutor(RemoteExecutorConfig.with_bearer_token(
        rdv.url, executor_id, rdv.mint_token("executor", executor_id)), server)
    task = asyncio.ensure_future(ex.run())
    try:
        await asyncio.wait_for(ex.connected.wait(), timeout)
        yield ex
    finally:
        ex.close()
        await asyncio.wait_for(task, timeout)
        await server.aclose()
