"""Which nodes are alive, from their heartbeats on ``rdv.node.<id>``
(docs/rendezvous.md §Several nodes, "Liveness").

Pure bookkeeping, no I/O: the node feeds heartbeats (:meth:`Liveness.seen`) and calls
:meth:`Liveness.tick` once per heartbeat period; the tick reports nodes that missed
``misses`` heartbeats (dead) and whether this process itself stalled (a tick much later than
due: a SIGSTOP, a long GC, an overloaded host).  After a stall every peer's clock restarts:
their heartbeats could not be read meanwhile, so their silence proves nothing.
"""
from __future__ import annotations


class Liveness:
    def __init__(self, node_id: str, interval: float, misses: int) -> None:
        self.node_id = node_id
        self.interval = interval
        self.misses = misses
        self.last_seen: dict[str, float] = {}
        self.dead: set[str] = set()
        #: when :meth:`tick` last ran (None: never)
        self.last_tick: float | None = None

    def seen(self, node_id: str, now: float) -> bool:
        """Record a heartbeat; True when the node was taken for dead (it came back)."""
        if node_id == self.node_id:
            return False
        self.last_seen[node_id] = now
        if node_id in self.dead:
            self.dead.discard(node_id)
            return True
        return False

    def stalled(self, now: float) -> bool:
        """True when this process has not ticked for 2.5 heartbeat periods."""
        return self.last_tick is not None and now - self.last_tick > 2.5 * self.interval

    def tick(self, now: float) -> tuple[list[str], bool]:
        """``(nodes newly taken for dead, this process stalled since the last tick)``."""
        stalled = self.stalled(now)
        self.last_tick = now
        if stalled:
            for node_id in self.last_seen:
                self.last_seen[node_id] = now
            return [], True
        limit = self.misses * self.interval
        newly = [n for n, t in self.last_seen.items() if n not in self.dead and now - t > limit]
        self.dead.update(newly)
        return newly, False

    def alive(self) -> int:
        """Nodes alive, this one included."""
        return 1 + sum(1 for n in self.last_seen if n not in self.dead)
