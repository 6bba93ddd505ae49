"""Window limits (32 segments / 2 MiB unacked), reorder-buffer bounds whatever the peer sends,
ack timing (<= 5 ms delay, every 16 segments), RTO/backoff, heartbeat."""
from __future__ import annotations

import random
from typing import Iterator

from execrelay import wire
from execrelay.stream import ACCEPTOR, OPENER, RELIABLE, Multiplexer
from execrelay.stream.engine import StreamEngine

SEG = 60 * 1024


def reliable_acceptor():
    mux = Multiplexer(ACCEPTOR)
    mux.feed(wire.encode_control(wire.RESUME, "s", next_seq=1), 0.0)
    mux.poll_output(0.0)
    mux.events.clear()
    return mux


def deadline_ticks(mux: Multiplexer) -> Iterator[tuple[float, list[wire.Frame]]]:
    """Run the timers: at each next deadline, tick and yield (the time, the frames put out)."""
    while True:
        now = mux.next_deadline()
        mux.tick(now)
        yield now, [wire.decode(b) for b in mux.poll_output(now)]


def test_send_window_never_exceeds_32_segments_or_2mib():
    mux = reliable_acceptor()
    eng = mux.streams["s"]
    rng = random.Random(4)
    for _ in range(60):
        mux.send("s", b"m" * rng.choice([1, 100, SEG, SEG + 1, 100_000, 300_000]))
    sent: dict[int, int] = {}
    acked = 0
    now = 0.0
    for _round in range(400):
        for f in mux.poll_output(now):
            fr = wire.decode(f)
            if fr.kind == wire.DATA:
                sent.setdefault(fr.seq, len(fr.payload))
        unacked = {s: n for s, n in sent.items() if s > acked}
        assert len(unacked) <= 32 and max(unacked, default=0) - acked <= 32
        assert sum(unacked.values()) <= 2 * 1024 * 1024
        assert eng._sw.in_flight_bytes <= 2 * 1024 * 1024
        if _round % 3 == 2 and sent:          # the peer acks a little, now and then
            acked = min(max(sent), acked + rng.randint(0, 8))
            mux.feed(wire.encode_control(wire.ACK, "s", acked, 0), now)
        now += 0.001
        mux.tick(now)
    assert len(sent) > 100                    # the window did move


def test_reorder_buffer_bounds_whatever_the_peer_sends():
    mux = reliable_acceptor()
    eng = mux.streams["s"]
    rng = random.Random(8)
    delivered = 0
    for i in range(5000):
        seq = rng.choice([1, 2, 3, eng._rw.ack + 1, eng._rw.ack + rng.randint(2, 70),
                          rng.randint(1, 2**32 - 1)])
        size = rng.choice([1, 1000, SEG])
        mux.feed(wire.encode_data("s", seq, 0, 0, b"x" * size), i * 1e-4)
        if eng.closed:
            break
        rw = eng._rw
        assert rw.buffered_count <= 64 and rw.buffered_bytes <= 1024 * 1024
        delivered = len(mux.events)
        mux.poll_output(i * 1e-4)
    assert not eng.closed and delivered > 10


def test_ack_delay_and_every_16_segments():
    mux = reliable_acceptor()
    mux.feed(wire.encode_data("s", 1, 0, 0, b"a"), 1.0)
    assert mux.poll_output(1.0) == []                     # nothing yet: delayed ack
    t = mux.next_deadline()
    assert t is not None and 1.0 < t <= 1.005
    mux.tick(t)
    (f,) = [wire.decode(b) for b in mux.poll_output(t)]
    assert (f.kind, f.ack, f.ack_bits) == (wire.ACK, 1, 0)
    for seq in range(2, 18):                             # 16 segments: ack at once
        mux.feed(wire.encode_data("s", seq, 0, 0, b"a"), 2.0)
    (f,) = [wire.decode(b) for b in mux.poll_output(2.0)]
    assert (f.kind, f.ack) == (wire.ACK, 17)
    mux.feed(wire.encode_data("s", 19, 0, 0, b"a"), 2.0)  # out of order: ack at once
    (f,) = [wire.decode(b) for b in mux.poll_output(2.0)]
    assert (f.kind, f.ack, f.ack_bits) == (wire.ACK, 17, 0b10)
    mux.feed(wire.encode_control(wire.ACK, "s", 0, 0), 2.0)   # acks are never acked
    assert mux.poll_output(2.0) == []


def test_piggybacked_ack_replaces_standalone():
    mux = reliable_acceptor()
    mux.feed(wire.encode_data("s", 1, 0, 0, b"req"), 1.0)
    mux.send("s", b"reply")
    (f,) = [wire.decode(b) for b in mux.poll_output(1.0)]
    assert (f.kind, f.seq, f.ack) == (wire.DATA, 1, 1)
    mux.tick(1.01)
    assert mux.poll_output(1.01) == []


