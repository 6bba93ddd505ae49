"""Every malformed segment / ack pattern of P3 (and every bad frame naming a stream) resets
that stream, and only that stream, with ``protocol_error: ...``."""
from __future__ import annotations

import pytest

from execrelay import wire
from execrelay.stream import ACCEPTOR, Multiplexer
from execrelay.wire import relay_pb2 as pb

SEG = 60 * 1024


def d(sid, seq, payload=b"p", idx=0, count=1, ack=0, bits=0):
    return wire.encode_data(sid, seq, ack, bits, payload, idx, count)


def raw(sid, **data):
    """A frame the codec refuses to encode (P1-invalid), built with protobuf directly."""
    m = pb.RelayMessageFrame(version=1, stream_id=sid)
    m.data.SetInParent()
    for k, v in data.items():
        setattr(m.data, k, v)
    return m.SerializeToString()


def opened():
    mux = Multiplexer(ACCEPTOR)
    for sid in ("A", "B"):
        mux.feed(wire.encode_control(wire.RESUME, sid, next_seq=1), 0.0)
    mux.poll_output(0.0)
    mux.events.clear()
    return mux


PATTERNS = {
    "seq0": [d("A", 0)],
    "starts_before_seq1": [d("A", 2, idx=5, count=7)],
    "index_not_first": [d("A", 1), d("A", 2, idx=1, count=2)],
    "count_changes": [d("A", 1, idx=0, count=3), d("A", 2, idx=1, count=4)],
    "overlap_restart": [d("A", 1, idx=0, count=3), d("A", 2, idx=0, count=2)],
    "index_gap": [d("A", 1, idx=0, count=3), d("A", 2, idx=2, count=3)],
    "too_many_segments": [d("A", 1, idx=0, count=1094)],
    "segment_too_big": [d("A", 1, b"x" * (SEG + 1))],
    "out_of_order_bad_count": [d("A", 3, idx=1, count=2), d("A", 1, idx=0, count=2),
                               d("A", 2, idx=1, count=2)],
    "ack_unsent": [d("A", 1, ack=5)],
    "ack_bits_unsent": [d("A", 1, bits=0b10)],
    "index_ge_count": [raw("A", seq=1, segment_index=2, segment_count=2, payload=b"x")],
    "count_zero": [raw("A", seq=1, segment_index=0, segment_count=0, payload=b"x")],
    "empty_payload": [raw("A", seq=1, segment_index=0, segment_count=1, payload=b"")],
}


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_resets_only_that_stream(name):
    mux = opened()
    mux.feed(d("B", 1, b"b1"), 0.0)
    for f in PATTERNS[name]:
        mux.feed(f, 0.001)
    out = [wire.decode(f) for f in mux.poll_output(0.001)]
    resets = [f for f in out if f.kind == wire.RESET]
    assert [f.stream_id for f in resets] == ["A"]
    assert resets[0].reason.startswith("protocol_error: ")
    assert 1 <= len(resets[0].reason.encode()) <= 256
    closes = [e for e in mux.events if e[0] == "close"]
    assert closes == [("close", "A", (resets[0].reason, False))]
    assert "A" not in mux.streams
    # B is untouched and keeps working both ways.
    mux.feed(d("B", 2, b"b2"), 0.002)
    assert [e[2] for e in mux.events if e[0] == "message" and e[1] == "B"] == [b"b1", b"b2"]
    mux.send("B", b"reply")
    out = [wire.decode(f) for f in mux.poll_output(0.002)]
    assert [(f.stream_id, f.kind, f.payload, f.ack) for f in out] == [("B", wire.DATA, b"reply", 2)]
    # A stays dead: its late frames get the Reset again, never a new stream.
    mux.feed(d("A", 1, b"again"), 0.003)
    again = [wire.decode(f) for f in mux.poll_output(0.003)]
    assert [(f.stream_id, f.kind) for f in again] == [("A", wire.RESET)]
    assert "A" not in mux.streams


def test_undecodable_and_anonymous_bad_frames_are_counted_only():
    mux = opened()
    for junk in [b"\xff\xff\xff", b"", pb.RelayMessageFrame(version=1).SerializeToString(),
                 raw(" A ", seq=1, segment_count=1, payload=b"x")]:
        mux.feed(junk, 0.0)
    assert mux.bad_frames == 4
    assert not mux.streams["A"].closed and not mux.streams["B"].closed
    assert mux.poll_output(0.0) == []


def test_wrong_version_naming_a_stream_resets_it_only():
    mux = opened()
    mux.feed(pb.RelayMessageFrame(version=2, stream_id="A").SerializeToString(), 0.0)
    assert mux.bad_frames == 1
    (f,) = [wire.decode(b) for b in mux.poll_output(0.0)]
    assert (f.kind, f.stream_id) == (wire.RESET, "A") and f.reason.startswith("protocol_error: ")
    assert "A" not in mux.streams and not mux.streams["B"].closed


def test_bad_frame_for_unknown_stream_creates_nothing():
    mux = opened()
    mux.feed(raw("Z", seq=1, segment_index=0, segment_count=0, payload=b"x"), 0.0)
    assert mux.bad_frames == 1 and "Z" not in mux.streams and mux.poll_output(0.0) == []
