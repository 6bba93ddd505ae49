"""Fixtures for remote mode: a fake registry + rendezvous that the test scripts frame by frame."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import pytest
from aiohttp import WSMsgType, web

from execrelay import wire
from execrelay.bench.loopback import serve_loopback
from execrelay.executor import ExecServer
from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig

EXECUTOR_ID = "exec-mux-test"
REGISTRY_TOKEN = "registry-token"


class FakeRendezvous:
    """Registry endpoint + executor websocket endpoint; the test reads and writes raw frames."""

    def __init__(self) -> None:
        self.sockets: asyncio.Queue[web.WebSocketResponse] = asyncio.Queue()
        self.registrations = 0
        self.auth_seen: list[str | None] = []
        self.register_status = 200
        self.runner: web.AppRunner | None = None
        self.base = ""
        self.ws: web.WebSocketResponse | None = None

    async def start(self) -> None:
        self.runner, port = await serve_loopback([web.post("/cloud/executor/{id}/register", self._register),
                                                  web.get("/relay/{id}", self._relay)])
        self.base = f"http://127.0.0.1:{port}"

    async def _register(self, request: web.Request) -> web.Response:
        self.registrations += 1
        self.auth_seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != f"Bearer {REGISTRY_TOKEN}":
            return web.json_response({"error": {"message": "bad token"}}, status=401)
        if self.register_status != 200:
            return web.json_response({"error": {"code": "boom", "message": "registry exploded"}},
                                     status=self.register_status)
        eid = request.match_info["id"]
        return web.json_response({"executor_id": eid, "url": self.base.replace("http", "ws") + f"/relay/{eid}"})

    async def _relay(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        self.ws = ws
        await self.sockets.put(ws)
        closed = asyncio.get_running_loop().create_future()
        ws._execrelay_closed = closed  # type: ignore[attr-defined]
        await closed
        return ws

    async def accept(self, timeout: float = 10.0) -> web.WebSocketResponse:
        self.ws = await asyncio.wait_for(self.sockets.get(), timeout)
        return self.ws

    async def send(self, frame: bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(frame)

    async def recv(self, timeout: float = 5.0):
        """The next relay frame from the executor, decoded (pings and other types skipped)."""
        assert self.ws is not None
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), timeout)
            if msg.type == WSMsgType.BINARY:
                return wire.decode(msg.data)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                raise ConnectionError("executor websocket closed")
            if msg.type == WSMsgType.TEXT:
                raise AssertionError("executor sent a text frame on the relay websocket")

    async def drop(self) -> None:
        """Close the current executor websocket (as a rendezvous restart would)."""
        ws = self.ws
        if ws is not None:
            await ws.close()
            fut = getattr(ws, "_execrelay_closed", None)
            if fut is not None and not fut.done():
                fut.set_result(None)

    async def aclose(self) -> None:
        await self.drop()
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def fake_rendezvous() -> AsyncIterator[FakeRendezvous]:
    fake = FakeRendezvous()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.aclose()


@pytest.fixture
async def remote_executor(fake_rendezvous: FakeRendezvous) -> AsyncIterator[RemoteExecutor]:
    server = ExecServer()
    config = RemoteExecutorConfig.with_bearer_token(fake_rendezvous.base, EXECUTOR_ID, REGISTRY_TOKEN)
    config.backoff_initial = 0.05
    config.backoff_max = 0.2
    executor = RemoteExecutor(config, server)
    task = asyncio.ensure_future(executor.run())
    try:
        yield executor
    finally:
        executor.close()
        await asyncio.wait_for(task, 10)
        await server.aclose()
