"""Issue 13, items 2 and 3: a relay stream's slow or stuck harness holds back only its own
producers, and requests queued behind a long-poll are capped per stream (no socket, no
registry: the executor's endpoint on a fake link that never acks)."""
from __future__ import annotations

import asyncio
import os
import sys

import orjson
import pytest

from execrelay import wire
from execrelay.bench.loopback import serve_loopback
from execrelay.executor.connection import OVERLOADED, QUEUE_PAUSE
from execrelay.stream.errors import STREAM_HIGH_WATER
from execrelay.transport.endpoint import RelayEndpoint

from _remote_fake_link import executor_endpoint

pytestmark = pytest.mark.timeout(30)


class Harness:
    """Writes requests on one stream (legacy: seq 0, reliable: seq 1, 2, ...; acks never sent)."""

    def __init__(self, endpoint: RelayEndpoint, sid: str, reliable: bool) -> None:
        self.endpoint, self.sid, self.reliable = endpoint, sid, reliable
        self.seq = 0
        self.rid = 0

    def send(self, message: dict) -> None:
        if self.reliable:
            self.seq += 1
        self.endpoint.on_message(wire.encode_data(self.sid, self.seq, 0, 0, orjson.dumps(message)), True)

    def call(self, method: str, params: dict) -> int:
        self.rid += 1
        self.send({"id": self.rid, "method": method, "params": params})
        return self.rid

    def open(self) -> None:
        self.call("initialize", {"clientName": "t", "resumeSessionId": None})
        self.send({"method": "initialized", "params": {}})


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def wait_for(pred, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_stuck_reliable_stream_blocks_its_process_only() -> None:
    """Item 2: 200 MB on stdout to a harness that never acks: the executor queues a bounded
    amount, the child blocks on write, and another stream is still answered at once."""
    _, endpoint, link, server = await executor_endpoint()
    stuck = Harness(endpoint, "stuck", reliable=True)
    stuck.open()
    total = 200 * 1024 * 1024
    code = f"import sys; b = b'x' * 65536\nfor _ in range({total // 65536}): sys.stdout.buffer.write(b)"
    rid = stuck.call("process/start", {"processId": "p", "argv": [sys.executable, "-c", code],
                                       "cwd": "/", "env": {}, "tty": False})
    await wait_for(lambda: rid in link.replies("stuck"))
    before = rss()
    session = endpoint.handler("stuck").session  # type: ignore[union-attr]
    await asyncio.sleep(1.5)                      # plenty for 200 MB without backpressure
    mux = endpoint.mux
    queued = mux.buffered("stuck")
    assert queued <= STREAM_HIGH_WATER + 512 * 1024, queued
    assert rss() - before < 64 * 1024 * 1024
    assert session is not None
    proc = session.processes["p"]
    assert not proc.exited                        # blocked on a full pipe, not finished
    # another stream (legacy, so its answers go out at once) is answered promptly
    other = Harness(endpoint, "other", reliable=False)
    t0 = asyncio.get_running_loop().time()
    oid = other.call("initialize", {"clientName": "t", "resumeSessionId": None})
    await wait_for(lambda: oid in link.replies("other"), 2.0)
    assert asyncio.get_running_loop().time() - t0 < 0.5
    # the harness starts acking what it got: the window opens and the child runs again
    eng = mux.stream("stuck")
    n_before = proc.next_seq
    loop = asyncio.get_running_loop()
    end = loop.time() + 10.0
    while proc.next_seq <= n_before + 4:
        assert loop.time() < end, "output did not resume"
        endpoint.on_message(wire.encode_control(wire.ACK, "stuck", ack=eng._sw.next_seq - 1), True)
        await asyncio.sleep(0.01)
    endpoint.close()
    await server.aclose()


async def test_requests_queued_behind_a_long_poll_are_capped_per_stream() -> None:
    """Item 3: 3,000 requests behind a long-poll: 128 queue, the rest are refused at once with
    the overload error; another stream is unaffected; the queued ones are answered later."""
    _, endpoint, link, server = await executor_endpoint()
    h = Harness(endpoint, "s", reliable=False)
    h.open()
    h.call("process/start", {"processId": "p", "argv": ["sleep", "30"], "cwd": "/", "env": {},
                             "tty": False})
    await asyncio.sleep(0.05)
    poll = h.call("process/read", {"processId": "p", "afterSeq": 0, "waitMs": 1000})
    await asyncio.sleep(0)
    ids = [h.call("process/write", {"processId": "p", "chunk": "eHh4" * 4096}) for _ in range(3000)]
    await asyncio.sleep(0.05)
    replies = link.replies("s")
    refused = [i for i in ids if i in replies]
    assert refused == ids[QUEUE_PAUSE:]
    for i in refused:
        assert replies[i]["error"]["code"] == OVERLOADED
        assert "128" in replies[i]["error"]["message"]
    assert poll not in replies
    other = Harness(endpoint, "other", reliable=False)
    oid = other.call("initialize", {"clientName": "t", "resumeSessionId": None})
    await asyncio.sleep(0.01)
    assert "result" in link.replies("other")[oid]     # another stream is not held back
    await wait_for(lambda: all(i in link.replies("s") for i in ids[:QUEUE_PAUSE]), 5.0)
    answers = link.replies("s")
    assert all("result" in answers[i] for i in ids[:QUEUE_PAUSE]), answers[ids[0]]
    endpoint.close()
    await server.aclose()


async def test_stuck_reliable_stream_stops_reading_a_streamed_http_body() -> None:
    """Item 2, http: a streamed ``http/request`` body for a harness that never acks is read
    only as fast as the stream drains (the server ends up blocked on its socket)."""
    from aiohttp import web

    total = 200 * 1024 * 1024
    written = [0]

    async def big(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200)
        await resp.prepare(request)
        chunk = b"y" * 65536
        while written[0] < total:
            await resp.write(chunk)
            written[0] += len(chunk)
        return resp

    runner, port = await serve_loopback([web.get("/big", big)])
    _, endpoint, link, server = await executor_endpoint()
    try:
        h = Harness(endpoint, "h", reliable=True)
        h.open()
        h.call("http/request", {"method": "GET", "url": f"http://127.0.0.1:{port}/big",
                                "requestId": "r", "streamResponse": True})
        await asyncio.sleep(1.5)
        assert endpoint.mux.buffered("h") <= STREAM_HIGH_WATER + 512 * 1024
        assert written[0] < total // 4, written[0]
    finally:
        endpoint.close()
        await server.aclose()
        await runner.cleanup()
