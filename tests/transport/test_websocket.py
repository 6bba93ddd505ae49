"""Websocket server and client over picows and websockets: same behaviour on both."""
from __future__ import annotations

import asyncio
import os
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


async def test_client_batches_of_every_header_size(impl: str) -> None:
    """A client link's batch (masked frames) of bytes, str and buffers around the 126 and
    65,536-byte header limits, text then binary, arrives whole and in order (the compiled link
    frames small ``bytes`` batches in C, the rest through ``_frames.frame_parts``)."""
    srv, handlers = await _server(impl)
    try:
        link = await connect_websocket(srv.url, Recorder, impl=impl)
        sizes = [0, 1, 125, 126, 127, 65535, 65536, 70000]
        text = [b"t" * n for n in sizes[:4]]
        link.send_many(text)                       # small bytes: one buffer
        link.send_many([b"x" * n for n in sizes])  # over the join limit: writelines
        link.send_many(["\u00e9", bytearray(b"ba"), memoryview(b"mv")])  # not bytes
        link.send_many([b"b" * n for n in sizes[:4]], binary=True)
        await handlers[0].wait_count(4 + 8 + 3 + 4)
        got = [(bytes(m) if not isinstance(m, str) else m.encode(), b) for m, b in handlers[0].messages]
        want = ([(m, False) for m in text] + [(b"x" * n, False) for n in sizes]
                + [("\u00e9".encode(), False), (b"ba", False), (b"mv", False)]
                + [(b"b" * n, True) for n in sizes[:4]])
        assert got == want
        link.close(graceful=True)
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


def test_compiled_link_refuses_another_picows_release() -> None:
    """The compiled link depends on picows's C layout: under another picows release it does not
    import and the Python twin runs, with the fallback recorded (docs/architecture.md)."""
    import subprocess
    import sys

    code = ("import picows, warnings; picows.__version__ = '0.0.0'; warnings.simplefilter('ignore')\n"
            "from execrelay import _accel\n"
            "from execrelay.transport import ws_picows\n"
            "print(ws_picows._Listener.__module__, _accel.FALLBACKS.get('picows', 'none'))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("EXECRELAY_PURE", "EXECRELAY_REQUIRE_EXT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    module, why = out.stdout.strip().split(" ", 1)
    assert module == "execrelay.transport._picows_py"
    if why != "none":   # "none": the compiled module is not built at all (pure install)
        assert "0.0.0" in why
