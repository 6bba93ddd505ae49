"""Our remote executor (an in-process ExecServer behind a RemoteExecutor), registered with a
rendezvous for the length of an ``async with``: the harness-side tests (tests/harness,
tests/interop) all need one the same way."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from execrelay.executor import ExecServer
from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig
from execrelay.rendezvous import RendezvousServer


@asynccontextmanager
async def remote_executor(rdv: RendezvousServer, executor_id: str,
                          timeout: float = 10.0, *, registry: str | None = None,
                          server: ExecServer | None = None, **config: Any) -> AsyncIterator[RemoteExecutor]:
    """Yield once the executor is connected to ``rdv``; closed and awaited (each step within
    ``timeout``) on the way out.  ``registry``: register there instead (a proxy in front of
    ``rdv``); ``config``: RemoteExecutorConfig fields to set (``noise=...``, backoffs)."""
    server = server or ExecServer()
    cfg = RemoteExecutorConfig.with_bearer_token(registry or rdv.url, executor_id,
                                                 rdv.mint_token("executor", executor_id))
    for name, value in config.items():
        setattr(cfg, name, value)
    ex = RemoteExecutor(cfg, server)
    task = asyncio.ensure_future(ex.run())
    try:
        await asyncio.wait_for(ex.connected.wait(), timeout)
        yield ex
    finally:
        ex.close()
        await asyncio.wait_for(task, timeout)
        await server.aclose()
