"""http/request, buffered and streamed, against a local aiohttp server."""
from __future__ import annotations

import asyncio
import base64

import pytest
from aiohttp import web

from .conftest import Client, b64, serve_app

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def http_url():
    seen: list = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((request.method, request.headers.getall("X-A", []), body))
        resp = web.Response(status=200, body=b"hello", headers={"X-Out": "1"})
        resp.headers.add("Set-Cookie", "a=1")
        resp.headers.add("Set-Cookie", "b=2")
        return resp

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), body=b"e")

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=201)
        await resp.prepare(request)
        for i in range(3):
            await resp.write(f"chunk{i}\n".encode())
            await asyncio.sleep(0.05)
        await resp.write_eof()
        return resp

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        await resp.write(b"start")
        await asyncio.sleep(1.0)
        return resp

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/stream", stream)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect", redirect)
    runner, port = await serve_app(app)
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_buffered_get_and_post(client: Client, http_url) -> None:
    url, seen = http_url
    res = await client.result("http/request", {"method": "GET", "url": url + "/echo", "requestId": "r1"})
    assert res["status"] == 200 and base64.b64decode(res["bodyBase64"]) == b"hello"
    names = [h["name"] for h in res["headers"]]
    assert names.count("set-cookie") == 2 and "x-out" in names and all(n == n.lower() for n in names)
    res = await client.result("http/request", {"method": "POST", "url": url + "/echo", "requestId": "r2",
                                               "headers": [{"name": "X-A", "value": "1"}, {"name": "X-A", "value": "2"}],
                                               "bodyBase64": b64("payload")})
    assert seen[-1] == ("POST", ["1", "2"], b"payload")
    res = await client.result("http/request", {"method": "GET", "url": url + "/status/404", "requestId": "r3"})
    assert res["status"] == 404
    res = await client.result("http/request", {"method": "GET", "url": url + "/redirect", "requestId": "r4"})
    assert res["status"] == 200


async def test_param_errors(client: Client, http_url) -> None:
    url, _ = http_url
    assert await client.error("http/request", {"method": "GET", "url": url}) == (-32602, "missing field `requestId`")
    assert await client.error("http/request", {"method": "GET", "url": "ftp://x/", "requestId": "r"}) == (
        -32602, "http/request only supports http and https URLs, got ftp")
    assert await client.error("http/request", {"method": "G T", "url": url, "requestId": "r"}) == (
        -32602, "http/request method is invalid: invalid HTTP method")
    assert await client.error("http/request", {"method": "GET", "url": "nope", "requestId": "r"}) == (
        -32602, "http/request url is invalid: relative URL without a base")
    assert await client.error("http/request", {"method": "GET", "url": url, "requestId": "r",
                                               "headers": [{"name": "bad name", "value": "x"}]}) == (
        -32602, "http/request header name is invalid: invalid HTTP header name")


async def test_send_failure(client: Client) -> None:
    code, msg = await client.error("http/request", {"method": "GET", "url": "http://127.0.0.1:1/", "requestId": "r"})
    assert code == -32603 and msg == "http/request failed: error sending request for url (http://127.0.0.1:1/)"


async def test_streamed(client: Client, http_url) -> None:
    url, _ = http_url
    params = {"method": "GET", "url": url + "/stream", "requestId": "s1", "streamResponse": True}
    res = await client.result("http/request", params)
    assert res["status"] == 201 and res["bodyBase64"] == ""
    assert await client.error("http/request", params) == (
        -32602, "http/request streamResponse requestId `s1` is already active")
    last = await client.wait_for(lambda m: m.get("method") == "http/request/bodyDelta" and m["params"]["done"])
    deltas = [m["params"] for m in client.messages if m.get("method") == "http/request/bodyDelta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    assert b"".join(base64.b64decode(d["deltaBase64"]) for d in deltas) == b"chunk0\nchunk1\nchunk2\n"
    assert last["params"]["deltaBase64"] == "" and last["params"]["error"] is None
    # response came before the first delta
    idx_resp = next(i for i, m in enumerate(client.messages) if m.get("result", {}) == res)
    idx_delta = next(i for i, m in enumerate(client.messages) if m.get("method") == "http/request/bodyDelta")
    assert idx_resp < idx_delta
    assert (await client.result("http/request", params))["status"] == 201  # id released


async def test_stream_timeout_terminal_error(client: Client, http_url) -> None:
    url, _ = http_url
    await client.result("http/request", {"method": "GET", "url": url + "/slow", "requestId": "t",
                                         "streamResponse": True, "timeoutMs": 300})
    last = await client.wait_for(lambda m: m.get("method") == "http/request/bodyDelta" and m["params"]["done"])
    assert last["params"]["error"] == "error decoding response body"


async def test_buffered_timeout(client: Client, http_url) -> None:
    url, _ = http_url
    code, msg = await client.error("http/request", {"method": "GET", "url": url + "/slow", "requestId": "t",
                                                    "timeoutMs": 300})
    assert code == -32603 and msg.startswith("http/request failed: ")
