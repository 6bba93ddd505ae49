"""Run an :class:`ExecServer` on the local transports (websocket, stdio): used by the CLI and tests."""
from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any, Callable

from ..transport import Link, Server, serve_websocket
from ..transport.stdio import serve_stdio as _serve_stdio
from .connection import RpcConnection
from .server import ExecServer
from .wsauth import WsAuthError, WsAuthPolicy

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


def upgrade_check(policy: WsAuthPolicy) -> Callable[[str | None], tuple[int, str] | None]:
    """The transports' upgrade hook for ``--ws-auth``: None accepts, else (401, plain-text reason)
    (docs/dialects.md §Websocket authentication)."""

    def check(header: str | None) -> tuple[int, str] | None:
        try:
            policy.authorize(header)
        except WsAuthError as exc:
            return exc.status, exc.message
        return None

    return check


async def serve_ws(server: ExecServer, host: str = "127.0.0.1", port: int = 0, *, impl: str | None = None,
                   auth: WsAuthPolicy | None = None) -> Server:
    """Serve ``server`` on a local websocket; with ``auth``, every upgrade must pass it."""
    check = None if auth is None else upgrade_check(auth)
    return await serve_websocket(ws_connection_factory(server), host, port, impl=impl, check_upgrade=check)


async def serve_stdio(server: ExecServer) -> None:
    """Serve one JSON-RPC connection on stdin/stdout until EOF."""

    def factory(link: Link) -> RpcConnection:
        return RpcConnection(server, link.send, link.close,
                             parse_error_prefix="failed to parse JSON-RPC message from exec-server stdio: ")

    await _serve_stdio(factory)


async def wait_forever() -> None:
    await asyncio.get_running_loop().create_future()
