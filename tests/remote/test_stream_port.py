"""The remote executor's per-stream port on a RelayEndpoint with a fake link: who closes what,
and in which order (no socket, no registry)."""
from __future__ import annotations

import asyncio

import orjson
import pytest

from execrelay import wire
from execrelay.executor.remote import RelayRpcConnection
from _remote_fake_link import executor_endpoint

pytestmark = pytest.mark.timeout(10)


def request(seq: int, message: dict) -> bytes:
    return wire.encode_data("s", seq, 0, 0, orjson.dumps(message))


async def test_session_ending_itself_resets_its_stream_once() -> None:
    executor, endpoint, link, server = await executor_endpoint()
    # `initialized` before `initialize`: the connection closes itself (0.131.0 behaviour)
    endpoint.on_message(request(0, {"method": "initialized", "params": {}}), True)
    await asyncio.sleep(0)
    resets = [f for f in link.frames if f.kind == wire.RESET]
    assert [(f.stream_id, f.reason) for f in resets] == [("s", "session closed")]
    assert executor.conns == {} and len(server.connections) == 0
    await server.aclose()


async def test_peer_reset_closes_the_connection_without_a_reset_back() -> None:
    executor, endpoint, link, server = await executor_endpoint()
    endpoint.on_message(request(0, {"id": 1, "method": "initialize",
                                    "params": {"clientName": "t", "resumeSessionId": None}}), True)
    conn = executor.conns["s"]
    await asyncio.sleep(0)  # the answer goes out
    endpoint.on_message(wire.encode_control(wire.RESET, "s", reason="bye"), True)
    await asyncio.sleep(0)
    assert conn.closed and executor.conns == {}
    assert [f.kind for f in link.frames] == [wire.DATA]  # the initialize answer, no Reset
    await server.aclose()


async def test_oversized_notification_costs_the_stream_and_closes_the_connection() -> None:
    executor, endpoint, link, server = await executor_endpoint()
    endpoint.on_message(request(0, {"id": 1, "method": "initialize",
                                    "params": {"clientName": "t", "resumeSessionId": None}}), True)
    conn: RelayRpcConnection = executor.conns["s"]
    conn.send_bytes(b'{"method":"x","params":"' + b"a" * wire.LEGACY_MAX_FRAME_BYTES + b'"}')
    await asyncio.sleep(0)
    assert conn.closed and executor.conns == {}
    resets = [(f.stream_id, f.reason) for f in link.frames if f.kind == wire.RESET]
    assert resets == [("s", "message_too_large")]
    await server.aclose()


async def test_shutdown_closes_every_connection() -> None:
    executor, endpoint, link, server = await executor_endpoint()
    for sid in ("a", "b"):
        endpoint.on_message(wire.encode_data(sid, 0, 0, 0, orjson.dumps(
            {"id": 1, "method": "initialize", "params": {"clientName": sid, "resumeSessionId": None}})), True)
    conns = executor.conns
    assert set(conns) == {"a", "b"}
    endpoint.close("executor shutting down")
    assert all(c.closed for c in conns.values()) and executor.conns == {}
    await server.aclose()
