"""The whole system in-process: our rendezvous, our remote executor, our harness client."""
from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import pytest

from execrelay.executor import ExecServer
from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig
from execrelay.rendezvous import RendezvousServer


class System:
    def __init__(self, rendezvous: RendezvousServer, registry_base: str) -> None:
        self.rendezvous = rendezvous
        self.registry_base = registry_base
        self.executors: list[tuple[RemoteExecutor, asyncio.Future, ExecServer]] = []

    async def start_executor(self, executor_id: str = "exec-1", registry: str | None = None,
                             server: ExecServer | None = None) -> RemoteExecutor:
        server = server or ExecServer()
        token = self.rendezvous.mint_token("executor", executor_id)
        config = RemoteExecutorConfig.with_bearer_token(registry or self.registry_base, executor_id, token)
        config.backoff_initial, config.backoff_max = 0.05, 0.2
        executor = RemoteExecutor(config, server)
        task = asyncio.ensure_future(executor.run())
        self.executors.append((executor, task, server))
        await asyncio.wait_for(executor.connected.wait(), 10)
        return executor

    async def aclose(self) -> None:
        for executor, task, server in self.executors:
            executor.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            await server.aclose()
        await self.rendezvous.aclose()


@pytest.fixture
async def system() -> AsyncIterator[System]:
    rendezvous = RendezvousServer(harness_grace=30.0, executor_grace=30.0)
    base = await rendezvous.start("127.0.0.1", 0)
    sys_ = System(rendezvous, base)
    try:
        yield sys_
    finally:
        await sys_.aclose()
