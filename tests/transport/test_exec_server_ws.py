"""The exec-server over real loopback websockets, on both implementations."""
from __future__ import annotations

import asyncio
import json
import os

import pytest
import websockets

from execrelay.bench.procfs import rss_kib
from execrelay.executor import ExecServer, ExecServerConfig
from execrelay.executor.serve import serve_ws

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def ws_server(impl: str):
    server = ExecServer(ExecServerConfig(detached_session_ttl=1.0))
    srv = await serve_ws(server, "127.0.0.1", 0, impl=impl)
    yield srv, server
    srv.close()
    await server.aclose()


async def _call(ws, msg: dict | str | bytes) -> dict:
    await ws.send(msg if isinstance(msg, (str, bytes)) else json.dumps(msg))
    while True:
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "method" not in reply:
            return reply


async def test_handshake_binary_in_text_out_and_parse_error_peer(ws_server) -> None:
    srv, _ = ws_server
    async with websockets.connect(srv.url) as ws:
        r = await _call(ws, {"id": 1, "method": "initialize", "params": {"clientName": "t"}})
        assert "sessionId" in r["result"]
        await ws.send('{"method":"initialized","params":{}}')
        await ws.send(b'{"id":2,"method":"fs/getMetadata","params":{"path":"/tmp"}}')
        raw = await asyncio.wait_for(ws.recv(), 5)
        assert isinstance(raw, str) and json.loads(raw)["result"]["isDirectory"] is True
        r = await _call(ws, "hello")
        port = ws.local_address[1]
        assert r == {"error": {"code": -32600, "message": "failed to parse websocket JSON-RPC message from exec-server "
                                                          f"websocket 127.0.0.1:{port}: expected value at line 1 column 1"},
                     "id": -1}


async def test_unknown_notification_drops_connection_and_detaches(ws_server) -> None:
    srv, server = ws_server
    async with websockets.connect(srv.url) as ws:
        r = await _call(ws, {"id": 1, "method": "initialize", "params": {"clientName": "t"}})
        sid = r["result"]["sessionId"]
        await ws.send('{"method":"foo","params":{}}')
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is None
    assert server.sessions[sid].conn is None
    async with websockets.connect(srv.url) as ws:  # resume from another connection
        r = await _call(ws, {"id": 1, "method": "initialize", "params": {"clientName": "t", "resumeSessionId": sid}})
        assert r["result"]["sessionId"] == sid


async def test_process_notifications_over_ws(ws_server) -> None:
    srv, _ = ws_server
    async with websockets.connect(srv.url) as ws:
        await _call(ws, {"id": 1, "method": "initialize", "params": {"clientName": "t"}})
        await ws.send('{"method":"initialized"}')
        await ws.send(json.dumps({"id": 2, "method": "process/start", "params": {
            "processId": "p", "argv": ["/bin/sh", "-c", "head -c 100000 /dev/zero"], "cwd": "/", "env": {},
            "tty": False}}))
        seqs = []
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if m.get("method", "").startswith("process/"):
                seqs.append(m["params"]["seq"])
                if m["method"] == "process/closed":
                    break
        assert sorted(seqs) == list(range(1, len(seqs) + 1))


async def test_many_concurrent_connections(ws_server) -> None:
    srv, server = ws_server

    async def one(i: int) -> None:
        async with websockets.connect(srv.url, open_timeout=20) as ws:
            r = await _call(ws, {"id": i, "method": "initialize", "params": {"clientName": "t"}})
            assert "result" in r
            r = await _call(ws, {"id": -i, "method": "x/y"})
            assert r["error"]["code"] == -32601

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1, 201))), 40)
    await asyncio.sleep(0.1)
    assert all(s.conn is None for s in server.sessions.values())


