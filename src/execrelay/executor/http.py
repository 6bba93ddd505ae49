"""``http/request``: buffered and streamed (``http/request/bodyDelta``) through aiohttp.

A buffered request holds the connection's request loop until the body is read
(docs/exec-server.md §Transports), so it is a :class:`Deferred`.  A streamed one answers once
headers are in and then pumps body deltas from a task owned by the session; the pump starts
only after the response was sent (the response precedes the first delta: docs/exec-server.md
§Methods).  The aiohttp client is the server's (:meth:`ExecServer.http_client`).
"""
from __future__ import annotations

import asyncio
import re
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from .errors import INTERNAL_ERROR, INVALID_PARAMS, RpcError
from .params import (MISSING, b64_param, b64encode, bad_type, missing, opt_bool, opt_u64, req_str,
                     struct)
from .results import Deferred, PostSend
from .session import Session, gate

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection
    from .server import ExecServer

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VISIBLE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
_dumps = orjson.dumps
_DELTA_BYTES = 65536
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
#: aiohttp and yarl, bound by the first http/request (most executors never make one, and
#: importing them would add to every executor's start-up time and memory)
_aiohttp: Any = None
_yarl: Any = None


def _load_http_deps() -> None:
    global _aiohttp, _yarl
    import aiohttp
    import yarl

    _aiohttp, _yarl = aiohttp, yarl


def http_request(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "HttpRequestParams")
    method = req_str(p, "method")
    url = req_str(p, "url")
    headers_v = p.get("headers")
    headers: list[tuple[str, str]] = []
    if headers_v is not None:
        if type(headers_v) is not list:
            raise bad_type(headers_v, "a sequence")
        for h in headers_v:
            if type(h) is not dict:
                raise bad_type(h, "struct HttpHeader")
            headers.append((req_str(h, "name"), req_str(h, "value")))
    body64 = p.get("bodyBase64")
    body = None
    if body64 is not None:
        if type(body64) is not str:
            raise bad_type(body64, "a string")
        body = b64_param(body64)
    timeout_ms = opt_u64(p, "timeoutMs", None)
    request_id = p.get("requestId", MISSING)
    if request_id is MISSING:
        raise missing("requestId")
    if type(request_id) is not str:
        raise bad_type(request_id, "a string")
    stream = opt_bool(p, "streamResponse", False)
    session = gate(conn, "http")
    if not _TOKEN.match(method):
        raise RpcError(INVALID_PARAMS, "http/request method is invalid: invalid HTTP method")
    scheme, sep, rest = url.partition(":")
    if not sep or not _SCHEME.match(scheme):
        raise RpcError(INVALID_PARAMS, "http/request url is invalid: relative URL without a base")
    if scheme.lower() not in ("http", "https"):
        raise RpcError(INVALID_PARAMS, f"http/request only supports http and https URLs, got {scheme.lower()}")
    if _yarl is None:
        _load_http_deps()
    try:
        parsed = _yarl.URL(url)
        if not parsed.host:
            raise ValueError("empty host")
    except Exception:
        raise RpcError(INVALID_PARAMS, "http/request url is invalid: empty host") from None
    for name, value in headers:
        if not _TOKEN.match(name):
            raise RpcError(INVALID_PARAMS, "http/request header name is invalid: invalid HTTP header name")
        if "\r" in value or "\n" in value or "\x00" in value:
            raise RpcError(INVALID_PARAMS, "http/request header value is invalid: failed to parse header value")
    if stream and request_id in session.http_streams:
        raise RpcError(INVALID_PARAMS, f"http/request streamResponse requestId `{request_id}` is already active")
    return Deferred(_do_request(conn.server, session, method, parsed, headers, body, timeout_ms, request_id, stream))


def _resp_headers(resp: Any) -> list[dict[str, str]]:
    out = []
    for name, value in resp.raw_headers:
        try:
            v = value.decode("ascii")
        except UnicodeDecodeError:
            continue
        if not _VISIBLE.match(v):
            continue
        out.append({"name": name.decode("latin-1").lower(), "value": v})
    return out


async def _do_request(server: "ExecServer", session: "Session", method: str, url: Any,
                      headers: list[tuple[str, str]], body: bytes | None, timeout_ms: int | None,
                      request_id: str, stream: bool) -> Any:
    http = server.http_client()
    loop = asyncio.get_running_loop()
    deadline = None if timeout_ms is None else loop.time() + timeout_ms / 1000.0
    timeout = _aiohttp.ClientTimeout(total=None if timeout_ms is None else timeout_ms / 1000.0)
    err_text = f"http/request failed: error sending request for url ({url})"
    if stream:
        session.http_streams[request_id] = None  # type: ignore[assignment]  # reserve the id
    try:
        try:
            resp = await http.request(method, url, headers=headers, data=body, timeout=timeout,
                                      allow_redirects=True)
        except asyncio.CancelledError:
            raise
        except Exception:
            raise RpcError(INTERNAL_ERROR, err_text) from None
        if not stream:
            try:
                data = await resp.read()
            except Exception:
                resp.release()
                raise RpcError(INTERNAL_ERROR, err_text) from None
            return {"status": resp.status, "headers": _resp_headers(resp), "bodyBase64": b64encode(data)}
    except BaseException:
        if stream:
            session.http_streams.pop(request_id, None)
        raise
    result = {"status": resp.status, "headers": _resp_headers(resp), "bodyBase64": ""}

    def start_pump() -> None:
        task = loop.create_task(_pump(session, request_id, resp, deadline))
        session.http_streams[request_id] = task

    return PostSend(result, start_pump)


def _wake(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


async def _pump(session: "Session", request_id: str, resp: Any, deadline: float | None) -> None:
    seq = 0
    error = None
    loop = asyncio.get_running_loop()
    try:
        while True:
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise asyncio.TimeoutError
                data = await asyncio.wait_for(resp.content.readany(), remaining)
            else:
                data = await resp.content.readany()
            if not data:
                break
            for i in range(0, len(data), _DELTA_BYTES):
                seq += 1
                session.notify_bytes(_dumps({"method": "http/request/bodyDelta", "params": {
                    "requestId": request_id, "seq": seq, "deltaBase64": b64encode(data[i:i + _DELTA_BYTES]),
                    "done": False, "error": None}}))
            conn = session.conn
            if conn is not None and conn.write_paused:
                # the peer is not reading (socket buffer or relay stream bound is full): stop
                # reading the body until it drains, as process output does
                resumed: asyncio.Future[None] = loop.create_future()
                conn.add_paused_source(partial(_wake, resumed))
                await resumed
    except asyncio.CancelledError:
        resp.release()
        session.http_streams.pop(request_id, None)
        raise
    except Exception:
        error = "error decoding response body"
    resp.release()
    seq += 1
    session.http_streams.pop(request_id, None)
    session.notify_bytes(_dumps({"method": "http/request/bodyDelta", "params": {
        "requestId": request_id, "seq": seq, "deltaBase64": "", "done": True, "error": error}}))

