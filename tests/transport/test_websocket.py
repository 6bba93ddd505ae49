"""Websocket server and client over picows and websockets: same behaviour on both."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest
import websockets

from execrelay.transport import connect_websocket, serve_websocket

from .conftest import Recorder

pytestmark = pytest.mark.timeout(30)


async def _server(impl: str, reply: Any = None, **kw: Any):
    handlers: list[Recorder] = []

    def factory(link: Any) -> Recorder:
        r = Recorder(link, reply)
        handlers.append(r)
        return r

    srv = await serve_websocket(factory, "127.0.0.1", 0, impl=impl, **kw)
    return srv, handlers


@asynccontextmanager
async def _serving(impl: str, reply: Any = None, **kw: Any) -> AsyncIterator[tuple[Any, list[Recorder]]]:
    """``_server`` for the length of an ``async with``: closed on the way out."""
    srv, handlers = await _server(impl, reply, **kw)
    try:
        yield srv, handlers
    finally:
        srv.close()


def _echo(link: Any, data: Any, binary: bool) -> None:
    link.send(data if isinstance(data, (bytes, str)) else bytes(data))


async def _http_get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_server_url_and_http_routes(impl: str) -> None:
    srv, _ = await _server(impl)
    try:
        assert srv.url == f"ws://127.0.0.1:{srv.port}" and srv.port > 0
        assert await _http_get(srv.port, "/readyz") == (200, b"")
        assert (await _http_get(srv.port, "/other"))[0] == 404
        assert (await _http_get(srv.port, "/"))[0] == 400  # no upgrade header
    finally:
        srv.close()


@pytest.mark.parametrize("client_impl", ["picows", "websockets"])
async def test_text_and_binary_in_text_out(impl: str, client_impl: str) -> None:
    srv, handlers = await _server(impl, _echo)
    got = None
    try:
        def cfactory(link: Any) -> Recorder:
            nonlocal got
            got = Recorder(link)
            return got

        link = await connect_websocket(srv.url, cfactory, impl=client_impl)
        link.send(b'{"a":1}')
        link.send(b'{"b":2}', binary=True)
        link.send('{"c":"\u00e9"}')
        await got.wait_count(3)
        assert handlers[0].messages[0] == (b'{"a":1}', False) or handlers[0].messages[0] == ('{"a":1}', False)
        assert [bool(b) for _, b in handlers[0].messages] == [False, True, False]
        assert [b for _, b in got.messages] == [False, False, False]  # always text out
        as_bytes = [m if isinstance(m, bytes) else m.encode() for m, _ in got.messages]
        assert as_bytes == [b'{"a":1}', b'{"b":2}', '{"c":"\u00e9"}'.encode()]
        link.close(graceful=True)
        await asyncio.wait_for(handlers[0].closed, 5)
    finally:
        srv.close()


async def test_send_many_in_one_batch(impl: str) -> None:
    def burst(link: Any, data: Any, binary: bool) -> None:
        link.send_many([f"m{i}".encode() for i in range(200)])

    srv, _ = await _server(impl, burst)
    try:
        async with websockets.connect(srv.url) as ws:
            await ws.send("go")
            got = [await asyncio.wait_for(ws.recv(), 5) for _ in range(200)]
            assert got == [f"m{i}" for i in range(200)]
    finally:
        srv.close()


async def test_fragmented_message_reassembled(impl: str) -> None:
    async with _serving(impl, _echo) as (srv, handlers):
        async with websockets.connect(srv.url) as ws:
            await ws.send(["part1-", "part2-", "part3"])
            assert await asyncio.wait_for(ws.recv(), 5) == "part1-part2-part3"


async def test_message_over_limit_drops_connection(impl: str) -> None:
    async with _serving(impl, _echo, max_message=1024 * 1024) as (srv, handlers):
        async with websockets.connect(srv.url, max_size=None) as ws:
            chunk = "x" * (256 * 1024)
            with pytest.raises(websockets.ConnectionClosed) as info:
                await ws.send([chunk] * 6)  # 1.5 MiB in fragments
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is None or info.value.rcvd.code in (1006, 1009)
        await asyncio.wait_for(handlers[0].closed, 5)
        async with websockets.connect(srv.url) as ws:  # the server is fine
            await ws.send("ok")
            assert await asyncio.wait_for(ws.recv(), 5) == "ok"


async def test_frame_over_limit_drops_connection(impl: str) -> None:
    async with _serving(impl, _echo, max_frame=64 * 1024) as (srv, handlers):
        async with websockets.connect(srv.url, max_size=None) as ws:
            with pytest.raises(websockets.ConnectionClosed):
                await ws.send("x" * (65 * 1024))
                await asyncio.wait_for(ws.recv(), 5)


async def test_abrupt_close_from_server_sends_no_close_frame(impl: str) -> None:
    def drop(link: Any, data: Any, binary: bool) -> None:
        link.close()

    async with _serving(impl, drop) as (srv, handlers):
        async with websockets.connect(srv.url) as ws:
            await ws.send("bye")
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd is None  # 1006: TCP dropped, no close frame
        await asyncio.wait_for(handlers[0].closed, 5)


async def test_client_disconnect_reaches_handler(impl: str) -> None:
    async with _serving(impl) as (srv, handlers):
        ws = await websockets.connect(srv.url)
        await ws.send("x")
        for _ in range(100):
            if handlers:
                break
            await asyncio.sleep(0.01)
        await handlers[0].wait_count(1)
        ws.transport.abort()
        await asyncio.wait_for(handlers[0].closed, 5)


async def test_client_link_receives_server_close(impl: str) -> None:
    srv, handlers = await _server(impl)
    rec = None

    def cfactory(link: Any) -> Recorder:
        nonlocal rec
        rec = Recorder(link)
        return rec

    try:
        link = await connect_websocket(srv.url, cfactory, impl=impl)
        link.send("hi")
        await asyncio.sleep(0.05)
        await handlers[0].wait_count(1)
        handlers[0].link.close()
        await asyncio.wait_for(rec.closed, 5)
    finally:
        srv.close()
