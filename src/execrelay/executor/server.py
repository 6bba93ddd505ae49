"""The exec-server state shared by every connection: sessions, method table, http client, config.

One :class:`ExecServer` serves all transports at once (local websocket, stdio, relay streams),
so a session detached from one connection can be resumed from another.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .dialect import COMPAT_131, COMPAT_171, COMPAT_AUTO
from .envinfo import EnvInfo
from .errors import INVALID_REQUEST, SESSION_ATTACHED, RpcError
from .methods import METHODS, NEW_IN_171, Handler
from .metrics import ExecutorMetrics, MethodStats, MethodTable
from .session import Session

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection


#: 0.131.0 expires a detached session after 10 s; 0.171.0 keeps it longer (resumable at 74 s,
#: gone at 81 s when probed: docs/dialects.md §Sessions)
DETACHED_TTL_131 = 10.0
DETACHED_TTL_171 = 80.0


@dataclass
class ExecServerConfig:
    """Timings and limits; defaults are 0.131.0's (docs/exec-server.md §Sessions, §Methods)."""

    #: ``auto`` | ``0.131`` | ``0.171`` (see :mod:`.dialect`)
    compat: str = "auto"
    #: how long a detached session stays resumable; None: its dialect's lifetime
    #: (:data:`DETACHED_TTL_131`, :data:`DETACHED_TTL_171`)
    detached_session_ttl: float | None = None
    exited_process_retention: float = 30.0
    retained_output_bytes: int = 1024 * 1024
    output_chunk_bytes: int = 8192
    read_file_limit: int = 512 * 1024 * 1024
    #: file sizes up to this are read/written on the event loop (microseconds); larger go to a thread
    inline_io_bytes: int = 256 * 1024
    extra: dict[str, Any] = field(default_factory=dict)


