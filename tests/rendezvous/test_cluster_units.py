"""Unit tests of the cluster's pure pieces (docs/rendezvous.md §Several nodes): names, options,
heartbeat bookkeeping, the bounded per-socket queues, the publish driver.  No NATS server:
the process-level cases are in tests/cluster."""
from __future__ import annotations

import asyncio
import re
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from execrelay.rendezvous.cluster import ClusterConfig, ClusterError, parse_servers
from execrelay.rendezvous.cluster.bus import _drive
from execrelay.rendezvous.cluster.inbox import Inboxes
from execrelay.rendezvous.cluster.liveness import Liveness
from execrelay.rendezvous.cluster.subjects import loads, owner_key, stream_subject, token
from execrelay.rendezvous.metrics import Metrics

SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_=-]+")


def test_token_keeps_plain_ids_and_encodes_the_rest_one_to_one() -> None:
    assert token("exec-1_A") == "exec-1_A"
    odd = ["a.b", "a b", "*", ">", "é", "=x", "", "a" * 300]
    tokens = [token(x) for x in odd]
    assert len(set(tokens)) == len(odd)
    for t in tokens:
        assert t.startswith("=") and SUBJECT_TOKEN.fullmatch(t), t
    assert stream_subject("s.1") == "rdv.s." + token("s.1")
    assert owner_key("exec-1") == "own.exec-1"


def test_control_messages_that_are_not_objects_read_as_empty() -> None:
    assert loads(b'{"op":"own","node":"n1","r":3}') == {"op": "own", "node": "n1", "r": 3}
    assert loads(b"[1]") == {} and loads(b"\xff") == {} and loads(b"") == {}


def test_parse_servers() -> None:
    assert parse_servers("nats://127.0.0.1:4222, nats://10.0.0.2:4223") == [
        "nats://127.0.0.1:4222", "nats://10.0.0.2:4223"]
    for bad in ("", ",", "127.0.0.1:4222", "http://h:1", "nats://h", "nats://h:notaport"):
        with pytest.raises(ClusterError):
            parse_servers(bad)


def test_node_id_is_one_subject_token() -> None:
    ClusterConfig(["nats://h:1"], "node_1-a")
    for bad in ("", "a.b", "a b", "*", "x" * 65):
        with pytest.raises(ClusterError):
            ClusterConfig(["nats://h:1"], bad)


def test_liveness_dead_after_misses_back_on_heartbeat() -> None:
    live = Liveness("n1", interval=1.0, misses=3)
    live.tick(0.0)
    assert not live.seen("n1", 0.0)  # own heartbeats are ignored
    live.seen("n2", 0.0)
    live.seen("n3", 0.0)
    assert live.alive() == 3
    assert live.tick(1.0) == ([], False)
    live.seen("n3", 2.0)
    live.tick(2.0)
    live.tick(3.0)
    assert live.tick(3.5) == (["n2"], False)
    assert live.tick(4.0) == ([], False)  # reported once
    assert live.alive() == 2
    assert live.seen("n2", 4.2) is True   # back
    assert live.alive() == 3


def test_liveness_stall_proves_nothing_about_peers() -> None:
    live = Liveness("n1", interval=1.0, misses=3)
    live.tick(0.0)
    live.seen("n2", 0.0)
    assert not live.stalled(2.0)
    assert live.stalled(10.0)
    assert live.tick(10.0) == ([], True)  # n2's silence was ours
    assert live.tick(11.0) == ([], False)
    assert live.tick(13.5) == (["n2"], False)


