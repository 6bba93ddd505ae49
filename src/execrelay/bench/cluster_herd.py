"""A reconnect herd: N executors on one rendezvous node, the node is SIGKILLed, every executor
reconnects (after a random 0.2-2 s, as a real executor backs off with jitter) to one of the
surviving nodes, and the time until each is RE-OWNED is read from the cluster's ownership
bucket (JetStream KV ``rdv_owner``, key ``own.<executor id>``, value ``{"node": ...}``;
docs/rendezvous.md §Several nodes).

Used by the ``cluster`` benchmark (re-homing time for 500 executors, docs/benchmarks.md
§Cluster) and by the case-7 test (tests/cluster/test_cluster_herd.py), which checks that all are
re-owned within a generous bound.

The executors are bare websockets (no streams): re-homing is about the registration, the
websocket and the KV claim, not about frames.  The target of each executor is what a
consistent-hash load balancer would pick among the survivors (a stable hash of the id).
"""
from __future__ import annotations

import asyncio
import random
import statistics
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

import aiohttp
import nats
import orjson

from .cluster_peers import Peer, connect, register_executor

BUCKET = "rdv_owner"


@dataclass
class HerdNode:
    """What the herd needs to know about a node: its name and registry base URL."""

    name: str
    url: str


@dataclass
class HerdResult:
    executors: int
    #: seconds from the kill to each executor's new KV entry (re-owned), sorted
    reowned_s: list[float] = field(default_factory=list)
    #: seconds from the kill to each executor's new websocket being open, sorted
    reconnected_s: list[float] = field(default_factory=list)
    #: KV puts seen per second while the herd re-homed
    kv_puts_per_s: float = 0.0
    reconnect_failures: int = 0
    timed_out: bool = False
    #: node -> executors it owns at the end (from the bucket)
    by_node: dict[str, int] = field(default_factory=dict)

    @property
    def all_reowned(self) -> bool:
        return len(self.reowned_s) == self.executors

    def summary(self) -> dict[str, Any]:
        def pct(xs: list[float], q: float) -> float | None:
            return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None
        return {"executors": self.executors, "reowned": len(self.reowned_s),
                "reowned_p50_s": pct(self.reowned_s, 0.50), "reowned_p95_s": pct(self.reowned_s, 0.95),
                "reowned_max_s": self.reowned_s[-1] if self.reowned_s else None,
                "reconnected_p95_s": pct(self.reconnected_s, 0.95),
                "reconnected_max_s": self.reconnected_s[-1] if self.reconnected_s else None,
                "overhead_p50_s": (statistics.median(self.reowned_s) - statistics.median(self.reconnected_s)
                                   if self.reowned_s and self.reconnected_s else None),
                "kv_puts_per_s": self.kv_puts_per_s, "reconnect_failures": self.reconnect_failures,
                "by_node": self.by_node, "timed_out": self.timed_out}


def target_of(executor_id: str, nodes: Sequence[HerdNode]) -> HerdNode:
    """The survivor a consistent-hash balancer would send ``executor_id`` to (stable)."""
    return nodes[zlib.crc32(executor_id.encode()) % len(nodes)]


class _Owners:
    """Watches ``own.>`` in the bucket: the node and time of the latest put per executor."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[str, float]] = {}
        self.changed = asyncio.Event()
        self.puts = 0
        self._nc: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, nats_url: str) -> None:
        self._nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3)
        js = self._nc.jetstream()
        kv = await js.key_value(BUCKET)
        watcher = await kv.watch("own.>")
        self._task = asyncio.ensure_future(self._run(watcher))

    async def _run(self, watcher: Any) -> None:
        async for entry in watcher:
            if entry is None or entry.operation is not None or not entry.value:
                continue
            try:
                node = orjson.loads(entry.value).get("node", "")
            except orjson.JSONDecodeError:
                continue
            self.latest[entry.key[len("own."):]] = (str(node), time.monotonic())
            self.puts += 1
            self.changed.set()

    async def wait(self, done: Callable[[], bool], deadline: float) -> bool:
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._nc is not None:
            await self._nc.close()


async def run_herd(nats_url: str, victim: HerdNode, survivors: Sequence[HerdNode],
                   kill: Callable[[], float], token_of: Callable[[str], str], n: int = 500,
                   jitter: tuple[float, float] = (0.2, 2.0), timeout: float = 30.0,
                   prefix: str = "herd", before_kill: Callable[[], Awaitable[None]] | None = None
                   ) -> HerdResult:
    """Connect ``n`` executors to ``victim``, ``kill()`` it (returns the monotonic kill time),
    re-home them onto ``survivors``; at most ``timeout`` s for the connect phase and again for
    the re-homing.  ``token_of(eid)`` is an executor bearer token."""
    ids = [f"{prefix}-{k:04d}" for k in range(n)]
    owners = _Owners()
    peers: dict[str, Peer] = {}
    result = HerdResult(n)
    reconnected: dict[str, float] = {}
    killed_at = 0.0
    gate = asyncio.Semaphore(64)   # connects in flight: a burst, not 500 handshakes at once
    tasks: list[asyncio.Task[None]] = []
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        await owners.start(nats_url)

        # one bearer token per executor for its whole life, as a real executor holds: a
        # re-homing is the same registration (docs/rendezvous.md §Several nodes, Registrations)
        bearer = {eid: token_of(eid) for eid in ids}

        async def attach(eid: str, node: HerdNode) -> Peer:
            async with gate:
                url = await register_executor(http, node.url, eid, bearer[eid])
                return await connect(url, lambda frame: None)

        for chunk in range(0, n, 64):
            got = await asyncio.gather(*(attach(eid, victim) for eid in ids[chunk:chunk + 64]))
            peers.update(zip(ids[chunk:chunk + 64], got))
        if not await owners.wait(lambda: all(owners.latest.get(e, ("",))[0] == victim.name for e in ids),
                                 time.monotonic() + timeout):
            result.timed_out = True
            return result
        if before_kill is not None:
            await before_kill()

        async def rehome(eid: str) -> None:
            await peers[eid].closed.wait()
            await asyncio.sleep(random.uniform(*jitter))
            backoff = 0.2
            while time.monotonic() - killed_at < timeout:
                try:
                    peers[eid] = await attach(eid, target_of(eid, survivors))
                    reconnected[eid] = time.monotonic()
                    return
                except (OSError, RuntimeError, asyncio.TimeoutError, aiohttp.ClientError):
                    result.reconnect_failures += 1
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                    backoff = min(backoff * 2, 2.0)

        tasks = [asyncio.ensure_future(rehome(eid)) for eid in ids]
        puts_before = owners.puts
        killed_at = kill()

        def moved() -> bool:
            return all(owners.latest.get(e, ("", 0.0))[1] > killed_at
                       and owners.latest[e][0] != victim.name for e in ids)
        result.timed_out = not await owners.wait(moved, killed_at + timeout)
        spent = max(1e-9, time.monotonic() - killed_at)
        result.kv_puts_per_s = (owners.puts - puts_before) / spent
        result.reowned_s = sorted(t - killed_at for e in ids
                                  for node, t in [owners.latest.get(e, ("", 0.0))]
                                  if t > killed_at and node != victim.name)
        result.reconnected_s = sorted(t - killed_at for t in reconnected.values())
        for eid in ids:
            node = owners.latest.get(eid, ("",))[0]
            result.by_node[node] = result.by_node.get(node, 0) + 1
        return result
    finally:
        for task in tasks:
            task.cancel()
        for peer in peers.values():
            peer.close()
        await owners.close()
        await http.close()
