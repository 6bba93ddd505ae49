"""Websocket server and client on the ``websockets`` library (the pure path, plain asyncio).

``websockets`` is coroutine based, so each link has one reader task and one writer task; the
writer sends everything queued since it last ran.  Flow control: ``write_paused`` is raised when
more than ``HIGH_WATER`` bytes are queued and lowered below ``LOW_WATER``.
"""
from __future__ import annotations

import asyncio
import http
from collections import deque
from typing import Any, Iterable

import websockets
from websockets.asyncio.client import connect as _ws_connect
from websockets.asyncio.server import serve as _ws_serve

from ..wire.split import SplitFrame
from .base import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, LinkFactory, Payload, format_url, peer_of

HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024


class WebsocketsLink:
    """A :class:`~execrelay.transport.base.Link` over one ``websockets`` connection."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.peer = peer_of(ws.remote_address)
        self.write_paused = False
        self._queue: deque[tuple[Payload, bool]] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._closed = False
        self._handler: Any = None
        self._read_ok = asyncio.Event()
        self._read_ok.set()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def pause_reading(self, paused: bool) -> None:
        """Stop (True) or restart (False) taking messages from the connection."""
        if paused:
            self._read_ok.clear()
        else:
            self._read_ok.set()

    def send(self, data: Payload, binary: bool = False) -> None:
        if self._closed:
            return
        self._queue.append((data, binary))
        self._queued += len(data)
        if not self._wake.is_set():
            self._wake.set()
        if not self.write_paused and self._queued > HIGH_WATER:
            self.write_paused = True
            if self._handler is not None:
                self._handler.on_write_paused(True)

    def send_many(self, messages: Iterable[Payload], binary: bool = False) -> None:
        for m in messages:
            self.send(m, binary)

    def flush(self) -> None:
        """Writes happen in the writer task; nothing to do synchronously."""

    async def _write_loop(self) -> None:
        ws = self._ws
        queue = self._queue
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while queue:
                    data, binary = queue.popleft()
                    self._queued -= len(data)
                    if binary:
                        if type(data) is str:
                            data = data.encode()
                        elif type(data) is SplitFrame:  # websockets writes one buffer
                            data = bytes(data)
                        await ws.send(data, text=False)
                    else:
                        await ws.send(data, text=True)
                    if self.write_paused and self._queued < LOW_WATER:
                        self.write_paused = False
                        if self._handler is not None:
                            self._handler.on_write_paused(False)
        except (asyncio.CancelledError, websockets.ConnectionClosed):
            pass

    def close(self, graceful: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if graceful:
            async def _graceful() -> None:
                while self._queue and not self._writer.done():
                    await asyncio.sleep(0.001)
                self._writer.cancel()
                await self._ws.close()
            asyncio.get_running_loop().create_task(_graceful())
        else:
            self._writer.cancel()
            self._queue.clear()
            transport = self._ws.transport
            if transport is not None:
                transport.abort()

    async def wait_closed(self) -> None:
        await self._ws.wait_closed()


async def _run_link(ws: Any, factory: LinkFactory) -> None:
    link = WebsocketsLink(ws)
    handler = factory(link)
    link._handler = handler
    try:
        async for message in ws:
            if link._closed:
                break
            if not link._read_ok.is_set():
                await link._read_ok.wait()
            if type(message) is str:
                handler.on_message(message, False)
            else:
                handler.on_message(message, True)
    except websockets.ConnectionClosed:
        pass
    finally:
        link._closed = True
        link._writer.cancel()
        handler.on_close()
        transport = ws.transport
        if transport is not None and not transport.is_closing():
            transport.abort()


class WebsocketsServer:
    impl = "websockets"

    def __init__(self, server: Any) -> None:
        self._server = server
        sock = server.sockets[0].getsockname()
        self.host, self.port = sock[0], sock[1]
        self.url = format_url(self.host, self.port)

    def close(self) -> None:
        self._server.close(close_connections=False)
        for conn in list(getattr(self._server, "connections", ())):
            if conn.transport is not None:
                conn.transport.abort()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


async def serve(factory: LinkFactory, host: str, port: int, *, max_message: int = MAX_MESSAGE_BYTES,
                max_frame: int = MAX_FRAME_BYTES, readyz: bool = True,
                check_upgrade: Any = None) -> WebsocketsServer:
    """Listen on ``host:port``; ``GET /`` upgrades, ``GET /readyz`` -> 200, others -> 404.
    ``check_upgrade`` may refuse an upgrade (see ``transport.UpgradeCheck``)."""

    def process_request(connection: Any, request: Any) -> Any:
        path = request.path.split("?", 1)[0]
        if path == "/":
            if "upgrade" not in request.headers.get("Connection", "").lower():
                return connection.respond(http.HTTPStatus.BAD_REQUEST,
                                          "Connection header did not include 'upgrade'")
            if check_upgrade is not None:
                refused = check_upgrade(request.headers.get("Authorization"))
                if refused is not None:
                    return connection.respond(refused[0], refused[1])  # text/plain; charset=utf-8
            return None
        if readyz and path == "/readyz":
            resp = connection.respond(http.HTTPStatus.OK, "")
            return resp
        return connection.respond(http.HTTPStatus.NOT_FOUND, "")

    async def handler(ws: Any) -> None:
        await _run_link(ws, factory)

    # websockets has no separate per-frame limit: cap messages at the frame limit, so a frame over
    # 16 MiB is refused as by 0.131.0 (close 1009 instead of a bare TCP drop); the price is that
    # fragmented messages above 16 MiB are refused too on this (pure) path.
    limit = min(max_message, max_frame) if max_frame else max_message
    server = await _ws_serve(handler, host, port, process_request=process_request,
                             max_size=limit, compression=None, ping_interval=None,
                             max_queue=64, write_limit=HIGH_WATER, server_header=None)
    return WebsocketsServer(server)


async def connect(url: str, factory: LinkFactory, *, max_message: int = MAX_MESSAGE_BYTES,
                  max_frame: int = 0, extra_headers: Any = None, timeout: float = 10.0,
                  keepalive: tuple[float, float] | None = None,
                  ssl_context: Any = None) -> WebsocketsLink:
    interval, ping_timeout = keepalive if keepalive is not None else (None, None)
    # a peer that misses its pong will not answer a close frame either: don't wait 10 s for it
    close_timeout = min(ping_timeout, 10.0) if ping_timeout is not None else 10.0
    ws = await _ws_connect(url, max_size=max_message, compression=None, ping_interval=interval,
                           ping_timeout=ping_timeout, close_timeout=close_timeout,
                           additional_headers=extra_headers, open_timeout=timeout, max_queue=64,
                           **({"ssl": ssl_context} if ssl_context is not None else {}))
    ready: asyncio.Future = asyncio.get_running_loop().create_future()

    def wrapped(link: Any) -> Any:
        ready.set_result(link)
        return factory(link)

    asyncio.get_running_loop().create_task(_run_link(ws, wrapped))
    return await ready