async def test_thousand_concurrent_connections_no_fd_leak(ws_server, impl) -> None:
    """1,000 connections open at once (fast client), each initialized and answered; no fd leak."""
    import os

    from execrelay.transport import connect_websocket

    srv, server = ws_server
    fds0 = len(os.listdir("/proc/self/fd"))
    done = 0
    all_done = asyncio.get_running_loop().create_future()
    links = []

    class H:
        def __init__(self, link) -> None:
            self.link = link

        def on_message(self, data, binary) -> None:
            nonlocal done
            msg = json.loads(data)
            if msg.get("id") == 1:
                self.link.send(b'{"id":2,"method":"fs/getMetadata","params":{"path":"/"}}')
            elif msg.get("id") == 2:
                assert msg["result"]["isDirectory"] is True
                done += 1
                if done == 1000 and not all_done.done():
                    all_done.set_result(None)

        def on_close(self) -> None:
            pass

        def on_write_paused(self, paused) -> None:
            pass

    async def one() -> None:
        link = await connect_websocket(srv.url, H, impl="picows", timeout=30)
        links.append(link)
        link.send(b'{"id":1,"method":"initialize","params":{"clientName":"t"}}')
        link.send(b'{"method":"initialized"}')

    for start in range(0, 1000, 100):  # bounded connect bursts (listen backlog)
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(100))), 30)
    await asyncio.wait_for(all_done, 40)
    assert len(server.sessions) == 1000
    for link in links:
        link.close()
    for _ in range(200):
        await asyncio.sleep(0.05)
        if all(s.conn is None for s in server.sessions.values()) and len(os.listdir("/proc/self/fd")) <= fds0 + 5:
            break
    assert all(s.conn is None for s in server.sessions.values())
    assert len(os.listdir("/proc/self/fd")) <= fds0 + 5


def _rss_kib() -> int:
    return rss_kib(os.getpid())


async def test_flood_to_client_that_stops_reading_is_bounded(ws_server) -> None:
    """A process printing without end while the client reads nothing: server memory stays flat."""
    srv, server = ws_server
    ws = await websockets.connect(srv.url, max_queue=1, max_size=None)
    try:
        await _call(ws, {"id": 1, "method": "initialize", "params": {"clientName": "t"}})
        await ws.send('{"method":"initialized"}')
        await ws.send(json.dumps({"id": 2, "method": "process/start", "params": {
            "processId": "y", "argv": ["/bin/cat", "/dev/zero"], "cwd": "/", "env": {}, "tty": False}}))
        await asyncio.sleep(0.5)
        rss0 = _rss_kib()
        proc = next(iter(server.sessions.values())).processes["y"]
        seq0 = proc.next_seq
        await asyncio.sleep(1.0)
        assert _rss_kib() - rss0 < 48 * 1024
        assert proc.next_seq - seq0 < 2000  # paused: not reading GB/s from the pipe
        assert proc.retained <= 1024 * 1024
    finally:
        ws.transport.abort()


async def test_client_that_stops_reading_responses_is_held_back(ws_server, tmp_path) -> None:
    """Pipelined 64 KiB reads from a client that never reads: the server stops reading too,
    so neither side buffers the ~170 MB of answers."""
    srv, server = ws_server
    f = tmp_path / "f"
    f.write_bytes(b"x" * 65536)
    ws = await websockets.connect(srv.url, max_queue=1, max_size=None, write_limit=65536)
    try:
        await _call(ws, {"id": 1, "method": "initialize", "params": {"clientName": "t"}})
        await ws.send('{"method":"initialized"}')
        req = json.dumps({"id": 2, "method": "fs/readFile", "params": {"path": str(f)}})
        sent = 0

        async def flood() -> None:
            nonlocal sent
            for _ in range(50000):  # ~4 GB of answers if nothing held the client back
                await ws.send(req)
                sent += 1

        rss0 = _rss_kib()
        task = asyncio.ensure_future(flood())
        await asyncio.sleep(1.5)
        assert not task.done() and sent < 50000  # held back by TCP backpressure
        assert _rss_kib() - rss0 < 80 * 1024
        task.cancel()
    finally:
        ws.transport.abort()
