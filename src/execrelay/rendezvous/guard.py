"""Connections before authentication: a deadline each, and a cap on how many there are.

aiohttp has no header-read timeout and keeps an idle keep-alive connection for an hour, so a
client that connects and sends nothing, or half a request line, holds a socket forever
(slowloris).  :class:`ConnectionGuard` gives every connection a deadline from the moment it
is accepted: it must have sent a complete request by then.  While a request is being handled
the deadline is off (a websocket handler runs for the socket's whole life, after its token
was checked); when a plain HTTP request is answered the connection is idle again and gets a
new deadline, so keep-alive connections nobody uses are closed too.  Connections that are
waiting for their deadline are "unauthenticated"; above ``max_pending`` of them the oldest is
dropped, so a flood displaces its own connections rather than new, fast ones.

See docs/rendezvous.md §Security model.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from aiohttp import web

from .metrics import Metrics


class ConnectionGuard:
    """Deadlines for connections that have no request in progress (see module docstring)."""

    def __init__(self, timeout: float, max_pending: int, metrics: Metrics) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self.metrics = metrics
        #: transport -> its deadline timer; insertion ordered, oldest first.
        self._pending: dict[Any, asyncio.TimerHandle] = {}
        metrics.set_gauge_source("unauthenticated_connections", lambda: len(self._pending))

    def install(self, server: web.Server) -> None:
        """Hook the aiohttp server's connection callbacks (one guard per server)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: Any) -> None:
            made(handler, transport)
            self._arm(transport)

        def connection_lost(handler: Any, exc: BaseException | None) -> None:
            transport = handler.transport
            if transport is not None:
                self._disarm(transport)
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign,assignment]
        server.connection_lost = connection_lost  # type: ignore[method-assign,assignment]

    @web.middleware
    async def middleware(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        """No deadline while a request is handled; a fresh one once it is answered."""
        transport = request.transport
        if transport is not None:
            self._disarm(transport)
        try:
            return await handler(request)
        finally:
            if transport is not None and not transport.is_closing():
                self._arm(transport)

    def arm(self, transport: Any) -> None:
        """Start (or restart) ``transport``'s deadline: it has no request in progress."""
        self._arm(transport)

    def disarm(self, transport: Any) -> None:
        """Stop ``transport``'s deadline: its request is complete."""
        self._disarm(transport)

    def _arm(self, transport: Any) -> None:
        if self.timeout <= 0:
            return
        old = self._pending.pop(transport, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._pending[transport] = loop.call_later(self.timeout, self._expire, transport)
        while len(self._pending) > self.max_pending:
            oldest = next(iter(self._pending))
            self._drop(oldest, "unauthenticated_cap")

    def _disarm(self, transport: Any) -> None:
        handle = self._pending.pop(transport, None)
        if handle is not None:
            handle.cancel()

    def _expire(self, transport: Any) -> None:
        if self._pending.pop(transport, None) is not None:
            self._drop(transport, "handshake_timeout")

    def _drop(self, transport: Any, reason: str) -> None:
        self._disarm(transport)
        if transport.is_closing():  # gone already (a picows socket tells the guard nothing)
            return
        self.metrics.connections_dropped[reason] += 1
        transport.abort()

    def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
