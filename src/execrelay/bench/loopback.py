"""Serve an aiohttp application on a free loopback port (docs/benchmarks.md §Measurement rules).

The soak's helper servers and the tests' fake registries all need the same thing: an app on
``127.0.0.1``, a port the kernel picked (so parallel runs never collide), no access log.
"""
from __future__ import annotations

from typing import Iterable

from aiohttp import web


async def serve_loopback(routes: Iterable[web.RouteDef]) -> tuple[web.AppRunner, int]:
    """Serve ``routes`` (``web.get(path, handler)``, ...) on ``127.0.0.1`` and a free port:
    ``(runner, port)``; the caller stops it with ``await runner.cleanup()``."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]
