"""Two engines over a seeded lossy / duplicating / reordering / delaying link: every message
arrives exactly once, in order, byte-identical, in both directions; also with the link cut and
restored (Resume) every few hundred frames."""
from __future__ import annotations

import random

import pytest

from execrelay.stream import ACCEPTOR, OPENER, RELIABLE

from ._sim import Pair

BLOCK = random.Random(99).randbytes(5 * 1024 * 1024 + 64)


def _sizes(rng: random.Random, n: int) -> list[int]:
    """Mostly small messages with a tail of big ones (1 B .. 5 MiB, both ends included)."""
    out = []
    for i in range(n):
        r = rng.random()
        if i == n // 2:
            out.append(5 * 1024 * 1024)
        elif i == n // 3:
            out.append(1)
        elif r < 0.90:
            out.append(rng.randint(1, 1500))
        elif r < 0.993:
            out.append(rng.randint(1500, 200_000))
        else:
            out.append(rng.randint(200_000, 5 * 1024 * 1024))
    return out


def _message(i: int, size: int) -> bytes:
    head = i.to_bytes(8, "little")
    if size <= 8:
        return head[:size] if size else b""
    off = (i * 7919) % 64
    return head + BLOCK[off:off + size - 8]


class Pump:
    """Feeds one side's messages into its multiplexer as backpressure allows."""

    def __init__(self, mux, sid: str, sizes: list[int]) -> None:
        self.mux, self.sid, self.sizes, self.i = mux, sid, sizes, 0

    def fill(self) -> None:
        mux = self.mux
        while self.i < len(self.sizes) and mux.buffered(self.sid) < 4 * 1024 * 1024:
            mux.send(self.sid, _message(self.i, self.sizes[self.i]))
            self.i += 1


def _run(p: Pair, n: int, seed: int, cut_every: int = 0, cut_len: float = 0.05) -> None:
    rng = random.Random(seed)
    sizes_h = _sizes(rng, n)
    sizes_e = _sizes(rng, n)
    p.h.open_stream("s", p.now, RELIABLE)
    p.h.send("s", _message(0, sizes_h[0]))
    hp = Pump(p.h, "s", sizes_h)
    hp.i = 1
    p.run_until(lambda: "s" in p.e.streams)
    ep = Pump(p.e, "s", sizes_e)
    cuts = 0
    next_cut = cut_every
    restore_at = None
    got_e = lambda: len(p.e.events) - 1  # noqa: E731  (first event is "open")
    while True:
        hp.fill()
        ep.fill()
        if got_e() >= n and len(p.h.events) >= n:
            break
        if cut_every:
            sent = p.h2e.sent + p.e2h.sent
            if restore_at is None and sent >= next_cut:
                p.h2e.cut()
                p.e2h.cut()
                restore_at = p.now + cut_len
                cuts += 1
            elif restore_at is not None and p.now >= restore_at:
                p.h2e.restore()
                p.e2h.restore()
                p.h.on_reconnect(p.now)
                p.e.on_reconnect(p.now)
                restore_at = None
                next_cut = p.h2e.sent + p.e2h.sent + cut_every
        assert p.steps < 3_000_000
        if not p.step() and restore_at is not None:
            p.now = restore_at
    got_h = Pair.messages(p.h, "s")
    got_ep = Pair.messages(p.e, "s")
    assert len(got_ep) == n and len(got_h) == n
    for i in range(n):
        assert got_ep[i] == _message(i, sizes_h[i]), f"h->e message {i} differs"
        assert got_h[i] == _message(i, sizes_e[i]), f"e->h message {i} differs"
    assert p.e.bad_frames == 0 and p.h.bad_frames == 0
    assert p.e.streams["s"].mode == RELIABLE and p.h.streams["s"].mode == RELIABLE
    if cut_every:
        assert cuts >= 3


def test_perfect_link_small():
    p = Pair(seed=3)
    _run(p, 300, seed=3)
    assert p.h.streams["s"].stats["retransmits"] == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_lossy_link_10k_messages_each_way(seed):
    """10% loss + 10% duplication + reordering (jitter 4x the base delay), 10,000 messages
    of 1 B .. 5 MiB per direction."""
    p = Pair(seed=seed, loss=0.10, dup=0.10, delay=0.001, jitter=0.004)
    _run(p, 10_000, seed=seed)
    s = p.h.streams["s"].stats
    assert s["retransmits"] > 0 and s["duplicates"] > 0