class _Target:
    """A local socket as the inbox sees it: a backlog and a closed flag."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.backlog = 0
        self.closed = False
        self.got: list[bytes] = []

    def queued_bytes(self) -> int:
        return self.backlog

    def route(self, source: Any, frame: bytes) -> None:
        self.got.append(frame)


async def test_inbox_routes_at_once_queues_when_backed_up_and_drains() -> None:
    metrics = Metrics()
    killed: list[Any] = []
    inbox = Inboxes(metrics, limit=4, kill_legacy=lambda t, r: killed.append(r))
    target = _Target(limit=100)
    reliable = SimpleNamespace(reliable=True, sid="r")
    inbox.deliver(target, reliable, target.route, None, b"a")  # type: ignore[arg-type]
    assert target.got == [b"a"] and inbox.pending() == 0
    target.backlog = 101
    for i in range(6):
        inbox.deliver(target, reliable, target.route, None, b"%d" % i)  # type: ignore[arg-type]
    assert inbox.pending() == 4
    assert metrics.queue_drops["cross_node_reliable"] == 2  # the two oldest went
    target.backlog = 0
    await asyncio.sleep(0.05)
    assert target.got == [b"a", b"2", b"3", b"4", b"5"] and inbox.pending() == 0
    assert killed == []


async def test_inbox_resets_a_legacy_stream_instead_of_losing_its_frame() -> None:
    metrics = Metrics()
    killed: list[Any] = []
    inbox = Inboxes(metrics, limit=2, kill_legacy=lambda t, r: killed.append(r))
    target = _Target(limit=0)
    target.backlog = 1
    legacy = SimpleNamespace(reliable=False, sid="l")
    for i in range(3):
        inbox.deliver(target, legacy, target.route, None, b"%d" % i)  # type: ignore[arg-type]
    assert killed == [legacy]
    assert metrics.queue_drops["cross_node_legacy"] == 1
    target.closed = True
    await asyncio.sleep(0.05)
    assert inbox.pending() == 0 and target.got == []  # a closed socket's queue is dropped


async def test_drive_runs_a_publish_without_a_task() -> None:
    events: Counter[str] = Counter()
    done: list[str] = []

    async def quick() -> None:
        done.append("quick")

    _drive(quick(), events)
    assert done == ["quick"]

    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def waits() -> None:
        await fut
        done.append("after")

    _drive(waits(), events)
    assert done == ["quick"]
    fut.set_result(None)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert done == ["quick", "after"]

    async def refused() -> None:
        raise RuntimeError("outbound buffer full")

    _drive(refused(), events)
    assert events["publish_errors"] == 1


class _Sock:
    """An executor socket as the node's fence sees it."""

    def __init__(self, executor_id: str) -> None:
        self.executor_id = executor_id
        self.closed_with: list[str] = []

    async def close(self, reason: str) -> None:
        self.closed_with.append(reason)


async def test_node_cut_off_from_nats_fences_its_executors() -> None:
    """docs/rendezvous.md §Several nodes: no NATS for ``fence_after`` seconds -> the node's
    executor sockets are closed so they re-home (once per outage)."""
    import time

    from execrelay.rendezvous import RendezvousServer
    from execrelay.rendezvous.cluster import ClusterNode
    from execrelay.rendezvous.cluster.node import Claim

    server = RendezvousServer(b"x" * 32)
    node = ClusterNode(server, ["nats://127.0.0.1:1"], "n1",
                       ClusterConfig(["nats://127.0.0.1:1"], "n1", fence_after=10.0))
    sock = _Sock("e1")
    node.claims["e1"] = Claim(sock)
    node.bus.disconnected_since = time.monotonic() - 5.0
    node._check_fence()
    await asyncio.sleep(0)
    assert sock.closed_with == []  # 5 s: not yet
    node.bus.disconnected_since = time.monotonic() - 10.5
    node._check_fence()
    node._check_fence()
    await asyncio.sleep(0.01)
    assert sock.closed_with == ["fenced"]
    assert node.metrics.ownership["fenced"] == 1
    assert "execrelay_rendezvous_cluster_ownership_changes_total{reason=\"fenced\"} 1" in server.metrics.render()
    node.bus.disconnected_since = 0.0  # back: the next outage fences again
    node._check_fence()
    assert not node._fenced
