"""A session: the process table and streaming http requests of one client, across reconnects."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection
    from .process import ManagedProcess


class Session:
    """State that outlives a connection: processes keep running while detached (spec 2.4).

    The process and http-stream tables are created on first use: most sessions (one per
    relay stream) never start a process, and an idle stream must stay small (issue 8).
    """

    __slots__ = ("id", "conn", "_processes", "_http_streams", "expiry")

    def __init__(self, session_id: str) -> None:
        self.id = session_id
        #: the attached connection, or None while detached
        self.conn: RpcConnection | None = None
        self._processes: dict[str, ManagedProcess] | None = None
        self._http_streams: dict[str, asyncio.Task] | None = None
        self.expiry: asyncio.TimerHandle | None = None

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
