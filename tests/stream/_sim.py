"""Deterministic simulation helpers: a seeded lossy link and a two-multiplexer driver.

Simulated time only: the driver jumps ``now`` to the next event (a frame arriving or a timer
deadline), so tests run as fast as the code and never sleep.
"""
from __future__ import annotations

import heapq
import random

from execrelay.stream import ACCEPTOR, OPENER, Multiplexer


class Link:
    """One direction of a websocket through a faulty rendezvous: drops, duplicates, delays
    (with jitter, hence reordering) frames using a seeded RNG.  ``cut()`` loses everything in
    flight and everything sent until ``restore()``."""

    def __init__(self, rng: random.Random, loss: float = 0.0, dup: float = 0.0,
                 delay: float = 0.001, jitter: float = 0.0) -> None:
        self.rng = rng
        self.loss = loss
        self.dup = dup
        self.delay = delay
        self.jitter = jitter
        self.q: list = []
        self.n = 0
        self.up = True
        self.sent = 0

    def send(self, frame: bytes, now: float) -> None:
        self.sent += 1
        if not self.up:
            return
        rng = self.rng
        if self.loss and rng.random() < self.loss:
            return
        copies = 2 if self.dup and rng.random() < self.dup else 1
        for _ in range(copies):
            t = now + self.delay + (rng.random() * self.jitter if self.jitter else 0.0)
            self.n += 1
            heapq.heappush(self.q, (t, self.n, frame))

    def next_time(self) -> float | None:
        return self.q[0][0] if self.q else None

    def pop_due(self, now: float) -> list[bytes]:
        out = []
        q = self.q
        while q and q[0][0] <= now:
            out.append(heapq.heappop(q)[2])
        return out

    def cut(self) -> None:
        self.up = False
        self.q.clear()

    def restore(self) -> None:
        self.up = True


class Pair:
    """An opener (harness) and an acceptor (executor) multiplexer joined by two Links."""

    def __init__(self, seed: int = 1, mux_cls=Multiplexer, record: bool = False, **link) -> None:
        self.rng = random.Random(seed)
        self.h = mux_cls(OPENER)
        self.e = mux_cls(ACCEPTOR)
        #: with record=True: every frame each side emitted, in order (differential tests)
        self.record = [] if record else None
        self.h2e = Link(random.Random(seed * 7 + 1), **link)
        self.e2h = Link(random.Random(seed * 7 + 2), **link)
        self.now = 0.0
        self.steps = 0

    def flush(self) -> None:
        rec = self.record
        for f in self.h.poll_output(self.now):
            if rec is not None:
                rec.append((self.now, "h", f))
            self.h2e.send(f, self.now)
        for f in self.e.poll_output(self.now):
            if rec is not None:
                rec.append((self.now, "e", f))
            self.e2h.send(f, self.now)

    def step(self) -> bool:
        """Advance to the next event and process it; False when nothing is left to happen."""
        self.steps += 1
        self.flush()
        cands = [t for t in (self.h2e.next_time(), self.e2h.next_time(),
                             self.h.next_deadline(), self.e.next_deadline()) if t is not None]
        if not cands:
            return False
        t = min(cands)
        if t > self.now:
            self.now = t
        now = self.now
        for f in self.h2e.pop_due(now):
            self.e.feed(f, now)
        for f in self.e2h.pop_due(now):
            self.h.feed(f, now)
        self.h.tick(now)
        self.e.tick(now)
        self.flush()
        return True

    def run_until(self, cond, max_steps: int = 1_000_000, horizon: float | None = None) -> None:
        while not cond():
            if horizon is not None and self.now >= horizon:
                return
            assert self.steps < max_steps, "simulation did not converge"
            if not self.step():
                if cond():
                    return
                raise AssertionError("simulation went idle before the condition held")

    @staticmethod
    def messages(mux: Multiplexer, sid: str | None = None) -> list[bytes]:
        return [ev[2] for ev in mux.events if ev[0] == "message" and (sid is None or ev[1] == sid)]