def test_lossy_link_with_cuts_and_resume():
    """Same faults, plus the link cut (everything in flight lost) every few hundred frames and
    restored with Resume on both sides."""
    p = Pair(seed=5, loss=0.10, dup=0.10, delay=0.001, jitter=0.004)
    _run(p, 3_000, seed=5, cut_every=400)


def test_lossy_link_with_cuts_10k():
    p = Pair(seed=6, loss=0.10, dup=0.10, delay=0.001, jitter=0.004)
    _run(p, 10_000, seed=6, cut_every=300)


def test_lost_opening_resume_and_lost_answer():
    """P2 determinism on a lossy link: the acceptor opens reliable on Data seq>=1 when the
    opener's Resume is lost; the opener repeats Resume{1} before retransmissions until it sees
    the answer."""
    p = Pair(seed=11)
    p.h.open_stream("x", 0.0, RELIABLE)
    p.h.send("x", b"first")
    frames = p.h.poll_output(0.0)
    assert len(frames) == 2                     # Resume{1}, Data seq 1
    p.e.feed(frames[1], 0.0)                    # the Resume was lost
    assert p.e.events[0] == ("open", "x", "reliable")
    assert Pair.messages(p.e) == [b"first"]
    answer = p.e.poll_output(0.0)               # Resume{1} answer: lose it too
    assert len(answer) == 1
    # Nothing reaches the opener: its RTO fires and it resends Resume{1} before seq 1.
    t = p.h.next_deadline()
    assert t is not None
    p.h.tick(0.5)
    again = p.h.poll_output(0.5)
    from execrelay import wire
    kinds = [wire.decode(f).kind for f in again]
    assert kinds[:2] == [wire.RESUME, wire.DATA]
    assert wire.decode(again[0]).next_seq == 1
    for f in again:
        p.e.feed(f, 0.5)
    assert Pair.messages(p.e) == [b"first"]     # duplicate suppressed
    for f in p.e.poll_output(0.5):
        p.h.feed(f, 0.5)
    assert p.h.streams["x"].mode == RELIABLE


def test_roles():
    assert Pair().h.role == OPENER and Pair().e.role == ACCEPTOR


@pytest.mark.parametrize("seed", range(20, 28))
def test_seed_sweep_heavy_faults(seed):
    """Many seeds, harsher link (15% loss, 15% duplication, jitter 10x the delay) and cuts:
    liveness bugs (a lost frame nobody repeats) show up as a simulation that never ends."""
    p = Pair(seed=seed, loss=0.15, dup=0.15, delay=0.001, jitter=0.01)
    _run(p, 600, seed=seed, cut_every=150 + seed)


@pytest.mark.parametrize("seed", [41, 42])
def test_many_streams_lossy_both_directions(seed):
    """20 reliable streams at once over the faulty link (one timer heap, one ready queue):
    every message of every stream arrives exactly once, in order, on the right stream."""
    rng = random.Random(seed)
    p = Pair(seed=seed, loss=0.1, dup=0.1, delay=0.001, jitter=0.004)
    sids = [f"st{i}" for i in range(20)]
    want_e: dict[str, list[bytes]] = {s: [] for s in sids}
    want_h: dict[str, list[bytes]] = {s: [] for s in sids}
    for s in sids:
        p.h.open_stream(s, 0.0, RELIABLE)
    for k in range(100):
        for s in sids:
            m = b"%s-h-%d-" % (s.encode(), k) + BLOCK[:rng.choice([1, 100, 70_000])]
            p.h.send(s, m)
            want_e[s].append(m)
        for _ in range(3):
            p.step()
        for s in list(p.e.streams):
            m = b"%s-e-%d-" % (s.encode(), k) + BLOCK[:rng.choice([1, 500])]
            p.e.send(s, m)
            want_h[s].append(m)
    done = lambda: (all(len(Pair.messages(p.e, s)) == len(want_e[s]) for s in sids)  # noqa: E731
                    and all(len(Pair.messages(p.h, s)) == len(want_h[s]) for s in sids))
    p.run_until(done, max_steps=2_000_000)
    for s in sids:
        assert Pair.messages(p.e, s) == want_e[s]
        assert Pair.messages(p.h, s) == want_h[s]
    assert not any(e[0] == "close" for e in p.e.events + p.h.events)
