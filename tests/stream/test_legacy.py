"""Legacy mode against a scripted 0.131.0-like peer: no acks, seq from 0, never segments,
ignores seq; we must behave exactly like 0.131.0 (relay-protocol.md sections 2-4, 7, 9)."""
from __future__ import annotations

import pytest

from execrelay import wire
from execrelay.stream import (ACCEPTOR, LEGACY, OPENER, RELIABLE, MessageTooLarge, Multiplexer,
                              StreamClosed)

MiB = 1024 * 1024


def harness_resume(sid: str) -> bytes:
    return wire.encode_control(wire.RESUME, sid, next_seq=0)   # 0.131.0: Resume{0} first


def harness_data(sid: str, seq: int, payload: bytes) -> bytes:
    return wire.encode_data(sid, seq, 0, 0, payload)


def data_frames(frames: list[bytes]) -> list:
    return [wire.decode(f) for f in frames]


def legacy_acceptor(sid: str, first: bytes = b"init") -> Multiplexer:
    """An executor-side multiplexer with one legacy stream, opened by a 0.131.0 harness's first
    Data frame (seq 0)."""
    mux = Multiplexer(ACCEPTOR)
    mux.feed(harness_data(sid, 0, first), 0.0)
    return mux


def sent_seqs(mux: Multiplexer) -> list[int]:
    """The seqs of what ``mux`` puts out now."""
    return [f.seq for f in data_frames(mux.poll_output(0.0))]


def test_executor_side_legacy_stream_like_0131():
    mux = Multiplexer(ACCEPTOR)
    mux.feed(harness_resume("A"), 0.0)
    assert mux.events == [] and "A" not in mux.streams        # Resume creates nothing (obs L)
    assert mux.poll_output(0.0) == []
    for seq, body in enumerate([b'{"id":1,"method":"initialize"}', b'{"method":"initialized"}',
                                b'{"id":2,"method":"x"}']):
        mux.feed(harness_data("A", seq, body), 0.0)
    assert mux.events[0] == ("open", "A", "legacy")
    assert [e[2] for e in mux.events[1:]] == [b'{"id":1,"method":"initialize"}',
                                              b'{"method":"initialized"}', b'{"id":2,"method":"x"}']
    mux.send("A", b'{"id":1,"result":{}}')
    mux.send("A", b'{"id":2,"error":{}}')
    out = data_frames(mux.poll_output(0.0))
    assert [(f.kind, f.seq, f.ack, f.ack_bits, f.segment_index, f.segment_count) for f in out] == \
        [(wire.DATA, 0, 0, 0, 0, 1), (wire.DATA, 1, 0, 0, 0, 1)]
    # No timers, no acks, no retransmission, ever.
    assert mux.next_deadline() is None
    mux.tick(1e6)
    assert mux.poll_output(1e6) == []


def test_legacy_receiver_ignores_seq_and_duplicates():
    mux = Multiplexer(ACCEPTOR)
    for seq, body in [(0, b"a"), (0, b"a"), (7, b"b"), (3, b"c"), (100, b"d")]:
        mux.feed(harness_data("D", seq, body), 0.0)
    # obs C/D: duplicates executed twice, arrival order, seq ignored
    assert [e[2] for e in mux.events[1:]] == [b"a", b"a", b"b", b"c", b"d"]
    # ack fields, Resume, Heartbeat, Ack on a live legacy stream: ignored (obs L)
    mux.feed(wire.encode_data("D", 5, 42, 7, b"e"), 0.0)
    mux.feed(wire.encode_control(wire.HEARTBEAT, "D"), 0.0)
    mux.feed(wire.encode_control(wire.ACK, "D", 3, 3), 0.0)
    mux.feed(wire.encode_control(wire.RESUME, "D", next_seq=9), 0.0)
    assert [e[2] for e in mux.events[1:]] == [b"a", b"a", b"b", b"c", b"d", b"e"]
    assert mux.poll_output(0.0) == []


def test_control_frames_never_create_streams():
    mux = Multiplexer(ACCEPTOR)
    for f in [wire.encode_control(wire.HEARTBEAT, "L"), wire.encode_control(wire.ACK, "L"),
              wire.encode_control(wire.RESET, "N", reason="bye"), harness_resume("L")]:
        mux.feed(f, 0.0)
    assert mux.events == [] and len(mux) == 0


def test_segmented_first_frame_creates_nothing():
    mux = Multiplexer(ACCEPTOR)
    mux.feed(wire.encode_data("E", 0, 0, 0, b"{", 0, 2), 0.0)      # obs E
    assert mux.events == [] and len(mux) == 0
    mux.feed(harness_data("E", 0, b"init"), 0.0)
    assert mux.events == [("open", "E", "legacy"), ("message", "E", b"init")]


