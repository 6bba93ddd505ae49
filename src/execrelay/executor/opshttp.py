"""``--metrics-listen HOST:PORT``: the executor's ``/metrics`` and ``/readyz`` (docs/operations.md §Executor metrics).

A separate small HTTP server (aiohttp), not the exec-server's own port: the JSON-RPC port may
be stdio, a websocket with ``--ws-auth``, or absent (``--remote``), and a scraper must not
need the harness's credentials.  ``/readyz`` answers 200 ``ready`` once the executor serves
(listening, or registered and connected to the rendezvous), 503 ``starting`` before and 503
``draining`` during a graceful drain, so a load balancer stops sending new work.
"""
from __future__ import annotations

from typing import Any, Callable

from ..promtext import CONTENT_TYPE
from .metrics import ExecutorMetrics

#: readiness states: only READY answers 200
READY, STARTING, DRAINING = "ready", "starting", "draining"


class OpsServer:
    """``/metrics`` + ``/readyz`` on their own port; ``state`` is read at each request."""

    def __init__(self, metrics: ExecutorMetrics, state: Callable[[], str]) -> None:
        self.metrics = metrics
        self.state = state
        self.host = ""
        self.port = 0
        self._runner: Any = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self, host: str, port: int) -> str:
        """Listen (port 0 picks one); returns :attr:`url`.  Raises OSError when it cannot."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server  # noqa: SLF001 - aiohttp has no public accessor for the bound port
        sockets = getattr(server, "sockets", None) or ()
        self.host, self.port = host, int(sockets[0].getsockname()[1]) if sockets else port
        return self.url

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _metrics(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": CONTENT_TYPE})

    async def _readyz(self, request: Any) -> Any:
        from aiohttp import web

        state = self.state()
        return web.Response(text=state + "\n", status=200 if state == READY else 503)

