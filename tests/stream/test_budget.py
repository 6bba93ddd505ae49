"""Issue 13, item 4: one reassembly budget for all the streams of a multiplexer (an executor's
relay socket): a stream whose message would exceed it is Reset with the reason, the others
complete."""
from __future__ import annotations

import pytest

from execrelay.stream import ACCEPTOR, OPENER, RELIABLE, Multiplexer
from execrelay.stream.errors import REASSEMBLY_BUDGET_BYTES

pytestmark = pytest.mark.timeout(60)


def _pump(a: Multiplexer, b: Multiplexer) -> None:
    """Move frames both ways (acks included) until neither side has anything left to say."""
    now = 0.0
    for _ in range(100000):
        moved = False
        for src, dst in ((a, b), (b, a)):
            frames = src.poll_output(now)
            moved = moved or bool(frames)
            for f in frames:
                dst.feed(f, now)
        if not moved:
            deadline = min((d for d in (a.next_deadline(), b.next_deadline()) if d is not None),
                           default=None)
            if deadline is None or deadline - now > 1.0:
                return
            now = deadline
            a.tick(now)
            b.tick(now)


def test_streams_over_the_shared_budget_are_reset_the_others_complete():
    got: dict[str, int] = {}
    closed: dict[str, str | None] = {}
    harness = Multiplexer(OPENER, on_message=lambda *a: None,
                          on_close=lambda sid, r, peer: closed.setdefault(sid, r))
    executor = Multiplexer(ACCEPTOR, on_message=lambda sid, p: got.__setitem__(sid, len(p)),
                           on_open=lambda sid, mode: None, on_close=lambda *a: None)
    size = 60 * 1024 * 1024
    assert 2 * size <= REASSEMBLY_BUDGET_BYTES < 3 * size
    message = b"m" * size
    sids = ["s1", "s2", "s3"]
    for sid in sids:
        harness.open_stream(sid, 0.0, RELIABLE)
        harness.send(sid, b"hello")
    _pump(harness, executor)           # every stream is reliable now (the answer came back)
    for sid in sids:
        harness.send(sid, message)     # round-robin: the three messages are reassembled at once
    _pump(harness, executor)
    done = sorted(sid for sid, n in got.items() if n == size)
    assert len(done) == 2, got
    (over,) = set(sids) - set(done)
    assert closed[over].startswith("resource_exhausted: reassembly budget"), closed
    assert executor.reassembly_in_use == 0
    # the budget is free again: the reset stream's successor gets its message through
    harness.open_stream("s4", 0.0, RELIABLE)
    harness.send("s4", message)
    _pump(harness, executor)
    assert got.get("s4") == size


def test_budget_is_released_by_a_reset_mid_message():
    executor = Multiplexer(ACCEPTOR, reassembly_budget=200 * 1024)
    from execrelay import wire
    from execrelay.stream.errors import SEGMENT_BYTES
    seg = b"x" * SEGMENT_BYTES
    executor.feed(wire.encode_data("a", 1, 0, 0, seg, 0, 3), 0.0)   # reserves 3 segments
    assert executor.reassembly_in_use == 3 * SEGMENT_BYTES
    executor.feed(wire.encode_data("b", 1, 0, 0, seg, 0, 3), 0.0)   # would exceed: Reset
    (close,) = [e for e in executor.events if e[0] == "close"]
    assert close[1] == "b" and close[2][0].startswith("resource_exhausted: reassembly budget")
    executor.feed(wire.encode_control(wire.RESET, "a", reason="bye"), 0.0)
    assert executor.reassembly_in_use == 0
