"""A session: the process table and streaming http requests of one client, across reconnects."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection
    from .process import ManagedProcess


class Session:
    """State that outlives a connection: processes keep running while detached (spec 2.4)."""

    __slots__ = ("id", "conn", "processes", "http_streams", "expiry", "__weakref__")

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        #: the attached connection, or None while detached
        self.conn: RpcConnection | None = None
        self.processes: dict[str, ManagedProcess] = {}
        #: requestId -> task pumping a streamed http body
        self.http_streams: dict[str, asyncio.Task] = {}
        self.expiry: asyncio.TimerHandle | None = None

    def notify_bytes(self, data: bytes) -> None:
        """Deliver an encoded notification, or drop it while detached (0.131.0 does not queue)."""
        conn = self.conn
        if conn is not None:
            conn.send_bytes(data)

    def kill_all(self) -> None:
        for proc in list(self.processes.values()):
            proc.kill_group()
            proc.forget()
        self.processes.clear()
        for task in list(self.http_streams.values()):
            if task is not None:
                task.cancel()
        self.http_streams.clear()

    def __repr__(self) -> str:  # pragma: no cover
        return f"<Session {self.id} attached={self.conn is not None} procs={len(self.processes)}>"
