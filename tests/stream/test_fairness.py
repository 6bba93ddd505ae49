"""Fairness: one stream pushing 64 MiB next to 100 streams sending small messages; every small
message leaves within one round-robin round of being queued: at most 101 frames in all and at
most one frame of the big stream (each small stream has one message outstanding at a time, so
the bound is about the scheduler, not about a stream's own queue)."""
from __future__ import annotations

import random

from execrelay import wire
from execrelay.stream import RELIABLE

from ._sim import Pair

BIG = (bytes(range(256)) * 4096) * 64          # 64 MiB
SMALL = 100
BOUND = SMALL + 2                               # one frame per other busy stream, + slack


class Watched(Pair):
    def __init__(self) -> None:
        super().__init__(seed=21, delay=0.0005)
        self.counter = 0
        self.queued: dict[bytes, int] = {}
        self.busy: dict[bytes, str] = {}       # message -> its stream (one at a time each)
        self.big_frames = 0
        self.big_at: dict[bytes, int] = {}
        self.worst = 0
        self.worst_big = 0

    def flush(self) -> None:
        for f in self.h.poll_output(self.now):
            self.counter += 1
            fr = wire.decode(f)
            if fr.stream_id == "big":
                self.big_frames += 1
            elif fr.kind == wire.DATA and fr.payload in self.queued:
                dist = self.counter - self.queued.pop(fr.payload)
                self.busy.pop(fr.payload)
                big = self.big_frames - self.big_at.pop(fr.payload)
                self.worst = max(self.worst, dist)
                self.worst_big = max(self.worst_big, big)
                assert dist <= BOUND, f"small message waited {dist} frames"
                assert big <= 1, f"small message waited for {big} frames of the big stream"
            self.h2e.send(f, self.now)
        for f in self.e.poll_output(self.now):
            self.e2h.send(f, self.now)


def test_small_messages_not_starved_by_64mib_stream():
    p = Watched()
    sids = ["big"] + [f"s{i}" for i in range(SMALL)]
    for sid in sids:
        p.h.open_stream(sid, 0.0, RELIABLE)
        p.h.send(sid, b"hello " + sid.encode())
    p.run_until(lambda: len(p.e.streams) == len(sids) and
                all(p.h.streams[s].mode == RELIABLE for s in sids))
    p.e.events.clear()
    p.h.send("big", BIG)
    rng = random.Random(5)
    k = 0

    def queue_small(n: int) -> None:
        nonlocal k
        idle = sorted(set(sids[1:]) - set(p.busy.values()))
        for sid in rng.sample(idle, min(n, len(idle))):
            msg = b"small-%d" % k
            k += 1
            p.h.send(sid, msg)
            p.queued[msg] = p.counter
            p.busy[msg] = sid
            p.big_at[msg] = p.big_frames

    queue_small(SMALL)
    big_done = lambda: any(e[0] == "message" and e[1] == "big" for e in p.e.events)  # noqa: E731
    while not big_done():
        assert p.steps < 2_000_000
        if rng.random() < 0.3:
            queue_small(rng.randint(1, 5))
        p.step()
    p.run_until(lambda: not p.queued)
    (got,) = [e[2] for e in p.e.events if e[0] == "message" and e[1] == "big"]
    assert got == BIG
    smalls = [e[2] for e in p.e.events if e[0] == "message" and e[1] != "big"]
    assert len(smalls) == k and p.worst <= BOUND
