"""Differential tests: the same random operation sequences through the compiled and the pure
twin of each hot-path module; every observable output and state must be identical."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from execrelay.stream.errors import ProtocolViolation


SETTINGS = settings(max_examples=300, deadline=None)


def _run(obj, op):
    name, args = op
    try:
        return ("ok", getattr(obj, name)(*args))
    except ProtocolViolation as exc:
        return ("violation", str(exc))


window_ops = st.lists(st.one_of(
    st.tuples(st.just("offer"), st.tuples(st.integers(0, 140), st.integers(0, 9999),
                                          st.integers(0, 300_000))),
    st.tuples(st.just("pop_next"), st.just(())),
), max_size=200)


@SETTINGS
@given(window_ops)
def test_window_twins_agree(twin_pair, ops):
    fast, pure = twin_pair("window")
    a, b = fast.RecvWindow(), pure.RecvWindow()
    for op in ops:
        assert _run(a, op) == _run(b, op)
        assert (a.ack, a.ack_bits, a.buffered_bytes, a.buffered_count) == \
               (b.ack, b.ack_bits, b.buffered_bytes, b.buffered_count)
        assert a.buffered_count <= 64 and a.buffered_bytes <= 1024 * 1024


def _sendwin_ops(draw_ops):
    return draw_ops


@st.composite
def sendwin_script(draw):
    ops = []
    now = 0.0
    for _ in range(draw(st.integers(0, 120))):
        now += draw(st.sampled_from([0.0, 0.001, 0.01, 0.2, 0.7, 3.0]))
        kind = draw(st.sampled_from(["push", "push", "ack", "ack", "expire", "deadline", "get",
                                      "unacked", "fast", "can", "mark"]))
        if kind == "push":
            ops.append(("push", (None, draw(st.integers(1, 61440)), now)))
        elif kind == "ack":
            # mostly plausible acks (relative to what was pushed), sometimes wild ones
            ops.append(("ack_rel", (draw(st.integers(-3, 40)), draw(st.integers(0, 2**32 - 1)),
                                    draw(st.booleans()), now)))
        elif kind == "expire":
            ops.append(("expire", (now,)))
        elif kind == "deadline":
            ops.append(("next_deadline", ()))
        elif kind == "get":
            ops.append(("get", (draw(st.integers(0, 80)),)))
        elif kind == "unacked":
            ops.append(("unacked", ()))
        elif kind == "fast":
            ops.append(("take_fast", ()))
        elif kind == "can":
            ops.append(("can_send", (draw(st.integers(1, 3_000_000)),)))
        else:
            ops.append(("mark_sent", (draw(st.integers(0, 80)), now)))
    return ops


def _state(s):
    return (s.base, s.next_seq, s.in_flight, s.in_flight_bytes, s.sacked_count, s.rto, s.srtt,
            s.rttvar)


@SETTINGS
@given(sendwin_script())
def test_sendwin_twins_agree(twin_pair, ops):
    fast, pure = twin_pair("sendwin")
    a, b = fast.SendWindow(), pure.SendWindow()
    for name, args in ops:
        if name == "push":
            if not a.can_send(args[1]):
                continue
            item = object()
            ra, rb = a.push(item, *args[1:]), b.push(item, *args[1:])
            assert ra == rb
        elif name == "ack_rel":
            rel, bits, masked, now = args
            ack = max(0, a.base - 1 + rel)
            if masked:  # keep the bits to seqs that were sent, so most acks are valid
                room = a.next_seq - ack - 1
                bits = bits & ((1 << max(0, min(room, 32))) - 1) & ~1
            assert _run(a, ("on_ack", (ack, bits, now))) == _run(b, ("on_ack", (ack, bits, now)))
        else:
            assert _run(a, (name, args)) == _run(b, (name, args))
        assert _state(a) == _state(b)
        assert a.next_seq - a.base <= 32


@st.composite
def reasm_script(draw):
    ops = []
    for _ in range(draw(st.integers(0, 60))):
        count = draw(st.sampled_from([1, 2, 3, 5, draw(st.integers(1, 12))]))
        index = draw(st.integers(0, count))
        size = draw(st.integers(1, 70))
        ops.append((index, count, bytes([len(ops) % 251]) * size))
    return ops


@SETTINGS
@given(reasm_script(), st.booleans())
def test_reasm_twins_agree(twin_pair, ops, well_formed):
    fast, pure = twin_pair("reasm")
    a = fast.Reassembler(max_segment=64, max_message=400)
    b = pure.Reassembler(max_segment=64, max_message=400)
    if well_formed:  # turn the script into consistent messages most of the time
        fixed = []
        for _, count, payload in ops:
            fixed.extend((i, count, payload[:64]) for i in range(count))
        ops = fixed
    for op in ops:
        ra = _run(a, ("feed", op))
        rb = _run(b, ("feed", op))
        assert ra == rb
        if ra[0] == "violation":
            a.clear()
            b.clear()
        assert (a.active, a.expected, a.count, a.size) == (b.active, b.expected, b.count, b.size)
