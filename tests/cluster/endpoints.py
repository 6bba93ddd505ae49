"""Fake executor and harness for cluster tests: the project's own
:class:`~execrelay.transport.endpoint.RelayEndpoint` (real frames: Resume, Data, Ack, Reset,
Heartbeat; reliable mode, docs/relay-protocol.md §Reliable mode) over real websockets to any
node, so a test can move either end to another node and the streams Resume.

::

    ex = EchoExecutor("exec-1", cluster)           # answers every message with the same bytes
    await ex.connect(cluster.node("n1"))           # register at n1, websocket to n1
    h = Harness("exec-1", cluster)                 # one harness token, used on every node
    await h.connect(cluster.node("n2"))            # harness websocket to n2
    stream = h.open("s1")                          # a reliable stream (Resume{1} first); LEGACY too
    await stream.round_trip(0)                     # send {"i": 0, "t": now}, wait for the echo
    await stream.round_trips(range(1, 1000))      # sequential round trips
    stream.check_exact(range(1000))                # every echo once, in order
    await ex.connect(cluster.node("n3"))           # re-home (close_old=False: leave it half-open)
    await h.connect(cluster.node("n3"))            # move the harness (its streams Resume)

    async with pair(cluster, "exec-1", "n1", "n2") as (ex, h):   # the same setup, closed at exit
        ...

``Stream.received`` lists the ``i`` of every echo delivered (after the endpoint's dedupe and
reordering: what an application sees); ``Stream.closed_reason`` is set when the stream ends
without the test asking (a Reset from the rendezvous, say).  Every wait is bounded.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import AsyncIterator, Iterable

import orjson

from execrelay.executor.remote import RemoteExecutorConfig, register
from execrelay.rendezvous.server import harness_url
from execrelay.stream import ACCEPTOR, OPENER, RELIABLE
from execrelay.transport import Link, connect_websocket
from execrelay.transport.endpoint import RelayEndpoint

from nodes import Cluster, Node


class _Echo:
    """Executor side of one stream: every message goes back unchanged."""

    def __init__(self, executor: "EchoExecutor", sid: str) -> None:
        self.executor = executor
        self.sid = sid

    def on_message(self, payload: bytes) -> None:
        self.executor.seen[self.sid] = self.executor.seen.get(self.sid, 0) + 1
        assert self.executor.endpoint is not None
        self.executor.endpoint.send(self.sid, payload)

    def on_close(self, reason: str | None, by_peer: bool) -> None:
        self.executor.closed[self.sid] = reason


class EchoExecutor:
    """An executor that echoes; ``connect(node)`` (re)homes it on ``node``."""

    def __init__(self, executor_id: str, cluster: Cluster) -> None:
        self.executor_id = executor_id
        self.cluster = cluster
        self.endpoint: RelayEndpoint | None = None
        self.link: Link | None = None
        self.node: Node | None = None
        #: one bearer token for its whole life, as a real executor holds: every re-homing is
        #: the same registration (docs/rendezvous.md §Several nodes, "Registrations")
        self.token = cluster.executor_token(executor_id)
        #: messages received per stream, and why streams ended
        self.seen: dict[str, int] = {}
        self.closed: dict[str, str | None] = {}

    async def connect(self, node: Node, timeout: float = 10.0, close_old: bool = True) -> None:
        """Register at ``node`` and use a websocket to it from now on.  ``close_old=False``
        leaves the previous socket open (a half-open connection to a hung node)."""
        if self.endpoint is None:
            self.endpoint = RelayEndpoint(ACCEPTOR, on_accept=lambda sid, mode: _Echo(self, sid))
        config = RemoteExecutorConfig.with_bearer_token(node.url, self.executor_id, self.token)
        _, url = await asyncio.wait_for(register(config), timeout)
        old = self.link
        self.link = await connect_websocket(url, self.endpoint.handler_for, timeout=timeout)
        self.node = node
        if old is not None and close_old:
            old.close()

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close("test over")
        if self.link is not None:
            self.link.close()


class Stream:
    """Harness side of one reliable stream: JSON ``{"i": n, "t": send time}`` messages."""

    def __init__(self, harness: "Harness", sid: str) -> None:
        self.harness = harness
        self.sid = sid
        self.received: list[int] = []
        self.latencies: list[float] = []
        self.closed_reason: str | None = None
        self.closed = asyncio.Event()
        self._waiters: dict[int, asyncio.Future[None]] = {}

    # StreamHandler
    def on_message(self, payload: bytes) -> None:
        msg = orjson.loads(payload)
        i = msg["i"]
        self.received.append(i)
        self.latencies.append(time.monotonic() - msg["t"])
        fut = self._waiters.pop(i, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def on_close(self, reason: str | None, by_peer: bool) -> None:
        self.closed_reason = reason or "closed"
        self.closed.set()
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"stream {self.sid} ended: {reason}"))
        self._waiters.clear()

    def send(self, i: int) -> asyncio.Future[None]:
        """Send message ``i``; the future completes when its echo is delivered."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[i] = fut
        assert self.harness.endpoint is not None
        self.harness.endpoint.send(self.sid, orjson.dumps({"i": i, "t": time.monotonic()}))
        return fut

    async def round_trip(self, i: int, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.send(i), timeout)

    async def round_trips(self, items: Iterable[int], timeout: float = 10.0) -> None:
        for i in items:
            await self.round_trip(i, timeout)

    def check_exact(self, expected: Iterable[int]) -> None:
        """Every echo exactly once, in order (the application-layer check of design §3)."""
        want = list(expected)
        got = self.received
        assert len(got) == len(set(got)), f"duplicates on {self.sid}: {len(got) - len(set(got))}"
        assert got == want, (f"{self.sid}: {len(got)} echoes, first difference at "
                             f"{next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")


class Harness:
    """A harness socket to one node; ``connect(node)`` moves it (reliable streams Resume)."""

    def __init__(self, executor_id: str, cluster: Cluster, token: str | None = None) -> None:
        self.executor_id = executor_id
        self.cluster = cluster
        self.endpoint: RelayEndpoint | None = None
        self.link: Link | None = None
        self.streams: dict[str, Stream] = {}
        #: one token for every node: a stream may only be resumed with the token that opened it
        self.token = token or cluster.harness_token(executor_id)

    async def connect(self, node: Node, timeout: float = 10.0) -> None:
        if self.endpoint is None:
            self.endpoint = RelayEndpoint(OPENER)
        old = self.link
        self.link = await connect_websocket(harness_url(node.ws_url, self.executor_id, self.token),
                                            self.endpoint.handler_for, timeout=timeout)
        if old is not None:
            old.close()

    def open(self, sid: str, mode: int = RELIABLE) -> Stream:
        assert self.endpoint is not None
        stream = self.streams[sid] = Stream(self, sid)
        self.endpoint.open_stream(sid, stream, mode)
        return stream

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close("test over")
        if self.link is not None:
            self.link.close()



@contextlib.asynccontextmanager
async def pair(cluster: Cluster, executor_id: str, executor_node: str,
               harness_node: str) -> AsyncIterator[tuple[EchoExecutor, Harness]]:
    """An echo executor on ``executor_node`` and a harness of it on ``harness_node``; both
    closed on exit."""
    ex, h = EchoExecutor(executor_id, cluster), Harness(executor_id, cluster)
    try:
        await ex.connect(cluster.node(executor_node))
        await h.connect(cluster.node(harness_node))
        yield ex, h
    finally:
        h.close()
        ex.close()
