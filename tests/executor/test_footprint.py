"""An idle initialized connection stays small (issue 8: <= 2 KiB per idle relay stream).

These pin the layout choices that keep it small -- rare state allocated on first use, no set
entry once a session holds the connection -- and that shutdown still reaches every connection.
"""
from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from execrelay.executor import ExecServer, RpcConnection

from .conftest import Client

pytestmark = pytest.mark.timeout(30)

INIT = b'{"id":0,"method":"initialize","params":{"clientName":"t","resumeSessionId":null}}'
INITIALIZED = b'{"method":"initialized","params":{}}'


def _open(server: ExecServer, sent: list) -> RpcConnection:
    conn = RpcConnection(server, sent.append, None)
    conn.feed(INIT)
    conn.feed(INITIALIZED)
    return conn


async def test_idle_connection_allocates_no_rare_state() -> None:
    server = ExecServer()
    sent: list[bytes] = []
    conn = _open(server, sent)
    assert conn.initialized and len(sent) == 1
    assert conn._x is None  # no queue, no pause state, default parse-error text
    assert conn.session._processes is None and conn.session._http_streams is None
    assert conn not in server.connections  # reachable as session.conn instead
    assert conn.session.conn is conn
    assert not hasattr(conn, "__dict__") and not hasattr(conn.session, "__dict__")
    await server.aclose()


async def test_traced_bytes_per_idle_connection() -> None:
    """Executor-side objects of one idle initialized connection (connection, session, its id,
    registry entries): traced 623 B before the slimming (eager dicts, 16 slots, a set entry),
    359 B after."""
    server = ExecServer()
    sent: list[bytes] = []
    keep = [_open(server, sent) for _ in range(50)]  # warm the registries
    n = 2000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keep += [_open(server, sent) for _ in range(n)]
        sent.clear()
        per = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert per < 450, per
    await server.aclose()


async def test_aclose_closes_attached_and_unattached_connections() -> None:
    server = ExecServer()
    closed: list[str] = []
    a = RpcConnection(server, lambda b: None, lambda: closed.append("a"))
    a.feed(INIT)
    b = RpcConnection(server, lambda b: None, lambda: closed.append("b"))  # no initialize
    assert a not in server.connections and b in server.connections
    await server.aclose()
    assert sorted(closed) == ["a", "b"] and a.closed and b.closed


async def test_detached_then_resumed_session_is_reachable(server: ExecServer) -> None:
    first = Client(server)
    sid = await first.handshake()
    first.conn.close()
    second = Client(server)
    assert await second.handshake(resume=sid) == sid
    assert server.sessions[sid].conn is second.conn and second.conn not in server.connections


async def test_extra_state_comes_and_goes_with_use(client: Client, tmp_path) -> None:
    """Queueing behind an async handler allocates the rare state; the queue is dropped once
    drained; pausing writes is visible as ``write_paused``."""
    conn = client.conn
    assert conn._x is None and conn.write_paused is False
    big = tmp_path / "big"
    big.write_bytes(b"x" * (1 << 20))  # > inline_io_bytes: answered by a worker thread
    client.send({"id": 1, "method": "fs/readFile", "params": {"path": str(big)}})
    client.send({"id": 2, "method": "fs/getMetadata", "params": {"path": str(big)}})
    assert conn._x is not None and len(conn._x.queue) == 1
    await client.response(2)
    assert conn._x.queue is None
    assert [m["id"] for m in client.messages if m.get("id") in (1, 2)] == [1, 2]
    conn.pause_writing()
    assert conn.write_paused
    resumed: list[int] = []
    conn.add_paused_source(lambda: resumed.append(1))
    conn.resume_writing()
    assert not conn.write_paused and resumed == [1]
    await asyncio.sleep(0)
