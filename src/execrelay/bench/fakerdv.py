"""The fake rendezvous the executor benchmarks use: a registry plus a websocket acceptor.

The driver plays the rendezvous so that nothing but the executor under test is measured:
:class:`Rendezvous` answers ``POST /cloud/executor/{id}/register`` (:mod:`.registry`) with a
websocket URL on its own picows server, where the executor's websocket becomes a
:class:`~execrelay.bench.load.ExecutorConn` for whoever :meth:`Rendezvous.expect` -ed that id.
"""
from __future__ import annotations

import asyncio

import picows

from .load import ExecutorConn
from .registry import Registry

#: picows frame limit of the driver's sockets (readFile16m replies exceed 16 MiB).
MAX_FRAME = 256 * 1024 * 1024


class Rendezvous:
    """Registry + websocket server; executors are matched by the id in the websocket path."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future] = {}
        self.http_port = 0
        self.ws_port = 0
        self._servers: list = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory(req: picows.WSUpgradeRequest):
            path = req.path.decode() if isinstance(req.path, bytes) else req.path
            eid = path.split("?")[0].rsplit("/", 1)[-1]
            fut = self.waiting.get(eid)
            if fut is None or fut.done():
                return None
            return ExecutorConn(eid, fut)

        ws = await picows.ws_create_server(factory, "127.0.0.1", 0, max_frame_size=MAX_FRAME,
                                           read_buffer_init_size=256 * 1024)
        self.ws_port = ws.sockets[0].getsockname()[1]
        http = await loop.create_server(lambda: Registry(f"ws://127.0.0.1:{self.ws_port}"),
                                        "127.0.0.1", 0)
        self.http_port = http.sockets[0].getsockname()[1]
        self._servers = [ws, http]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def expect(self, executor_id: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiting[executor_id] = fut
        return fut

    def close(self) -> None:
        for s in self._servers:
            s.close()
