"""Run an aiohttp application on 127.0.0.1 in a background thread with its own event loop.

Test servers (fake model, HTTP fixture for ``http/request``) must outlive a single test's event
loop and serve subprocesses (codex, exec-servers), so they run in a thread; the test talks to
them only via their URL and thread-safe recorded state.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Callable

from aiohttp import web


class ThreadedApp:
    def __init__(self, make_app: Callable[[], web.Application], host: str = "127.0.0.1") -> None:
        self._make_app = make_app
        self.host = host
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "ThreadedApp":
        self._thread = threading.Thread(target=self._run, daemon=True, name="aiohttp-thread")
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("aiohttp test server did not start")
        if self._error is not None:
            raise RuntimeError(f"aiohttp test server failed: {self._error!r}")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # pragma: no cover - surfaced via start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:
                pass
            self._thread.join(10)

    def __enter__(self) -> "ThreadedApp":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
