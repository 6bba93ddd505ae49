"""The dispatch table and the session handshake (``initialize``) with its gating rules."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .errors import RpcError, INVALID_REQUEST
from .params import opt_str, req_str, struct

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection
    from .session import Session


def gate(conn: "RpcConnection", family: str) -> "Session":
    """Spec 2.3: initialize done, session still ours, ``initialized`` received -- in that order."""
    session = conn.session
    if session is None:
        raise RpcError(INVALID_REQUEST, f"client must call initialize before using {family} methods")
    if session.conn is not conn:
        raise RpcError(INVALID_REQUEST, "session has been resumed by another connection")
    if not conn.initialized:
        raise RpcError(INVALID_REQUEST, f"client must send initialized before using {family} methods")
    return session


def initialize(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "InitializeParams")
    req_str(p, "clientName")
    resume = opt_str(p, "resumeSessionId")
    if conn.session is not None:  # set only by a successful initialize
        raise RpcError(INVALID_REQUEST, "initialize may only be sent once per connection")
    session = conn.server.attach(conn, resume)  # raises: the connection stays uninitialized
    conn.session = session
    return {"sessionId": session.id}


def build_handlers() -> dict[str, Callable[..., Any]]:
    from . import fs, http, process

    table: dict[str, Callable[..., Any]] = {"initialize": initialize}
    table.update(process.HANDLERS)
    table.update(fs.HANDLERS)
    table.update(http.HANDLERS)
    return table
