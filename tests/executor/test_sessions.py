"""Detach on disconnect, resume from another connection, expiry kills the processes."""
from __future__ import annotations

import asyncio

import pytest

from execrelay.bench.procfs import all_stats

from .conftest import Client, start_params

pytestmark = pytest.mark.timeout(30)


def group_alive(pgid: int) -> bool:
    """True if a live (non-zombie) process is in process group ``pgid``."""
    return any(int(fields[2]) == pgid and fields[0] != "Z" for _, fields in all_stats())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_resume_after_disconnect_reads_detached_output(server, new_client) -> None:
    a: Client = new_client()
    sid = await a.handshake()
    await a.result("process/start", start_params("long", ["/bin/sh", "-c", "sleep 0.2; echo detached; sleep 5"]))
    a.conn.close("gone")
    assert server.sessions[sid].conn is None
    await asyncio.sleep(0.3)  # output while detached is retained, not pushed
    b: Client = new_client()
    assert await b.handshake(resume=sid) == sid
    res = await b.result("process/read", {"processId": "long", "afterSeq": 0})
    assert [c["chunk"] for c in res["chunks"]] == ["ZGV0YWNoZWQK"]
    await b.result("process/terminate", {"processId": "long"})
    await b.wait_closed("long")  # new notifications go to the new connection


async def test_resume_while_attached_and_unknown(server, new_client) -> None:
    a: Client = new_client()
    sid = await a.handshake()
    b: Client = new_client()
    assert await b.error("initialize", {"clientName": "b", "resumeSessionId": sid}) == (
        -32600, f"session {sid} is already attached to another connection")
    assert await b.error("initialize", {"clientName": "b", "resumeSessionId": "not-a-uuid"}) == (
        -32600, "unknown session id not-a-uuid")
    assert await b.handshake() != sid


async def test_expiry_kills_processes_and_forgets_session(server, new_client) -> None:
    a: Client = new_client()
    sid = await a.handshake()
    await a.result("process/start", start_params("s", ["/bin/sh", "-c", "sleep 100 & sleep 100"]))
    pid = server.sessions[sid].processes["s"].pid
    a.conn.close()
    await asyncio.sleep(0.8)  # ttl is 0.5 s in these tests
    assert sid not in server.sessions
    b: Client = new_client()
    assert await b.error("initialize", {"clientName": "b", "resumeSessionId": sid}) == (
        -32600, f"unknown session id {sid}")
    for _ in range(50):
        if not _alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(pid)
    # the whole group died, including the backgrounded grandchild
    for _ in range(50):
        if not group_alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not group_alive(pid)


async def test_sessions_isolated_same_process_id(server, new_client) -> None:
    a: Client = new_client()
    b: Client = new_client()
    await a.handshake()
    await b.handshake()
    await a.result("process/start", start_params("same", ["/bin/echo", "a"]))
    await b.result("process/start", start_params("same", ["/bin/echo", "b"]))
    await a.wait_closed("same")
    await b.wait_closed("same")
    assert a.output("same") == b"a\n" and b.output("same") == b"b\n"


async def test_aclose_kills_everything(server, new_client) -> None:
    a: Client = new_client()
    await a.handshake()
    await a.result("process/start", start_params("x", ["/bin/sleep", "100"]))
    pid = next(iter(server.sessions.values())).processes["x"].pid
    await server.aclose()
    for _ in range(50):
        if not _alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(pid)
    assert a.closed_by_server
