"""Design note cases 1 and 9 (docs/rendezvous.md §Several nodes): frames between nodes, and a
Resume for an executor connected nowhere."""
from __future__ import annotations

import asyncio

import pytest

from endpoints import EchoExecutor, Harness
from nodes import Cluster

pytestmark = pytest.mark.timeout(60)


async def test_executor_on_n1_harness_on_n2_1000_round_trips(cluster: Cluster) -> None:
    ex = EchoExecutor("exec-1", cluster)
    await ex.connect(cluster.node("n1"))
    h = Harness("exec-1", cluster)
    await h.connect(cluster.node("n2"))
    try:
        stream = h.open("s-1")
        await stream.round_trips(range(1000))
        stream.check_exact(range(1000))
        assert ex.seen["s-1"] == 1000
        n1, n2 = await cluster.node("n1").metrics(), await cluster.node("n2").metrics()
        # the frames crossed NATS (both directions on both nodes), nothing was dropped
        assert n2['cluster_frames_total{direction="out"}'] >= 1000
        assert n1['cluster_frames_total{direction="in"}'] >= 1000
        assert n1['cluster_frames_total{direction="out"}'] >= 1000
        assert n1["cluster_executors_owned"] == 1
        assert n2["cluster_remote_executors"] == 1
    finally:
        h.close()
        ex.close()


async def test_same_node_frames_do_not_touch_nats(cluster: Cluster) -> None:
    ex = EchoExecutor("exec-local", cluster)
    await ex.connect(cluster.node("n3"))
    h = Harness("exec-local", cluster)
    await h.connect(cluster.node("n3"))
    try:
        before = await cluster.node("n3").metrics()
        stream = h.open("s-local")
        await stream.round_trips(range(200))
        stream.check_exact(range(200))
        after = await cluster.node("n3").metrics()
        assert after['cluster_frames_total{direction="out"}'] == before['cluster_frames_total{direction="out"}']
        assert after['cluster_frames_total{direction="in"}'] == before['cluster_frames_total{direction="in"}']
    finally:
        h.close()
        ex.close()


async def test_resume_for_absent_executor_no_responders_grace_reset(make_cluster) -> None:
    cluster = await make_cluster(2, executor_grace=1.0)
    h = Harness("exec-nowhere", cluster)
    await h.connect(cluster.node("n2"))
    try:
        stream = h.open("s-absent")
        stream.send(0)
        await asyncio.wait_for(stream.closed.wait(), 10)
        assert stream.closed_reason == "executor_unavailable"
        m = await cluster.node("n2").metrics()
        assert m['cluster_ownership_changes_total{reason="lost_no_responders"}'] >= 1
        assert m['resets_total{reason="executor_unavailable",to="harness"}'] == 1
    finally:
        h.close()
