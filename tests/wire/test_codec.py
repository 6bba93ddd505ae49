"""Frame codec: both twins against each other and against google.protobuf."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from execrelay.wire import relay_pb2 as pb

U32 = st.integers(0, 2**32 - 1)
# Valid stream ids (docs/relay-protocol.md §Frames): non-empty, no surrounding whitespace,
# <= 128 UTF-8 bytes
STREAM_IDS = st.text(min_size=1, max_size=40).map(str.strip).filter(
    lambda s: s and len(s.encode()) <= 128)
REASONS = st.text(min_size=1, max_size=60).filter(lambda s: 1 <= len(s.encode()) <= 256)


@st.composite
def valid_messages(draw) -> pb.RelayMessageFrame:
    """A protobuf frame valid by docs/relay-protocol.md §Frames, built with the reference classes."""
    m = pb.RelayMessageFrame(version=1, stream_id=draw(STREAM_IDS), ack=draw(U32), ack_bits=draw(U32))
    body = draw(st.sampled_from(["data", "ack_frame", "resume", "reset", "heartbeat", "handshake"]))
    if body == "data":
        count = draw(st.integers(1, 2**32 - 1))
        m.data.seq = draw(U32)
        m.data.segment_count = count
        m.data.segment_index = draw(st.integers(0, min(count - 1, 2**32 - 1)))
        m.data.payload = draw(st.binary(min_size=1, max_size=300))
    elif body == "resume":
        m.resume.next_seq = draw(U32)
    elif body == "reset":
        m.reset.reason = draw(REASONS)
    elif body == "handshake":
        m.handshake.payload = draw(st.binary(min_size=1, max_size=300))
    else:
        getattr(m, body).SetInParent()
    return m


def fields_of(m: pb.RelayMessageFrame) -> tuple:
    which = m.WhichOneof("body")
    kind = {"data": 5, "ack_frame": 6, "resume": 7, "reset": 8, "heartbeat": 9,
            "handshake": 10}[which]
    d = m.data if which == "data" else None
    payload = d.payload if d else m.handshake.payload if which == "handshake" else b""
    return (kind, m.version, m.stream_id, m.ack, m.ack_bits,
            d.seq if d else 0, d.segment_index if d else 0, d.segment_count if d else 0,
            payload, m.resume.next_seq if which == "resume" else 0,
            m.reset.reason if which == "reset" else "")


def frame_fields(f) -> tuple:
    return (f.kind, f.version, f.stream_id, f.ack, f.ack_bits, f.seq, f.segment_index,
            f.segment_count, f.payload, f.next_seq, f.reason)


@given(valid_messages())
def test_decode_matches_protobuf(codec, m):
    wire = m.SerializeToString(deterministic=True)
    assert frame_fields(codec.decode(wire)) == fields_of(m)
    assert codec.peek_stream_id(wire) == m.stream_id


@given(valid_messages())
def test_encode_is_byte_identical_to_protobuf(codec, m):
    canonical = m.SerializeToString(deterministic=True)
    frame = codec.decode(canonical)
    assert codec.encode(frame) == canonical
    back = pb.RelayMessageFrame()
    back.ParseFromString(codec.encode(frame))
    assert back == m
    if frame.kind == codec.DATA:
        assert codec.encode_data(frame.stream_id, frame.seq, frame.ack, frame.ack_bits, frame.payload,
                                 frame.segment_index, frame.segment_count) == canonical
    elif frame.kind == codec.HANDSHAKE:
        assert codec.encode(codec.Frame(codec.HANDSHAKE, frame.stream_id, frame.ack,
                                        frame.ack_bits, payload=frame.payload)) == canonical
    else:
        assert codec.encode_control(frame.kind, frame.stream_id, frame.ack, frame.ack_bits,
                                    frame.next_seq, frame.reason) == canonical


@given(valid_messages())
def test_twins_agree_on_frame_objects(compiled, pure, m):
    wire = m.SerializeToString(deterministic=True)
    a, b = compiled.decode(wire), pure.decode(wire)
    assert frame_fields(a) == frame_fields(b)
    assert a == b and b == a
    assert repr(a) == repr(b)


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_trailing_unknown_and_reordered_fields(codec, junk_a, junk_b):
    """Fields in any order, unknown fields skipped: build frames field by field."""
    sid = b"s1"
    body = b"\x2a\x05\x18\x01\x22\x01x"
    unknown = b"\xa2\x01" + bytes([len(junk_a)]) + junk_a  # field 20, LEN
    for wire in (b"\x08\x01\x12\x02" + sid + body, body + b"\x12\x02" + sid + b"\x08\x01",
                 unknown + b"\x08\x01" + body + unknown + b"\x12\x02" + sid):
        f = codec.decode(wire)
        assert (f.kind, f.stream_id, f.payload, f.segment_count) == (5, "s1", b"x", 1)


def test_observed_0131_bytes(codec):
    """Byte sequences captured from the real 0.131.0 binary (docs/relay-protocol.md §Frames)."""
    uuid = "0f0e0d0c-0b0a-4908-8706-050403020100"
    resume = bytes.fromhex("0801") + b"\x12\x24" + uuid.encode() + bytes.fromhex("3a00")
    f = codec.decode(resume)
    assert (f.kind, f.stream_id, f.next_seq) == (codec.RESUME, uuid, 0)
    assert codec.encode_control(codec.RESUME, uuid, next_seq=0) == resume
    payload = b'{"id":1,"result":{"sessionId":"00000000-0000-0000-0000-000000000000"}}'
    reply = bytes.fromhex("0801120141") + b"\x2a" + bytes([len(payload) + 4]) + b"\x18\x01\x22" + bytes([len(payload)]) + payload
    assert codec.encode_data("A", 0, 0, 0, payload) == reply
    assert codec.encode(codec.Frame.heartbeat("A")).endswith(b"\x4a\x00")
    assert codec.encode(codec.Frame.ack_frame("A", 0, 0)).endswith(b"\x32\x00")


def test_observed_0171_handshake_bytes(codec):
    """The start of a Handshake frame captured from the real 0.171.0 harness (tag 0x52,
    field 10, a RelayHandshake whose field 1 holds the Noise message)."""
    sid = "919c19d4-1b27-4344-890a-cf1839d0a95b"
    message = bytes(range(256)) * 13 + bytes(253)  # 3581 bytes, as captured
    wire = (bytes.fromhex("0801") + b"\x12\x24" + sid.encode()
            + bytes.fromhex("52801c0afd1b") + message)
    f = codec.decode(wire)
    assert (f.kind, f.stream_id, f.payload) == (codec.HANDSHAKE, sid, message)
    assert codec.encode(codec.Frame.handshake(sid, message)) == wire
    assert "payload=3581B" in repr(f)


def test_oneof_last_one_wins_and_same_body_merges(codec):
    # Data followed by an empty resume in one message is a Resume (observed, case UNK)
    wire = b"\x08\x01\x12\x01A\x2a\x05\x18\x01\x22\x01x\x3a\x00"
    assert codec.decode(wire).kind == codec.RESUME
    # the same body twice merges: seq from the first, payload from the second
    wire = b"\x08\x01\x12\x01A\x2a\x02\x08\x05\x2a\x05\x18\x01\x22\x01y"
    f = codec.decode(wire)
    assert (f.kind, f.seq, f.payload) == (codec.DATA, 5, b"y")
    # switching away and back discards the first body entirely
    wire = b"\x08\x01\x12\x01A\x2a\x02\x08\x05\x4a\x00\x2a\x05\x18\x01\x22\x01y"
    assert codec.decode(wire).seq == 0
    # last scalar wins, including the stream id
    wire = b"\x08\x01\x12\x01A\x08\x01\x12\x01B\x4a\x00"
    assert codec.decode(wire).stream_id == "B"
    assert codec.peek_stream_id(wire) == "B"


BAD = [
    (b"", "missing stream_id", None),
    (b"\x08", "truncated varint", None),
    (b"\x08\x01\x12\x05ab", "runs past the end", None),
    (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes", None),
    (b"\x08\x02\x12\x01a\x4a\x00", "version 2", "a"),
    (b"\x12\x01a\x4a\x00", "version 0", "a"),
    (b"\x08\x01\x12\x01a", "missing body", "a"),
    (b"\x08\x01\x12\x00\x4a\x00", "missing stream_id", None),
    (b"\x08\x01\x12\x03 a \x4a\x00", "whitespace", None),
    (b"\x08\x01\x12\x81\x01" + b"a" * 129 + b"\x4a\x00", "longer than 128", None),
    (b"\x08\x01\x12\x02\xff\xfe\x4a\x00", "UTF-8", None),
    (b"\x08\x01\x12\x01a\x2a\x01\x22", "truncated varint", None),
    (b"\x08\x01\x12\x01a\x2a\x03\x22\x05x", "runs past the end", None),
    (b"\x08\x01\x12\x01a\x2a\x03\x22\x01x", "segment_count 0", "a"),
    (b"\x08\x01\x12\x01a\x2a\x07\x10\x01\x18\x01\x22\x01x", "segment_index 1 >= segment_count 1", "a"),
    (b"\x08\x01\x12\x01a\x2a\x02\x18\x01", "empty payload", "a"),
    (b"\x08\x01\x12\x01a\x42\x00", "reason must be 1..256", "a"),
    (b"\x08\x01\x12\x01a\x52\x00", "handshake frame has an empty payload", "a"),
    (b"\x08\x01\x12\x01a\x52\x02\x08\x01", "wrong wire type 0 for handshake field 1", "a"),
    (b"\x08\x01\x12\x01a\x50\x01", "wrong wire type 0 for frame field 10", "a"),
    (b"\x08\x01\x12\x01a\x52\x03\x0a\x05x", "runs past the end", None),
    (b"\x08\x01\x12\x01a\x42\x03\x0a\x01\xff", "UTF-8", None),
    (b"\x0d\x01\x00\x00\x00\x08\x01\x12\x01a\x4a\x00", "wrong wire type 5 for frame field 1", "a"),
    (b"\x08\x01\x12\x01a\x2a\x05\x1a\x01x\x22\x00", "wrong wire type 2 for data field 3", "a"),
    (b"\x08\x01\x12\x01a\x0e", "wire type", None),
    (b"\x08\x01\x12\x01a\x00\x01", "field", None),
    (b"\x08\x01\x12\x01a\xa3\x01\x08\x01", "group", None),
    (b"\x08\x01\x12\x01a\xa4\x01", "group", None),
]


@pytest.mark.parametrize("wire,what,sid", BAD)
def test_bad_input_is_one_clear_error(codec, wire, what, sid):
    with pytest.raises(codec.FrameError) as info:
        codec.decode(wire)
    message = str(info.value)
    if codec.__name__.endswith("_c") or "protobuf" not in message:
        # the pure twin reports protobuf's own message for wire corruption
        assert what.lower() in message.lower() or "invalid relay message frame" in message
    assert info.value.stream_id == sid
    assert isinstance(info.value, ValueError)


def test_compiled_error_messages_name_the_offset(compiled):
    with pytest.raises(compiled.FrameError) as info:
        compiled.decode(b"\x08\x01\x12\x01a\x2a\x05\x18\x01\x22\x10x")
    assert info.value.offset == 9 and "offset 9" in str(info.value)


def test_peek_does_not_judge_the_body(codec):
    wire = b"\x08\x07\x12\x03abc\x2a\x00"  # wrong version, empty data: decode refuses
    with pytest.raises(codec.FrameError):
        codec.decode(wire)
    assert codec.peek_stream_id(wire) == "abc"
    with pytest.raises(codec.FrameError):
        codec.peek_stream_id(b"\x08\x01\x4a\x00")
    with pytest.raises(codec.FrameError):
        codec.peek_stream_id(b"\x12\x05ab")


def test_encode_refuses_invalid_frames(codec):
    F = codec.Frame
    for frame in (F.data("", 1, b"x"), F.data(" a", 1, b"x"), F.data("a", 1, b""),
                  F.data("a", 1, b"x", segment_index=2, segment_count=2), F.reset("a", ""),
                  F.reset("a", "x" * 257), F.handshake("a", b""), F(3, "a"), F(11, "a"), F(codec.DATA, "a", payload=b"x", version=2)):
        with pytest.raises(codec.FrameError):
            codec.encode(frame)
    with pytest.raises(codec.FrameError):
        codec.encode_control(codec.DATA, "a")
    with pytest.raises(OverflowError):
        F.data("a", 2**32, b"x")
    with pytest.raises(OverflowError):
        F.data("a", -1, b"x")


def test_payload_types(codec):
    for payload in (b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4]):
        wire = codec.encode_data("s", 1, 0, 0, payload)
        assert codec.decode(wire).payload == b"abc"
        assert codec.decode(bytearray(wire)).payload == b"abc"
        assert codec.decode(memoryview(wire)).payload == b"abc"


def test_large_frame_roundtrip(codec):
    payload = bytes(range(256)) * 4096 * 16  # 16 MiB
    wire = codec.encode_data("big", 7, 3, 0b100, payload)
    f = codec.decode(wire)
    assert f.payload == payload and f.seq == 7 and f.ack_bits == 0b100


def test_stream_id_cache_never_confuses_ids(compiled):
    """Colliding cache slots and ids that differ in one byte still decode to their own id."""
    ids = [f"stream-{i}" for i in range(5000)]
    for sid in ids + ids[::-1]:
        assert compiled.decode(compiled.encode_data(sid, 1, 0, 0, b"x")).stream_id == sid
        assert compiled.peek_stream_id(compiled.encode_data(sid, 1, 0, 0, b"x")) == sid


@pytest.mark.parametrize("depth,ok", [(100, True), (101, False)])
def test_unknown_group_nesting_limit_matches_upb(codec, depth, ok):
    wire = b"\x08\x01\x12\x01a\x4a\x00" + b"\xa3\x01" * depth + b"\xa4\x01" * depth
    ref = pb.RelayMessageFrame()
    try:
        ref.ParseFromString(wire)
        ref_ok = True
    except Exception:  # noqa: BLE001 - whatever protobuf raises, it is a refusal
        ref_ok = False
    assert ref_ok is ok
    if ok:
        assert codec.decode(wire).kind == codec.HEARTBEAT
    else:
        with pytest.raises(codec.FrameError):
            codec.decode(wire)


def test_frame_module_runs_without_cython(monkeypatch):
    """The pure build needs no Cython at run time: _frame_py's Cython class decorators
    (freelist, cclass) fall back to no-ops when ``import cython`` fails."""
    import importlib.util
    import sys

    from execrelay.wire import _frame_py

    monkeypatch.setitem(sys.modules, "cython", None)  # makes ``import cython`` raise ImportError
    spec = importlib.util.spec_from_file_location("_frame_without_cython", _frame_py.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.cython.__class__.__name__ == "SimpleNamespace"
    frame = module.Frame.data("s", 3, b"x", ack=2)
    assert (frame.kind, frame.seq, frame.payload, frame.segment_count) == (module.DATA, 3, b"x", 1)
    with pytest.raises(module.FrameError, match="unsupported relay frame version 2"):
        module.check_version(2, -1, "s")
