"""In-process exec-server fixtures: an ExecServer and JSON-RPC clients driving RpcConnection directly.

Driving the connection object without a socket keeps these tests fast and exact; the transport
tests (tests/transport) cover the same server over real loopback websockets and stdio.
"""
from __future__ import annotations

import asyncio
import base64
import itertools
from typing import Any, AsyncIterator

import orjson
import pytest

from execrelay.executor import ExecServer, ExecServerConfig, RpcConnection


class Client:
    """Collects everything the connection sends; helpers wait for responses/notifications."""

    def __init__(self, server: ExecServer) -> None:
        self.server = server
        self.raw: list[bytes] = []
        self.messages: list[dict] = []
        self.closed_by_server = False
        self._ids = itertools.count(1000)
        self._changed = asyncio.Event()
        self.conn = RpcConnection(server, self._on_send, self._on_close,
                                  parse_error_prefix="failed to parse JSON-RPC message from exec-server stdio: ")

    def _on_send(self, data: bytes) -> None:
        assert isinstance(data, bytes)
        self.raw.append(data)
        self.messages.append(orjson.loads(data))
        self._changed.set()

    def _on_close(self) -> None:
        self.closed_by_server = True
        self._changed.set()

    def send(self, msg: Any) -> None:
        self.conn.feed(msg if isinstance(msg, (bytes, str)) else orjson.dumps(msg))

    async def wait_for(self, pred: Any, timeout: float = 5.0) -> dict:
        async def loop() -> dict:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(loop(), timeout)

    async def response(self, rid: Any, timeout: float = 5.0) -> dict:
        return await self.wait_for(lambda m: "method" not in m and m.get("id") == rid
                                   and type(m.get("id")) is type(rid), timeout)

    async def call(self, method: str, params: Any = None, timeout: float = 5.0, **kw: Any) -> dict:
        rid = kw.get("id", next(self._ids))
        msg: dict = {"id": rid, "method": method}
        if params is not None or kw.get("null_params"):
            msg["params"] = params
        self.send(msg)
        return await self.response(rid, timeout)

    async def result(self, method: str, params: Any = None, timeout: float = 5.0) -> Any:
        resp = await self.call(method, params, timeout)
        assert "result" in resp, resp
        return resp["result"]

    async def error(self, method: str, params: Any = None, timeout: float = 5.0) -> tuple[int, str]:
        resp = await self.call(method, params, timeout)
        assert "error" in resp, resp
        return resp["error"]["code"], resp["error"]["message"]

    async def handshake(self, name: str = "t", resume: str | None = None) -> str:
        res = await self.result("initialize", {"clientName": name, "resumeSessionId": resume})
        self.send({"method": "initialized", "params": {}})
        return res["sessionId"]

    def events(self, process_id: str) -> list[dict]:
        return [m for m in self.messages if m.get("method", "").startswith("process/")
                and m["params"].get("processId") == process_id]

    async def wait_closed(self, process_id: str, timeout: float = 10.0) -> list[dict]:
        await self.wait_for(lambda m: m.get("method") == "process/closed"
                            and m["params"]["processId"] == process_id, timeout)
        return self.events(process_id)

    def output(self, process_id: str) -> bytes:
        evs = sorted((e for e in self.events(process_id) if e["method"] == "process/output"),
                     key=lambda e: e["params"]["seq"])
        return b"".join(base64.b64decode(e["params"]["chunk"]) for e in evs)


def start_params(pid: str, argv: list[str], **kw: Any) -> dict:
    p = {"processId": pid, "argv": argv, "cwd": "/tmp", "env": {"PATH": "/usr/bin:/bin"}, "tty": False,
         "arg0": None}
    p.update(kw)
    return p


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


@pytest.fixture
async def server() -> AsyncIterator[ExecServer]:
    # these tests pin the 0.131 dialect (auto-mode rules: test_compat_auto.py; 0.171: tests/conformance171)
    srv = ExecServer(ExecServerConfig(compat="0.131", detached_session_ttl=0.5, exited_process_retention=0.5))
    yield srv
    await srv.aclose()


@pytest.fixture
async def client(server: ExecServer) -> Client:
    c = Client(server)
    await c.handshake()
    return c


@pytest.fixture
def new_client(server: ExecServer) -> Any:
    return lambda: Client(server)


async def serve_app(app: Any) -> tuple[Any, int]:
    """Start an aiohttp ``app`` on a free loopback port: ``(runner, port)``; the caller cleans up
    with ``await runner.cleanup()``."""
    from aiohttp import web

    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
