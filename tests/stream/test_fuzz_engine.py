"""Whatever a peer sends (valid frames in any order, with any numbers), the multiplexer never
raises, its bounds hold, and a stream only ends by a peer Reset or a protocol_error Reset."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from execrelay import wire
from execrelay.stream import ACCEPTOR, OPENER, RELIABLE, Multiplexer

u32 = st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1))


@st.composite
def frames(draw):
    sid = draw(st.sampled_from(["a", "b", "c"]))
    kind = draw(st.sampled_from([wire.DATA, wire.DATA, wire.DATA, wire.ACK, wire.RESUME,
                                 wire.HEARTBEAT, wire.RESET]))
    ack, bits = draw(u32), draw(st.one_of(st.just(0), u32))
    if kind == wire.DATA:
        count = draw(st.one_of(st.just(1), st.integers(1, 5), st.integers(1, 2000)))
        idx = draw(st.integers(0, count - 1))
        size = draw(st.sampled_from([1, 10, 61440, 61441]))
        return wire.encode_data(sid, draw(u32), ack, bits, b"x" * size, idx, count)
    if kind == wire.RESET:
        return wire.encode_control(kind, sid, ack, bits, reason="r")
    return wire.encode_control(kind, sid, ack, bits, next_seq=draw(u32))


@settings(max_examples=300, deadline=None)
@given(st.lists(frames(), max_size=60), st.sampled_from([ACCEPTOR, OPENER]))
def test_any_frame_sequence_is_handled(seq, role):
    mux = Multiplexer(role)
    if role == OPENER:
        for sid in "abc":
            mux.open_stream(sid, 0.0, RELIABLE)
            mux.send(sid, b"hello")
    now = 0.0
    for f in seq:
        now += 0.01
        mux.feed(f, now)
        mux.tick(now)
        for out in mux.poll_output(now):
            assert wire.decode(out)
        for eng in mux.streams.values():
            if eng._rw is not None:
                assert eng._rw.buffered_count <= 64 and eng._rw.buffered_bytes <= 1024 * 1024
                assert eng._sw.next_seq - eng._sw.base <= 32
    for ev in mux.events:
        if ev[0] == "close":
            reason, by_peer = ev[2]
            assert by_peer or reason.startswith("protocol_error: ") or reason == "disconnected"
