"""Transports for JSON-RPC links: websocket (picows fast path, ``websockets`` pure path) and stdio.

``serve_websocket`` / ``connect_websocket`` pick picows unless ``EXECRELAY_PURE=1`` (or
``impl="websockets"``) or picows is missing; both implementations give the same
:class:`~execrelay.transport.base.Link` interface and behave the same (the tests run on both).
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional, Tuple

from .. import _accel
from .base import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, Link, LinkFactory, LinkHandler, Server, format_url

#: Connection liveness (docs/relay-protocol.md §Reliable mode) for relay clients: ping after 30 s idle, give up 60 s later.
RELAY_KEEPALIVE: tuple[float, float] = (30.0, 60.0)

__all__ = ["serve_websocket", "connect_websocket", "RELAY_KEEPALIVE", "default_impl", "install_event_loop_policy",
           "Link", "LinkHandler", "LinkFactory", "Server", "format_url",
           "MAX_FRAME_BYTES", "MAX_MESSAGE_BYTES"]


def _has_picows() -> bool:
    try:
        import picows  # noqa: F401
    except ImportError:
        return False
    return True


def default_impl() -> str:
    """``"picows"`` on the fast path, ``"websockets"`` when pure is forced or picows is missing."""
    if _accel.FORCE_PURE or not _has_picows():
        return "websockets"
    return "picows"


def _module(impl: str | None) -> Any:
    impl = impl or default_impl()
    if impl == "picows":
        from . import ws_picows
        return ws_picows
    if impl == "websockets":
        from . import ws_websockets
        return ws_websockets
    raise ValueError(f"unknown websocket implementation {impl!r}")


#: an upgrade check: given the request's ``Authorization`` header (None if absent), None to
#: accept or ``(http status, plain-text body)`` to refuse (exec-server ``--ws-auth``)
UpgradeCheck = Callable[[Optional[str]], Optional[Tuple[int, str]]]


async def serve_websocket(factory: LinkFactory, host: str, port: int, *, impl: str | None = None,
                          max_message: int = MAX_MESSAGE_BYTES, max_frame: int = MAX_FRAME_BYTES,
                          readyz: bool = True, check_upgrade: UpgradeCheck | None = None) -> Server:
    """Start a websocket server; ``factory(link)`` returns the handler of each new connection;
    ``check_upgrade`` (optional) may refuse an upgrade of ``/``."""
    return await _module(impl).serve(factory, host, port, max_message=max_message,
                                     max_frame=max_frame, readyz=readyz, check_upgrade=check_upgrade)


async def connect_websocket(url: str, factory: LinkFactory, *, impl: str | None = None,
                            max_message: int = MAX_MESSAGE_BYTES, max_frame: int = MAX_FRAME_BYTES,
                            extra_headers: Any = None, timeout: float = 10.0,
                            keepalive: tuple[float, float] | None = None,
                            ssl_context: Any = None) -> Link:
    """Connect to a websocket server; returns the link after the handshake.

    ``keepalive=(interval, timeout)`` pings the server after ``interval`` seconds without
    traffic and drops the connection when no pong comes within ``timeout`` (relay clients use
    30 s / 60 s, docs/relay-protocol.md §Limits, so a dead peer is noticed within 90 s and the streams Resume elsewhere).
    ``ssl_context``: for ``wss://`` (see :mod:`.tls`); None verifies against the system store.
    """
    return await _module(impl).connect(url, factory, max_message=max_message, max_frame=max_frame,
                                       extra_headers=extra_headers, timeout=timeout,
                                       keepalive=keepalive, ssl_context=ssl_context)


def install_event_loop_policy() -> str:
    """Use uvloop unless pure is forced or it is missing; returns ``"uvloop"`` or ``"asyncio"``."""
    if _accel.FORCE_PURE:
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
