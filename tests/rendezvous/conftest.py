"""Fixtures for rendezvous tests: an in-process server and an aiohttp client session.

Everything is loopback; every receive is bounded by ``asyncio.wait_for`` (see _rdv_helpers).
"""
from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _rdv_helpers import SECRET  # noqa: E402

from execrelay.rendezvous import RendezvousServer  # noqa: E402


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[RendezvousServer]]]:
    servers: list[RendezvousServer] = []

    async def make(**overrides: Any) -> RendezvousServer:
        overrides.setdefault("heartbeat", None)
        server = RendezvousServer(SECRET, **overrides)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield make
    for server in servers:
        await asyncio.wait_for(server.aclose(), 10)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
