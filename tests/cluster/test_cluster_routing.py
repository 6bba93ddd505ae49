"""Design note cases 1 and 9 (docs/rendezvous.md §Several nodes): frames between nodes, and a
Resume for an executor connected nowhere."""
from __future__ import annotations

import asyncio

import pytest

from endpoints import Harness, pair
from nodes import Cluster

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster(shared_cluster: Cluster) -> Cluster:
    """These cases kill nothing: one cluster for the module (distinct executor ids)."""
    return shared_cluster


def _pcts(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (f"p50 {ordered[len(ordered) // 2] * 1e3:.2f} ms, "
            f"p99 {ordered[int(len(ordered) * 0.99)] * 1e3:.2f} ms over {len(ordered)}")


async def test_executor_on_n1_harness_on_n2_1000_round_trips(cluster: Cluster) -> None:
    async with pair(cluster, "exec-1", "n1", "n2") as (ex, h):
        stream = h.open("s-1")
        await stream.round_trips(range(1000))
        stream.check_exact(range(1000))
        assert ex.seen["s-1"] == 1000
        print(f"cross-node round trip: {_pcts(stream.latencies)}")
        n1, n2 = await cluster.node("n1").metrics(), await cluster.node("n2").metrics()
        # the frames crossed NATS (both directions on both nodes), nothing was dropped
        assert n2['cluster_frames_total{direction="out"}'] >= 1000
        assert n1['cluster_frames_total{direction="in"}'] >= 1000
        assert n1['cluster_frames_total{direction="out"}'] >= 1000
        assert n1["cluster_executors_owned"] >= 1
        assert n2["cluster_remote_executors"] >= 1


async def test_same_node_frames_do_not_touch_nats(cluster: Cluster) -> None:
    async with pair(cluster, "exec-local", "n3", "n3") as (_, h):
        before = await cluster.node("n3").metrics()
        stream = h.open("s-local")
        await stream.round_trips(range(200))
        stream.check_exact(range(200))
        print(f"same-node round trip: {_pcts(stream.latencies)}")
        after = await cluster.node("n3").metrics()
        assert after['cluster_frames_total{direction="out"}'] == before['cluster_frames_total{direction="out"}']
        assert after['cluster_frames_total{direction="in"}'] == before['cluster_frames_total{direction="in"}']


async def test_resume_for_absent_executor_no_responders_grace_reset(cluster: Cluster) -> None:
    before = await cluster.node("n2").metrics()
    h = Harness("exec-nowhere", cluster)
    await h.connect(cluster.node("n2"))
    try:
        stream = h.open("s-absent")
        stream.send(0)
        await asyncio.wait_for(stream.closed.wait(), 10)
        assert stream.closed_reason == "executor_unavailable"
        m = await cluster.node("n2").metrics()
        assert m['cluster_ownership_changes_total{reason="lost_no_responders"}'] >= 1
        reset = 'resets_total{reason="executor_unavailable",to="harness"}'
        assert m[reset] == before.get(reset, 0) + 1
    finally:
        h.close()


async def test_executor_blip_leave_then_return_loses_nothing(cluster: Cluster) -> None:
    """The executor drops its socket cleanly and comes back to the same node: the owner deletes
    its claim and announces ``leave`` (the harness's node holds the stream in the executor
    grace), then claims anew; the reliable stream carries on exactly once."""
    async with pair(cluster, "exec-b", "n1", "n2") as (ex, h):
        stream = h.open("s-b")
        await stream.round_trips(range(100))
        assert ex.link is not None
        ex.link.close(graceful=True)
        await asyncio.sleep(0.5)
        waiting = stream.send(100)  # held by n2 while the executor is away
        await ex.connect(cluster.node("n1"))
        await asyncio.wait_for(waiting, 15)
        await stream.round_trips(range(101, 200))
        stream.check_exact(range(200))
        m2 = await cluster.node("n2").metrics()
        assert m2['cluster_ownership_changes_total{reason="lost_left"}'] >= 1
        m1 = await cluster.node("n1").metrics()
        assert m1['cluster_ownership_changes_total{reason="released"}'] >= 1
        assert m1['cluster_ownership_changes_total{reason="claimed"}'] >= 2


async def test_another_token_cannot_take_a_stream_through_another_node(cluster: Cluster) -> None:
    """A harness of the same executor with ANOTHER token, on a third node, resuming a live
    stream's id: refused (stream_in_use) by the owner, sees none of the stream's frames; the
    stream's own harness is not disturbed (docs/rendezvous.md §Security model)."""
    async with pair(cluster, "exec-x", "n1", "n2") as (_, h):
        stream = h.open("s-x")
        await stream.round_trips(range(20))
        intruder = Harness("exec-x", cluster, token=cluster.harness_token("exec-x", ttl=1800.0))
        assert intruder.token != h.token
        await intruder.connect(cluster.node("n3"))
        try:
            stolen = intruder.open("s-x")
            await asyncio.wait_for(stolen.closed.wait(), 10)
            assert stolen.closed_reason == "stream_in_use"
            await stream.round_trips(range(20, 60))
            stream.check_exact(range(60))
            assert stolen.received == []
        finally:
            intruder.close()
