"""Bounded queues, one per local socket, for frames that arrived over NATS
(docs/rendezvous.md §Several nodes, "Bounded queues").

The node's NATS connection must never wait for a socket: a NATS callback hands a frame to
:meth:`Inboxes.deliver`, which routes it at once when the target socket takes writes (the
usual case: no queue exists) and otherwise appends it to that socket's queue of at most
``queue_frames`` frames.  "Takes writes" means: no more than the socket's own limit queued
(``Link.limit``: the executor high-water mark, or the harness queue soft limit), the mark the
single-node router uses for the same sockets.  When the queue is full the oldest frame goes: dropped when its
stream is reliable (the endpoints resend what was not acked), or its stream is Reset when it
is legacy (a legacy stream never loses a frame silently).  A queue drains every few
milliseconds while it has frames and its socket takes writes again.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable

from ..link import Link
from ..metrics import Metrics

#: (route the frame to, the link it comes from, the frame, its route object)
Item = tuple[Callable[[Any, bytes], None], Any, bytes, Any]

DRAIN_EVERY = 0.005


class Inboxes:
    def __init__(self, metrics: Metrics, limit: int,
                 kill_legacy: Callable[[Link, Any], None]) -> None:
        self.metrics = metrics
        self.limit = limit
        self._kill_legacy = kill_legacy
        self.queues: dict[Link, deque[Item]] = {}
        self._armed = False

    def deliver(self, target: Link, route: Any, fn: Callable[[Any, bytes], None], source: Any,
                frame: bytes) -> None:
        queue = self.queues.get(target)
        if queue is None:
            if target.queued_bytes() <= target.limit:
                fn(source, frame)
                return
            queue = self.queues[target] = deque()
        queue.append((fn, source, frame, route))
        if len(queue) > self.limit:
            _, _, _, oldest = queue.popleft()
            if oldest is not None and not oldest.reliable:
                self.metrics.queue_drops["cross_node_legacy"] += 1
                self._kill_legacy(target, oldest)
            else:
                self.metrics.queue_drops["cross_node_reliable"] += 1
        self._arm()

    def _arm(self) -> None:
        if not self._armed:
            self._armed = True
            asyncio.get_running_loop().call_later(DRAIN_EVERY, self._drain)

    def _drain(self) -> None:
        self._armed = False
        for target, queue in list(self.queues.items()):
            while queue and not target.closed and target.queued_bytes() <= target.limit:
                fn, source, frame, _ = queue.popleft()
                fn(source, frame)
            if not queue or target.closed:
                del self.queues[target]
        if self.queues:
            self._arm()

    def pending(self) -> int:
        return sum(len(q) for q in self.queues.values())