def test_rto_backoff_and_heartbeat():
    mux = reliable_acceptor()
    mux.send("s", b"x")
    mux.poll_output(0.0)
    times = []
    for now, out in deadline_ticks(mux):
        if any(f.kind == wire.DATA for f in out):
            times.append(round(now, 6))
        if len(times) == 4:
            break
    assert times == [0.5, 1.5, 3.5, 7.5]                  # 500 ms initial RTO, doubling
    mux.feed(wire.encode_control(wire.ACK, "s", 1, 0), now)
    last_tx = now
    for now, out in deadline_ticks(mux):  # next_deadline() may be early (never late)
        assert now <= last_tx + 30.0
        if out:
            break
    (f,) = out
    assert f.kind == wire.HEARTBEAT and now == last_tx + 30.0


def test_resume_on_live_stream_resends_unacked():
    mux = reliable_acceptor()
    for m in (b"1", b"2", b"3"):
        mux.send("s", m)
    mux.poll_output(0.0)
    mux.feed(wire.encode_control(wire.RESUME, "s", 1, 0b10, next_seq=5), 0.01)  # peer reconnected
    out = [wire.decode(b) for b in mux.poll_output(0.01)]
    assert [(f.kind, f.seq, f.next_seq) for f in out] == [(wire.RESUME, 0, 4), (wire.DATA, 2, 0)]


def test_engine_standalone_inbox():
    a = StreamEngine.open("z", 0.0, RELIABLE)
    b = None
    a.send(b"hi")
    frames = []
    while (f := a.emit_one(0.0)) is not None:
        frames.append(f)
    for f in frames:
        fr = wire.decode(f)
        if b is None:
            b = StreamEngine.accept("z", 0.0, RELIABLE, answer=False)
        b.on_frame(fr, 0.0)
    assert b.inbox == [b"hi"]
    assert OPENER != ACCEPTOR


def test_big_first_message_waits_for_the_answer_then_segments():
    from ._sim import Pair
    p = Pair(seed=2)
    p.h.open_stream("s", 0.0, RELIABLE)
    big = bytes(range(256)) * 1000                     # 256,000 bytes: 5 segments
    p.h.send("s", big)
    first = [wire.decode(f) for f in p.h.poll_output(0.0)]
    assert [f.kind for f in first] == [wire.RESUME]    # held while PENDING (never segmented
    for f in first:                                    # towards a maybe-0.131.0 peer)
        p.h2e.send(wire.encode(f), 0.0)
    p.run_until(lambda: any(e[0] == "message" for e in p.e.events))
    assert Pair.messages(p.e) == [big]


def test_pending_fallback_with_oversized_queued_message_resets_clearly():
    mux = Multiplexer(OPENER)
    mux.open_stream("u", 0.0, RELIABLE)
    mux.send("u", b"x" * (17 * 1024 * 1024))            # fine for reliable, held while pending
    mux.poll_output(0.0)
    mux.feed(wire.encode_data("u", 0, 0, 0, b"legacy peer"), 0.0)
    (f,) = [wire.decode(b) for b in mux.poll_output(0.0)]
    assert f.kind == wire.RESET and f.reason.startswith("legacy_message_too_large: ")
    assert mux.events[-1][0] == "close"


def test_sequence_space_never_wraps():
    mux = reliable_acceptor()
    sw = mux.streams["s"]._sw
    sw.base = sw.next_seq = 2**32 - 1
    mux.send("s", b"last")
    mux.send("s", b"one too many")
    out = [wire.decode(b) for b in mux.poll_output(0.0)]
    assert [(f.kind, f.seq) for f in out[:1]] == [(wire.DATA, 2**32 - 1)]
    assert out[1].kind == wire.RESET and "sequence space exhausted" in out[1].reason


def test_lost_resume_is_repeated_even_with_nothing_in_flight():
    """Found by a seeded run: the opener held a >60 KiB first message (PENDING) and its only
    Resume{1} was lost -> nothing in flight, no RTO, a deadlock.  Resume{1} now repeats on its
    own timer (500 ms, doubling) until answered."""
    mux = Multiplexer(OPENER)
    mux.open_stream("s", 0.0, RELIABLE)
    mux.send("s", b"b" * 77_499)
    assert [wire.decode(f).kind for f in mux.poll_output(0.0)] == [wire.RESUME]   # lost
    times = []
    for now, out in deadline_ticks(mux):
        if out:
            assert [(f.kind, f.next_seq) for f in out] == [(wire.RESUME, 1)]
            times.append(now)
        if len(times) == 3:
            break
    assert times == [0.5, 1.5, 3.5]
    mux.feed(wire.encode_control(wire.RESUME, "s", next_seq=1), now)   # the answer
    out = [wire.decode(f) for f in mux.poll_output(now)]
    assert [(f.kind, f.seq, f.segment_count) for f in out] == [(wire.DATA, 1, 2), (wire.DATA, 2, 2)]
