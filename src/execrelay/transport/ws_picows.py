"""Websocket server and client on picows (the fast path, used with uvloop).

The link and the listener (batching, fragments, limits) are in :mod:`._picows_py` and its
compiled twin; this module starts servers and clients with them.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from picows import (WSUpgradeRequest, WSUpgradeResponse, WSUpgradeResponseWithListener, ws_connect,
                    ws_create_server)

from .. import _accel
from .base import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, LinkFactory, format_url

#: the link and listener: compiled against the installed picows (``ext/transport/_picows_c.pyx``)
#: or the Python twin (``_picows_py.py``), same behaviour
_impl = _accel.select("picows", "execrelay.transport._picows_c", "execrelay.transport._picows_py")
_Listener = _impl.Listener
if TYPE_CHECKING:  # pragma: no cover
    from ._picows_py import PicowsLink
else:
    PicowsLink = _impl.PicowsLink


class PicowsServer:
    impl = "picows"

    def __init__(self, server: asyncio.AbstractServer) -> None:
        self._server = server
        sock = getattr(server, "sockets")[0].getsockname()  # uvloop's and asyncio's servers both have it
        self.host, self.port = sock[0], sock[1]
        self.url = format_url(self.host, self.port)

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


async def serve(factory: LinkFactory, host: str, port: int, *, max_message: int = MAX_MESSAGE_BYTES,
                max_frame: int = MAX_FRAME_BYTES, readyz: bool = True,
                check_upgrade: Any = None) -> PicowsServer:
    """Listen on ``host:port``; ``GET /`` upgrades, ``GET /readyz`` -> 200, others -> 404.
    ``check_upgrade`` may refuse an upgrade (see ``transport.UpgradeCheck``)."""

    def route(request: WSUpgradeRequest) -> Any:
        path = request.path.split(b"?", 1)[0]
        if path == b"/":
            if check_upgrade is not None:
                refused = check_upgrade(request.headers.get("Authorization"))
                if refused is not None:
                    return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
                        refused[0], refused[1].encode(), {"Content-Type": "text/plain; charset=utf-8"}), None)
            return _Listener(factory, False, max_message)
        if readyz and path == b"/readyz":
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_ok_response(b""), None)
        return None

    server = await ws_create_server(route, host, port, max_frame_size=max_frame,
                                    websocket_handshake_timeout=10, enable_auto_pong=True,
                                    use_aiofastnet=False)
    return PicowsServer(server)


async def connect(url: str, factory: LinkFactory, *, max_message: int = MAX_MESSAGE_BYTES,
                  max_frame: int = MAX_FRAME_BYTES, extra_headers: Any = None,
                  timeout: float = 10.0, keepalive: tuple[float, float] | None = None,
                  ssl_context: Any = None) -> PicowsLink:
    """Connect to ``url``; returns the link once the handshake is done.  ``keepalive =
    (interval, timeout)``: ping after ``interval`` idle seconds, drop the connection when no
    pong comes within ``timeout``."""
    ping: dict[str, Any] = {}
    if keepalive is not None:
        # picows wants the reply timeout <= the idle interval: a dead peer is then noticed
        # after at most 2 x interval (60 s for 30 s pings, stricter than the 90 s of docs/relay-protocol.md §Limits).
        ping = {"enable_auto_ping": True, "auto_ping_idle_timeout": keepalive[0],
                "auto_ping_reply_timeout": min(keepalive[1], keepalive[0])}
    transport, listener = await ws_connect(lambda: _Listener(factory, True, max_message), url,
                                           max_frame_size=max_frame, extra_headers=extra_headers,
                                           websocket_handshake_timeout=timeout, use_aiofastnet=False,
                                           ssl_context=ssl_context, **ping)
    link: PicowsLink | None = getattr(listener, "link")  # set by _Listener when the handshake completes
    if link is None:  # the server hung up right after the upgrade, before picows reported it
        transport.disconnect()
        raise ConnectionResetError("websocket closed during the opening handshake")
    return link
