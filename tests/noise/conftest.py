"""Noise relay tests: our rendezvous, our executor and our harness client in-process.

``tests/`` (for the interop helpers) and ``tests/e2e`` (for the fault proxy) are importable
from here."""
from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from pathlib import Path
from typing import AsyncIterator

import pytest

for _p in (Path(__file__).parent.parent, Path(__file__).parent.parent / "e2e"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from execrelay.executor import ExecServer  # noqa: E402
from execrelay.executor.remote import NOISE_AUTO, RemoteExecutor, RemoteExecutorConfig  # noqa: E402
from execrelay.harness import HarnessClient  # noqa: E402
from execrelay.rendezvous import RendezvousServer  # noqa: E402
from execrelay.stream.noise import StaticKeyPair  # noqa: E402

SECRET = b"noise-tests-secret-0123456789abcdef-xyz"


class NoiseSystem:
    """Our rendezvous (with its Noise registry) and the executors started on it."""

    def __init__(self, rendezvous: RendezvousServer) -> None:
        self.rendezvous = rendezvous
        self.executors: list[tuple[RemoteExecutor, asyncio.Future, ExecServer]] = []

    async def start_executor(self, env_id: str | None = None, *, noise: str = NOISE_AUTO,
                             registry: str | None = None, server: ExecServer | None = None,
                             identity: StaticKeyPair | None = None) -> RemoteExecutor:
        env_id = env_id or f"env-{uuid.uuid4().hex[:8]}"
        server = server or ExecServer()
        config = RemoteExecutorConfig.with_bearer_token(
            registry or self.rendezvous.url, env_id, self.rendezvous.mint_token("executor", env_id))
        config.noise = noise
        config.identity = identity
        config.backoff_initial, config.backoff_max = 0.05, 0.2
        executor = RemoteExecutor(config, server)
        task = asyncio.ensure_future(executor.run())
        self.executors.append((executor, task, server))
        await asyncio.wait_for(executor.connected.wait(), 10)
        return executor

    def client(self, env_id: str, registry: str | None = None, **kw) -> HarnessClient:
        """A Noise harness client for ``env_id`` (registry: the rendezvous unless given)."""
        return HarnessClient(registry or self.rendezvous.url, environment_id=env_id,
                             auth_token=self.rendezvous.mint_token("harness", env_id), **kw)

    async def aclose(self) -> None:
        for executor, task, server in self.executors:
            executor.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            await server.aclose()
        await self.rendezvous.aclose()


@pytest.fixture
async def noise_system() -> AsyncIterator[NoiseSystem]:
    rendezvous = RendezvousServer(SECRET, heartbeat=None, harness_grace=30.0, executor_grace=30.0)
    await rendezvous.start("127.0.0.1", 0)
    system = NoiseSystem(rendezvous)
    try:
        yield system
    finally:
        await system.aclose()
