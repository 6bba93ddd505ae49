"""Noise relay tests: our rendezvous, our executor and our harness client in-process.

``tests/`` (for the interop helpers) and ``tests/e2e`` (for the fault proxy) are importable
from here."""
from __future__ import annotations

import contextlib
import sys
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

for _p in (Path(__file__).parent.parent, Path(__file__).parent.parent / "e2e"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from execrelay.executor import ExecServer  # noqa: E402
from execrelay.executor.remote import NOISE_AUTO, RemoteExecutor  # noqa: E402
from execrelay.harness import HarnessClient  # noqa: E402
from execrelay.rendezvous import RendezvousServer  # noqa: E402
from execrelay.stream.noise import StaticKeyPair  # noqa: E402
from interop.our_executor import remote_executor  # noqa: E402

SECRET = b"noise-tests-secret-0123456789abcdef-xyz"


class NoiseSystem:
    """Our rendezvous (with its Noise registry) and the executors started on it."""

    def __init__(self, rendezvous: RendezvousServer, stack: contextlib.AsyncExitStack) -> None:
        self.rendezvous = rendezvous
        self._stack = stack

    async def start_executor(self, env_id: str | None = None, *, noise: str = NOISE_AUTO,
                             registry: str | None = None, server: ExecServer | None = None,
                             identity: StaticKeyPair | None = None, timeout: float = 10.0) -> RemoteExecutor:
        """Our remote executor for ``env_id`` (a fresh one if None), connected within ``timeout``."""
        return await self._stack.enter_async_context(remote_executor(
            self.rendezvous, env_id or f"env-{uuid.uuid4().hex[:8]}", timeout, registry=registry, server=server,
            noise=noise, identity=identity, backoff_initial=0.05, backoff_max=0.2))

    def client(self, env_id: str, registry: str | None = None, **kw: Any) -> HarnessClient:
        """A Noise harness client for ``env_id`` (registry: the rendezvous unless given)."""
        return HarnessClient(registry or self.rendezvous.url, environment_id=env_id,
                             auth_token=self.rendezvous.mint_token("harness", env_id), **kw)


@pytest.fixture
async def noise_system() -> AsyncIterator[NoiseSystem]:
    rendezvous = RendezvousServer(SECRET, heartbeat=None, harness_grace=30.0, executor_grace=30.0)
    await rendezvous.start("127.0.0.1", 0)
    try:
        async with contextlib.AsyncExitStack() as stack:
            yield NoiseSystem(rendezvous, stack)
    finally:
        await rendezvous.aclose()
