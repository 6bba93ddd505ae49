"""Whole-stack differential test: the same seeded lossy simulation through a stack built from
the compiled twins (codec + hot path) and one built from the pure twins must emit exactly the
same frames, byte for byte, at the same simulated times, and deliver the same messages."""
from __future__ import annotations

import random

from execrelay.stream import RELIABLE

from ._sim import Pair
from ._twins import fresh_stack


def _scenario(mux_mod, seed: int):
    p = Pair(seed=seed, mux_cls=mux_mod.Multiplexer, record=True, loss=0.1, dup=0.1,
             delay=0.001, jitter=0.004)
    rng = random.Random(seed)
    for sid in ("a", "b", "c"):
        p.h.open_stream(sid, p.now, RELIABLE)
    sent = 0
    while sent < 400 or p.h2e.q or p.e2h.q:
        if sent < 400 and rng.random() < 0.5:
            size = rng.choice([1, 50, 2000, 61440, 61441, 200_000])
            p.h.send(rng.choice("abc"), bytes([sent % 256]) * size)
            for sid in list(p.e.streams):
                if rng.random() < 0.3:
                    p.e.send(sid, b"r%d" % sent)
            sent += 1
        if sent == 200:
            p.h2e.cut()
            p.e2h.cut()
            p.h2e.restore()
            p.e2h.restore()
            p.h.on_reconnect(p.now)
            p.e.on_reconnect(p.now)
        if not p.step():
            break
        assert p.steps < 500_000
    p.run_until(lambda: False, horizon=p.now + 60.0)
    return p.record, p.h.events, p.e.events


def test_compiled_and_pure_stacks_emit_identical_frames(twin_pair):
    for name in ("window", "sendwin", "codec"):
        twin_pair(name)   # skips (or fails under EXECRELAY_REQUIRE_EXT) when one is not built
    fast = fresh_stack(False)
    pure = fresh_stack(True)
    for seed in (1, 2):
        ra, ha, ea = _scenario(fast, seed)
        rb, hb, eb = _scenario(pure, seed)
        assert len(ra) == len(rb)
        for i, (x, y) in enumerate(zip(ra, rb)):
            assert x == y, f"frame {i} differs: {x[:2]} vs {y[:2]}"
        assert ha == hb and ea == eb
        assert sum(1 for e in ea if e[0] == "message") > 300
