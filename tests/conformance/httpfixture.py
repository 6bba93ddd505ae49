"""Local HTTP endpoints the exec-server's ``http/request`` is pointed at (conformance cases 55-61)."""
from __future__ import annotations

import asyncio
import base64

from aiohttp import web

from interop.aiohttp_thread import ThreadedApp


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="hello", content_type="text/plain")


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"status {code}", content_type="text/plain")


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({
        "method": request.method,
        "headers": [[k, v] for k, v in request.headers.items()],
        "bodyBase64": base64.b64encode(body).decode(),
    })


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(int(request.query.get("ms", "3000")) / 1000)
    return web.Response(text="slow")


async def _stream(request: web.Request) -> web.StreamResponse:
    n = int(request.query.get("n", "5"))
    delay = int(request.query.get("delay_ms", "30")) / 1000
    resp = web.StreamResponse(status=201, headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i in range(n):
        await resp.write(f"data: chunk{i}\n\n".encode())
        await asyncio.sleep(delay)
    await resp.write_eof()
    return resp


async def _stall(request: web.Request) -> web.StreamResponse:
    """One chunk, then silence for ``ms`` (default 5 s), then the rest."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    await resp.prepare(request)
    await resp.write(b"first\n")
    await asyncio.sleep(int(request.query.get("ms", "5000")) / 1000)
    try:
        await resp.write(b"second\n")
        await resp.write_eof()
    except ConnectionError:  # the client gave up (timeoutMs): expected in case 61
        pass
    return resp


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/status/{code}", _status)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/stream", _stream)
    app.router.add_get("/stall", _stall)
    return app


def start_http_fixture() -> ThreadedApp:
    return ThreadedApp(make_app).start()