def test_reset_then_data_creates_a_fresh_stream_seq_from_0():
    mux = legacy_acceptor("M")
    mux.send("M", b"r0")
    mux.send("M", b"r1")
    assert sent_seqs(mux) == [0, 1]
    mux.feed(wire.encode_control(wire.RESET, "M", reason="bye"), 0.0)
    assert mux.events[-1] == ("close", "M", ("bye", True))
    assert "M" not in mux.streams and mux.poll_output(0.0) == []    # no reply to a Reset
    with pytest.raises(StreamClosed):
        mux.send("M", b"late")
    mux.feed(harness_data("M", 2, b"read"), 0.0)     # obs M': a new (legacy) stream
    assert mux.events[-2:] == [("open", "M", "legacy"), ("message", "M", b"read")]
    mux.send("M", b"err")
    assert sent_seqs(mux) == [0]


def test_reset_then_data_seq0_restarts_outbound_seq():
    mux = legacy_acceptor("M")
    mux.send("M", b"r0")
    mux.poll_output(0.0)
    mux.feed(wire.encode_control(wire.RESET, "M", reason="bye"), 0.0)
    mux.feed(harness_data("M", 0, b"again"), 0.0)
    assert mux.events[-2:] == [("open", "M", "legacy"), ("message", "M", b"again")]
    mux.send("M", b"r")
    assert sent_seqs(mux) == [0]


def test_over_16mib_refused_locally_nothing_sent():
    mux = legacy_acceptor("S")
    with pytest.raises(MessageTooLarge, match="legacy .*16777216"):
        mux.send("S", b"x" * (16 * MiB + 1))
    with pytest.raises(MessageTooLarge, match="frame would be"):
        mux.send("S", b"x" * (16 * MiB - 10))            # fits, but not with the header
    assert mux.poll_output(0.0) == []
    mux.send("S", b"y" * (15 * MiB))                      # obs S/R: big single frames are fine
    (f,) = data_frames(mux.poll_output(0.0))
    assert (f.seq, f.segment_count, len(f.payload)) == (0, 1, 15 * MiB)   # never segmented
    assert not mux.streams["S"].closed


def test_segmented_frame_on_live_legacy_stream_resets_it_only():
    mux = legacy_acceptor("A", b"a")
    mux.feed(harness_data("B", 0, b"b"), 0.0)
    mux.feed(wire.encode_data("A", 1, 0, 0, b"x", 0, 2), 0.0)
    (f,) = data_frames(mux.poll_output(0.0))
    assert f.kind == wire.RESET and f.stream_id == "A" and f.reason.startswith("protocol_error: ")
    assert "A" not in mux.streams and not mux.streams["B"].closed


def test_opener_legacy_talks_like_the_0131_harness():
    mux = Multiplexer(OPENER)
    mux.open_stream("u", 0.0, LEGACY)
    mux.send("u", b"init")
    mux.send("u", b"initialized")
    out = data_frames(mux.poll_output(0.0))
    assert [(f.kind, f.next_seq) for f in out[:1]] == [(wire.RESUME, 0)]
    assert [(f.seq, f.ack, f.ack_bits, f.segment_count) for f in out[1:]] == [(0, 0, 0, 1), (1, 0, 0, 1)]
    mux.feed(wire.encode_data("u", 0, 0, 0, b"reply"), 0.0)
    assert mux.events == [("message", "u", b"reply")]
    assert mux.next_deadline() is None


def test_reliable_opener_falls_back_to_legacy_against_0131_executor():
    """Our harness proposes reliable mode; the 0.131.0 executor ignores the Resume and answers
    Data seq 0 -> the stream becomes legacy for good: no acks, no retransmissions after."""
    mux = Multiplexer(OPENER)
    mux.open_stream("u", 0.0, RELIABLE)
    mux.send("u", b"init")
    big = b"z" * (100 * 1024)
    mux.send("u", big)                                  # > 60 KiB: held while pending
    out = data_frames(mux.poll_output(0.0))
    assert [(f.kind, f.next_seq, f.seq) for f in out] == [(wire.RESUME, 1, 0), (wire.DATA, 0, 1)]
    assert out[1].segment_count == 1
    mux.feed(wire.encode_data("u", 0, 0, 0, b"init-reply"), 0.001)   # 0.131.0 reply: seq 0
    eng = mux.streams["u"]
    assert eng.mode == LEGACY
    out = data_frames(mux.poll_output(0.001))
    assert [(f.kind, f.segment_count, len(f.payload), f.ack, f.ack_bits) for f in out] == \
        [(wire.DATA, 1, len(big), 0, 0)]                 # sent whole, never segmented
    assert mux.next_deadline() is None
    mux.tick(100.0)
    assert mux.poll_output(100.0) == []                  # never retransmits
    with pytest.raises(MessageTooLarge):
        mux.send("u", b"q" * (17 * MiB))
