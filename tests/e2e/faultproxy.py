"""A fault-injecting websocket proxy for relay traffic (tests only).

Sits in front of a rendezvous: ``POST /cloud/executor/{id}/register`` (and the Noise
registry's ``/cloud/environment/{id}/register|connect|validate``) is forwarded and a returned
websocket URL is rewritten to point back at the proxy, and every websocket (executor
or harness) is piped to the same path upstream.  Binary frames crossing it are dropped,
duplicated, reordered and delayed with a seeded RNG; :meth:`kill_executors` cuts every
executor-side socket (the executor then re-registers and reconnects through the proxy).
"""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import aiohttp
from aiohttp import WSMsgType, web


@dataclass
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0          # probability of delaying a frame
    max_delay: float = 0.02     # seconds


class FaultProxy:
    def __init__(self, upstream_http: str, faults: Faults, seed: int = 1) -> None:
        self.upstream = upstream_http.rstrip("/")
        self.faults = faults
        self.rng = random.Random(seed)
        self.base = ""
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._executor_sockets: set[web.WebSocketResponse] = set()
        self._tasks: set[asyncio.Task] = set()
        self.stats = {"dropped": 0, "duplicated": 0, "reordered": 0, "delayed": 0, "forwarded": 0, "kills": 0}

    async def start(self) -> str:
        self._http = aiohttp.ClientSession()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/cloud/executor/{id}/register", self._register)
        app.router.add_post("/cloud/environment/{id}/{op}", self._register)
        app.router.add_get("/{tail:.*}", self._ws)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        self.base = f"http://127.0.0.1:{port}"
        return self.base

    def ws_url(self, upstream_ws_url: str) -> str:
        """Rewrite an upstream ws:// URL to go through the proxy."""
        up = self.upstream.replace("http://", "ws://")
        assert upstream_ws_url.startswith(up), upstream_ws_url
        return self.base.replace("http://", "ws://") + upstream_ws_url[len(up):]

    async def _register(self, request: web.Request) -> web.Response:
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type", "x-codex-noise-stream-id")}
        async with self._http.post(self.upstream + request.path, headers=headers,
                                   data=await request.read()) as r:
            body = await r.json(content_type=None) if r.status == 200 else None
            if body is None:
                return web.Response(status=r.status, body=await r.read())
        if "url" in body:
            body["url"] = self.ws_url(body["url"])
        return web.json_response(body)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        url = self.upstream.replace("http://", "ws://") + request.path_qs
        try:
            upstream = await self._http.ws_connect(url, max_msg_size=64 * 1024 * 1024)
        except aiohttp.WSServerHandshakeError as exc:
            return web.Response(status=exc.status)
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        is_executor = request.path.startswith("/executor/")
        if is_executor:
            self._executor_sockets.add(ws)
        try:
            a = asyncio.ensure_future(self._pipe(ws, upstream))
            b = asyncio.ensure_future(self._pipe(upstream, ws))
            await asyncio.wait([a, b], return_when=asyncio.FIRST_COMPLETED)
            a.cancel()
            b.cancel()
        finally:
            self._executor_sockets.discard(ws)
            await upstream.close()
            await ws.close()
        return ws

    async def _pipe(self, src, dst) -> None:
        held: list[bytes] = []
        f = self.faults
        rng = self.rng
        async for msg in src:
            if msg.type != WSMsgType.BINARY:
                if msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                    continue
                break
            data = msg.data
            r = rng.random()
            if r < f.drop:
                self.stats["dropped"] += 1
                continue
            copies = 2 if rng.random() < f.duplicate else 1
            if copies == 2:
                self.stats["duplicated"] += 1
            if rng.random() < f.reorder:
                self.stats["reordered"] += 1
                held.append(data)
                continue
            if rng.random() < f.delay:
                self.stats["delayed"] += 1
                self._later(dst, data, rng.uniform(0, f.max_delay))
                continue
            for _ in range(copies):
                await dst.send_bytes(data)
            self.stats["forwarded"] += 1
            while held:
                await dst.send_bytes(held.pop(0))

    def _later(self, dst, data: bytes, delay: float) -> None:
        async def send() -> None:
            await asyncio.sleep(delay)
            if not dst.closed:
                try:
                    await dst.send_bytes(data)
                except ConnectionError:
                    pass
        task = asyncio.ensure_future(send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def kill_executors(self) -> None:
        self.stats["kills"] += 1
        for ws in list(self._executor_sockets):
            await ws.close()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for ws in list(self._executor_sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()