class ExecServer:
    """Session registry + method table + http client, shared by all connections.

    ``handlers`` is the method table the connections dispatch on (default: :data:`.methods.METHODS`);
    the server only holds it, so handler modules never need the server module.
    """

    def __init__(self, config: ExecServerConfig | None = None,
                 handlers: Mapping[str, Handler] | None = None) -> None:
        self.config = config or ExecServerConfig()
        #: counters and gauges (docs/operations.md §Executor metrics)
        self.metrics = ExecutorMetrics()
        #: method name -> handler (a dict; adding or removing one updates :attr:`dispatch`)
        self.handlers: dict[str, Handler] = MethodTable(METHODS if handlers is None else handlers,
                                                        self.metrics)
        #: method name -> its handler and counters: what connections look up, once per request
        self.dispatch: dict[str, MethodStats] = self.metrics.methods
        if self.config.compat == COMPAT_131:  # 0.131.0 answers -32601 for everything newer
            for name in NEW_IN_171:
                self.handlers.pop(name, None)
        self._envinfo: EnvInfo | None = None
        self.sessions: dict[str, Session] = {}
        #: open connections that have no session yet (removed in RpcConnection.close and on
        #: attach: an attached connection is reachable as ``session.conn``, which saves a set
        #: entry per idle relay stream); aclose() drops both kinds
        self.connections: set[RpcConnection] = set()
        self._http: Any = None  # aiohttp.ClientSession, created by the first http/request
        self._closed = False
        #: set by a graceful drain (docs/operations.md §Graceful drain): ``initialize`` of a new
        #: session is refused, a resume of a detached one is still allowed
        self.draining = False
        self._register_gauges()

    # ---------------------------------------------------------------- sessions
    def new_session(self) -> Session:
        session = Session(str(uuid.uuid4()))
        self.sessions[session.id] = session
        return session

    def attach(self, conn: "RpcConnection", resume_id: str | None) -> Session:
        if resume_id is None:
            if self.draining:
                raise RpcError(INVALID_REQUEST, "executor is draining: no new sessions "
                                                "(docs/operations.md §Graceful drain)")
            session = self.new_session()
        else:
            found = self.sessions.get(resume_id)
            if found is None:
                raise RpcError(INVALID_REQUEST, f"unknown session id {resume_id}")
            session = found
            if session.conn is not None:
                code = SESSION_ATTACHED if self._is_171(session) else INVALID_REQUEST
                raise RpcError(code, f"session {resume_id} is already attached to another connection")
            if session.expiry is not None:
                session.expiry.cancel()
                session.expiry = None
        session.conn = conn
        self.connections.discard(conn)
        return session

    def _is_171(self, session: Session) -> bool:
        """The session's dialect (docs/dialects.md §Auto mode): fixed by ``compat``, else what
        its requests showed, the newer release while none told."""
        compat = self.config.compat
        if compat != COMPAT_AUTO:
            return compat == COMPAT_171
        return session.dialect != COMPAT_131

    def detach(self, session: Session, conn: "RpcConnection") -> None:
        """The connection is gone: keep the session for its dialect's detached lifetime."""
        if session.conn is not conn:
            return
        session.conn = None
        if self._closed:
            return
        ttl = self.config.detached_session_ttl
        if ttl is None:
            ttl = DETACHED_TTL_171 if self._is_171(session) else DETACHED_TTL_131
        loop = asyncio.get_running_loop()
        session.expiry = loop.call_later(ttl, self._expire, session)

    def _expire(self, session: Session) -> None:
        session.expiry = None
        if session.conn is None and self.sessions.get(session.id) is session:
            del self.sessions[session.id]
            session.kill_all()

    @property
    def envinfo(self) -> EnvInfo:
        """0.171's ``environmentInfo``, built on first use and kept (docs/dialects.md §Environment info)."""
        info = self._envinfo
        if info is None:
            info = self._envinfo = EnvInfo(environment_id=str(self.config.extra.get("environment_id", "")))
        return info

    # ---------------------------------------------------------------- http client
    def http_client(self) -> Any:
        """The server's aiohttp ``ClientSession`` (one pool for every session's requests),
        created on first use: aiohttp is imported only by executors that make http requests.

        It keeps no cookies (upstream's reqwest client has no cookie store): a shared jar would
        send cookies one session received on another session's requests."""
        http = self._http
        if http is None or http.closed:
            import aiohttp

            http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=False),
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._http = http
        return http

    # ---------------------------------------------------------------- shutdown
    def kill_all(self) -> None:
        """Kill every process of every session (sync; safe from signal handlers and atexit)."""
        for session in list(self.sessions.values()):
            if session.expiry is not None:
                session.expiry.cancel()
                session.expiry = None
            session.kill_all()
        self.sessions.clear()

    async def aclose(self) -> None:
        """Drop all connections, kill all processes (whole groups), close the http client."""
        self._closed = True
        conns = list(self.connections)
        conns += [s.conn for s in self.sessions.values() if s.conn is not None]
        for conn in conns:
            conn.close("server shutting down")
        self.kill_all()
        http = self._http
        self._http = None
        if http is not None:
            await http.close()
        # give killed children a moment to be reaped so none are left as zombies
        await asyncio.sleep(0)

    @property
    def pid(self) -> int:
        return os.getpid()

    # ---------------------------------------------------------------- gauges
    def all_connections(self) -> list["RpcConnection"]:
        """Every open connection: those without a session and the attached ones."""
        conns = list(self.connections)
        conns += [s.conn for s in self.sessions.values() if s.conn is not None]
        return conns

    def running_processes(self) -> int:
        """Processes of every session that have not exited."""
        return sum(1 for s in self.sessions.values() if s._processes
                   for p in s._processes.values() if not p.exited)

    def in_flight(self) -> int:
        """Requests running now (an async handler, one at most per connection)."""
        return sum(1 for c in self.all_connections() if c._task is not None)

    def _register_gauges(self) -> None:
        m = self.metrics
        m.set_gauge_source("connections", "Open JSON-RPC connections.",
                           lambda: len(self.all_connections()))
        m.set_gauge_source("sessions", "Sessions, attached to a connection or detached (resumable).",
                           lambda: [('{state="attached"}', sum(1 for s in self.sessions.values() if s.conn)),
                                    ('{state="detached"}', sum(1 for s in self.sessions.values()
                                                                if s.conn is None))])
        m.set_gauge_source("processes", "Processes started by sessions that are still running.",
                           self.running_processes)
        m.set_gauge_source("file_handles", "Open fs/open handles (0.171 dialect).",
                           lambda: sum(c.open_handles() for c in self.all_connections()))
        m.set_gauge_source("requests_in_flight", "Requests being processed (async handlers running).",
                           self.in_flight)
        m.set_gauge_source("queued_requests", "Messages waiting behind a running request, over all connections.",
                           lambda: sum(c.queued() for c in self.all_connections()))
