"""Design note case 6 (docs/rendezvous.md §Several nodes, "Bounded queues"): one harness
stops reading while its executor, on another node, keeps sending.

The harness's node must not stall its NATS connection on that socket: once the socket holds
its own limit (the harness queue limit, 24 MiB) frames for it wait in a bounded per-socket
queue, and when that queue is full a LEGACY stream is Reset (``queue_full``: it lost a frame,
and says so) while a RELIABLE stream loses the oldest frames and recovers by resending.  The
reliable case here stalls 8 streams (their send windows put 16 MiB in flight, which the socket
buffers and its queue usually absorb) and checks that every message arrives exactly once, in
order, once the harness reads again; a stall long enough to overflow would also trip the
slow-harness cut-off (docs/rendezvous.md §Routing), which is single-node behaviour.
Meanwhile another stream through the same two nodes keeps its round trips going (its latencies are printed; the p99 comparison is a benchmark
figure, docs/benchmarks.md §Cluster, and only a liveness bound is asserted here).
"""
from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import aiohttp
import orjson
import pytest

from endpoints import EchoExecutor, Harness, Stream
from execrelay.bench.cluster_peers import LegacyStream, Peer, codec, connect, is_data, register_executor
from nodes import Cluster

pytestmark = pytest.mark.timeout(90)

#: a stream that is stuck, not slow, fails its round trips after this (endpoints' default is 10 s)
LIVENESS_S = 5.0


def _p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.99 * len(xs)))]


class _Bystander:
    """An echo executor on n1 and a harness on n2 with one reliable stream: round trips
    through the same two nodes as the stalled stream."""

    def __init__(self, cluster: Cluster, tag: str) -> None:
        self.ex = EchoExecutor(f"exec-bystander-{tag}", cluster)
        self.h = Harness(f"exec-bystander-{tag}", cluster)
        self.cluster = cluster
        self.stream: Stream | None = None
        self.next = 0

    async def start(self) -> None:
        await self.ex.connect(self.cluster.node("n1"))
        await self.h.connect(self.cluster.node("n2"))
        self.stream = self.h.open("s-bystander")

    async def round_trips(self, n: int) -> list[float]:
        assert self.stream is not None
        first = len(self.stream.latencies)
        await self.stream.round_trips(range(self.next, self.next + n), timeout=LIVENESS_S)
        self.next += n
        return self.stream.latencies[first:]

    def close(self) -> None:
        self.h.close()
        self.ex.close()


def _report(label: str, before: list[float], during: list[float]) -> None:
    print(f"\n{label}: bystander p50/p99 before {statistics.median(before) * 1e3:.2f}/{_p99(before) * 1e3:.2f} ms, "
          f"while stalled {statistics.median(during) * 1e3:.2f}/{_p99(during) * 1e3:.2f} ms")


async def test_legacy_stream_to_a_harness_that_stopped_reading_is_reset(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    by = _Bystander(cluster, "legacy")
    await by.start()
    eid, sid = "exec-flood", "s-stalled"
    executor_resets: list[Any] = []
    harness_seen: list[Any] = []
    bound = asyncio.Event()

    def at_executor(frame: bytes) -> None:
        if is_data(frame):
            bound.set()
        else:
            f = codec.decode(frame)
            if f.kind == codec.RESET:
                executor_resets.append(f)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        url = await register_executor(http, cluster.node("n1").url, eid, cluster.executor_token(eid))
    executor: Peer = await connect(url, at_executor)
    harness: Peer = await connect(cluster.harness_url(eid, cluster.node("n2")),
                                  lambda frame: harness_seen.append(codec.decode(frame)))
    try:
        before = await by.round_trips(100)
        LegacyStream(harness, sid).send(b"open")
        await asyncio.wait_for(bound.wait(), 10)
        assert harness.transport is not None
        harness.transport.underlying_transport.pause_reading()

        async def flood() -> int:
            payload = bytes(64 * 1024)
            seq = 0
            while not executor_resets and seq < 2000:   # at most 125 MiB; the Reset comes long before
                executor.send(codec.encode_data(sid, seq, 0, 0, payload))
                seq += 1
                if seq % 4 == 0:
                    await asyncio.sleep(0.002)
            return seq

        flooding = asyncio.ensure_future(flood())
        during = await by.round_trips(200)
        sent = await asyncio.wait_for(flooding, 60)
        assert [f.reason for f in executor_resets] == ["queue_full"], (sent, executor_resets)
        m2 = await cluster.node("n2").metrics()
        assert m2['queue_drops_total{queue="cross_node_legacy"}'] >= 1
        _report(f"legacy ({sent} frames of 64 KiB before the Reset)", before, during)
        assert _p99(during) < LIVENESS_S

        # The harness reads again: what it got is an unbroken prefix, then the Reset, so the
        # frame that was lost is not lost silently.
        harness.transport.underlying_transport.resume_reading()
        deadline = time.monotonic() + 20
        while not any(f.kind == codec.RESET for f in harness_seen) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        data = [f.seq for f in harness_seen if f.kind == codec.DATA]
        resets = [f for f in harness_seen if f.kind == codec.RESET]
        assert [f.reason for f in resets] == ["queue_full"] and resets[0] is harness_seen[-1], harness_seen[-3:]
        assert data == list(range(len(data))) and len(data) < sent, (len(data), sent)
        by.stream.check_exact(range(by.next))  # type: ignore[union-attr]
    finally:
        harness.close()
        executor.close()
        by.close()


async def test_reliable_streams_to_a_harness_that_stopped_reading_recover(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    by = _Bystander(cluster, "reliable")
    await by.start()
    ex = EchoExecutor("exec-big", cluster)
    h = Harness("exec-big", cluster)
    await ex.connect(cluster.node("n1"))
    await h.connect(cluster.node("n2"))
    streams = [h.open(f"s-big-{k}") for k in range(8)]
    messages = 16
    pad = "x" * (256 * 1024)
    try:
        before = await by.round_trips(100)
        for st in streams:   # one round trip each: bound end to end before the stall
            await st.round_trip(-1)
        assert h.link is not None and h.endpoint is not None
        h.link.pause_reading(True)
        for i in range(messages):   # 8 streams x 16 x 256 KiB echoed toward a socket nobody reads
            for st in streams:
                h.endpoint.send(st.sid, orjson.dumps({"i": i, "t": time.monotonic(), "pad": pad}))
        during = await by.round_trips(200)
        await asyncio.sleep(1.0)
        drops = (await cluster.node("n2").metrics()).get('queue_drops_total{queue="cross_node_reliable"}', 0)
        h.link.pause_reading(False)
        deadline = time.monotonic() + 40
        while any(len(st.received) < messages + 1 for st in streams) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for st in streams:
            assert st.closed_reason is None, st.closed_reason
            st.check_exact([-1, *range(messages)])
        _report(f"reliable (8 streams, {drops:.0f} frames dropped by n2's queue)", before, during)
        assert _p99(during) < LIVENESS_S
        by.stream.check_exact(range(by.next))  # type: ignore[union-attr]
    finally:
        h.close()
        ex.close()
        by.close()
