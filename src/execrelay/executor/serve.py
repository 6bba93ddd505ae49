"""Run an :class:`ExecServer` on the local transports (websocket, stdio): used by the CLI and tests."""
from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any

from ..transport import Link, Server, serve_websocket
from ..transport.stdio import serve_stdio as _serve_stdio
from .connection import RpcConnection
from .server import ExecServer

_WS_RE = re.compile(r"^ws://(\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d+)$")


class ListenUrlError(ValueError):
    pass


def parse_listen(url: str) -> tuple[str, str, int]:
    """``("ws", host, port)`` or ``("stdio", "", 0)``; errors carry 0.131.0's texts."""
    if url in ("stdio", "stdio://"):
        return ("stdio", "", 0)
    if not url.startswith("ws://"):
        raise ListenUrlError(f"unsupported --listen URL `{url}`; expected `ws://IP:PORT` or `stdio`")
    m = _WS_RE.match(url)
    bad = ListenUrlError(f"invalid websocket --listen URL `{url}`; expected `ws://IP:PORT`")
    if m is None:
        raise bad
    host, port_s = m.group(1), m.group(2)
    if host.startswith("["):
        host = host[1:-1]
    try:
        ipaddress.ip_address(host)
        port = int(port_s)
    except ValueError:
        raise bad from None
    if port > 65535:
        raise bad
    return ("ws", host, port)


def ws_connection_factory(server: ExecServer) -> Any:
    """A transport LinkFactory: one :class:`RpcConnection` per websocket link."""

    def factory(link: Link) -> RpcConnection:
        return RpcConnection(
            server, link.send, link.close,
            parse_error_prefix=f"failed to parse websocket JSON-RPC message from exec-server websocket {link.peer}: ",
            pause_reading=getattr(link, "pause_reading", None),
        )

    return factory


async def serve_ws(server: ExecServer, host: str = "127.0.0.1", port: int = 0, *, impl: str | None = None) -> Server:
    return await serve_websocket(ws_connection_factory(server), host, port, impl=impl)


async def serve_stdio(server: ExecServer) -> None:
    """Serve one JSON-RPC connection on stdin/stdout until EOF."""

    def factory(link: Link) -> RpcConnection:
        return RpcConnection(server, link.send, link.close,
                             parse_error_prefix="failed to parse JSON-RPC message from exec-server stdio: ")

    await _serve_stdio(factory)


async def wait_forever() -> None:
    await asyncio.get_running_loop().create_future()
