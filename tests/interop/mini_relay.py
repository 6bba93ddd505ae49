"""A deliberately tiny relay endpoint for checking how codex 0.131.0 behaves in relay mode.

It is a test double, not our rendezvous: no auth, no limits, legacy (0.131.0) framing only.
Two modes:

* ``MiniRelay(bridge_to="ws://127.0.0.1:PORT")``: every harness stream is bridged to its own
  plain JSON websocket connection to an exec-server (payload in -> text frame out, text reply
  -> Data frame with seq 0, 1, 2, ...). Lets the real harness in relay mode reach any
  plain exec-server, ours or the real one.
* ``MiniRelay()``: a registry + rendezvous pair for the real remote executor
  (``codex exec-server --remote URL --executor-id ID``): ``POST /cloud/executor/{id}/register``
  answers ``{"executor_id", "url"}`` and harness frames are forwarded unmodified to the
  executor websocket (and back, by stream_id).

The harness URL is ``ws://127.0.0.1:PORT/harness?role=harness&executor_id=ID&sig=anything``;
``role=harness`` is what makes codex 0.131.0 use relay framing.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web

from execrelay.wire import DATA, RESET, decode, encode_control, encode_data

from .aiohttp_thread import ThreadedApp


class MiniRelay(ThreadedApp):
    def __init__(self, bridge_to: str | None = None) -> None:
        self.bridge_to = bridge_to
        self._lock = threading.Lock()
        self.registrations: list[dict[str, Any]] = []  # {"executor_id", "authorization", "body"}
        self.harness_frames: list[Any] = []  # decoded Frames received from harnesses, in order
        self.executor_frames: list[Any] = []  # decoded Frames received from the executor
        self.executor_connected = threading.Event()
        self._executor_ws: web.WebSocketResponse | None = None
        self._routes: dict[str, web.WebSocketResponse] = {}  # stream_id -> harness socket
        super().__init__(self._app)

    def harness_url(self, executor_id: str = "exec-1", sig: str = "test-sig") -> str:
        return f"ws://{self.host}:{self.port}/harness?role=harness&executor_id={executor_id}&sig={sig}"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/cloud/executor/{executor_id}/register", self._register)
        app.router.add_get("/executor/{executor_id}", self._executor)
        app.router.add_get("/harness", self._harness)
        return app

    # -- registry + executor side -------------------------------------------------------------
    async def _register(self, request: web.Request) -> web.Response:
        executor_id = request.match_info["executor_id"]
        with self._lock:
            self.registrations.append({"executor_id": executor_id,
                                       "authorization": request.headers.get("Authorization"),
                                       "body": await request.read()})
        url = f"ws://{self.host}:{self.port}/executor/{executor_id}"
        return web.json_response({"executor_id": executor_id, "url": url})

    async def _executor(self, request: web.Request) -> web.WebSocketResponse:
        ws = await _accept(request)
        self._executor_ws = ws
        self.executor_connected.set()
        async for raw, frame in self._frames(ws, self.executor_frames):
            target = self._routes.get(frame.stream_id)
            if target is not None and not target.closed:
                await target.send_bytes(raw)
        self.executor_connected.clear()
        return ws

    async def _frames(self, ws: web.WebSocketResponse,
                      log: list[Any]) -> AsyncIterator[tuple[bytes, Any]]:
        """The binary messages of ``ws``, each decoded and recorded in ``log`` (the others are
        skipped): (raw bytes, frame)."""
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            frame = decode(msg.data)
            with self._lock:
                log.append(frame)
            yield msg.data, frame

    # -- harness side ---------------------------------------------------------------------
    async def _harness(self, request: web.Request) -> web.WebSocketResponse:
        ws = await _accept(request)
        bridges: dict[str, _Bridge] = {}
        try:
            async for raw, frame in self._frames(ws, self.harness_frames):
                if self.bridge_to is None:
                    self._routes[frame.stream_id] = ws
                    if self._executor_ws is not None and not self._executor_ws.closed:
                        await self._executor_ws.send_bytes(raw)
                    continue
                bridge = bridges.get(frame.stream_id)
                if frame.kind == DATA:
                    if bridge is None:
                        bridge = bridges[frame.stream_id] = await _Bridge.open(self.bridge_to, frame.stream_id, ws)
                    await bridge.upstream.send_str(frame.payload.decode())
                elif frame.kind == RESET and bridge is not None:
                    await bridges.pop(frame.stream_id).close()
        finally:
            for bridge in bridges.values():
                await bridge.close()
        return ws


async def _accept(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
    await ws.prepare(request)
    return ws


class _Bridge:
    """One harness stream <-> one plain JSON websocket connection to an exec-server."""

    def __init__(self, stream_id: str, session: aiohttp.ClientSession,
                 upstream: aiohttp.ClientWebSocketResponse, harness: web.WebSocketResponse) -> None:
        self.stream_id = stream_id
        self.session = session
        self.upstream = upstream
        self.harness = harness
        self.seq = 0
        self.task = asyncio.ensure_future(self._pump())

    @classmethod
    async def open(cls, url: str, stream_id: str, harness: web.WebSocketResponse) -> "_Bridge":
        session = aiohttp.ClientSession()
        upstream = await session.ws_connect(url, max_msg_size=0, autoping=True)
        return cls(stream_id, session, upstream, harness)

    async def _pump(self) -> None:
        async for msg in self.upstream:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            await self.harness.send_bytes(encode_data(self.stream_id, self.seq, 0, 0, msg.data.encode()))
            self.seq += 1
        if not self.harness.closed:
            await self.harness.send_bytes(encode_control(RESET, self.stream_id, reason="executor_closed"))

    async def close(self) -> None:
        self.task.cancel()
        await self.upstream.close()
        await self.session.close()
