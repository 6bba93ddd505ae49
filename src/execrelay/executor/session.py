"""A session: the process table and streaming http requests of one client, across reconnects;
with the handshake that creates it (``initialize``) and the gate every other method passes.

Why the handshake lives here: ``initialize`` and the gate are the session's rules, and keeping
them next to the state they check lets handler modules import them without importing the
connection or the server (the executor has no import cycle).  Every handler receives the
connection, and ``conn.session`` is the session: per-session state that handlers consult
belongs on :class:`Session`.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .dialect import COMPAT_131
from .errors import INVALID_REQUEST, RpcError
from .params import opt_str, req_str, struct

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection
    from .local_process import ManagedProcess


class Session:
    """State that outlives a connection: processes keep running while detached (docs/exec-server.md §Sessions).

    The process and http-stream tables are created on first use: most sessions (one per
    relay stream) never start a process, and an idle stream must stay small (issue 8).
    """

    __slots__ = ("id", "conn", "_processes", "_http_streams", "expiry", "dialect")

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        #: the attached connection, or None while detached
        self.conn: RpcConnection | None = None
        self._processes: dict[str, ManagedProcess] | None = None
        self._http_streams: dict[str, asyncio.Task] | None = None
        self.expiry: asyncio.TimerHandle | None = None
        #: in ``--compat auto``: the dialect this session's requests showed ("0.131" | "0.171"),
        #: None until one tells (see :mod:`.dialect`)
        self.dialect: str | None = None

    @property
    def processes(self) -> dict[str, "ManagedProcess"]:
        """processId -> process of this session."""
        procs = self._processes
        if procs is None:
            procs = self._processes = {}
        return procs

    @property
    def http_streams(self) -> dict[str, asyncio.Task]:
        """requestId -> task pumping a streamed http body."""
        streams = self._http_streams
        if streams is None:
            streams = self._http_streams = {}
        return streams

    def notify_bytes(self, data: bytes) -> None:
        """Deliver an encoded notification, or drop it while detached (0.131.0 does not queue)."""
        conn = self.conn
        if conn is not None:
            conn.send_bytes(data)

    def kill_all(self) -> None:
        procs = self._processes
        if procs:
            for proc in list(procs.values()):
                proc.kill_group()
                proc.forget()
            procs.clear()
        streams = self._http_streams
        if streams:
            for task in list(streams.values()):
                if task is not None:
                    task.cancel()
            streams.clear()

    def __repr__(self) -> str:  # pragma: no cover
        return f"<Session {self.id} attached={self.conn is not None} procs={len(self._processes or ())}>"


def gate(conn: "RpcConnection", family: str) -> Session:
    """Initialize done, session still ours, ``initialized`` received -- checked in that order,
    which decides the error text (docs/exec-server.md §Sessions)."""
    session = conn.session
    if session is None:
        raise RpcError(INVALID_REQUEST, f"client must call initialize before using {family} methods")
    if session.conn is not conn:
        raise RpcError(INVALID_REQUEST, "session has been resumed by another connection")
    if not conn.initialized:
        raise RpcError(INVALID_REQUEST, f"client must send initialized before using {family} methods")
    return session


def initialize(conn: "RpcConnection", params: Any) -> Any:
    """``initialize``: attach a new or resumed session; once per connection."""
    p = struct(params, "InitializeParams")
    req_str(p, "clientName")
    resume = opt_str(p, "resumeSessionId")
    if conn.session is not None:  # set only by a successful initialize
        raise RpcError(INVALID_REQUEST, "initialize may only be sent once per connection")
    session = conn.server.attach(conn, resume)  # raises: the connection stays uninitialized
    conn.session = session
    if conn.server.config.compat == COMPAT_131:
        return {"sessionId": session.id}
    # 0.171 and auto (a request of either dialect can't tell yet: the newer one wins); the
    # 0.131 harness ignores the extra member (docs/dialects.md §Auto mode)
    return conn.server.envinfo.initialize_result(session.id)
