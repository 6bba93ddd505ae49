"""Pure-Python twin of ``execrelay.wire._codec_c``: the relay frame codec.

Built on the generated protobuf classes (``relay_pb2``), so parsing and serialization are the
reference behaviour by construction; this module only adds the frame rules of
docs/relay-protocol.md §Frames (shared with the compiled codec: ``_frame_py``) and the
checks protobuf itself does not make (a known field sent with the wrong wire type is an error
here, where protobuf would silently keep it as an unknown field).
"""
from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from . import relay_pb2

#: The generated bindings build their classes at import time: nothing for a type checker to see.
pb: Any = relay_pb2
from ._frame_py import (ACK, DATA, HANDSHAKE, HEARTBEAT, KIND_NAMES, MAX_REASON_BYTES, MAX_STREAM_ID_BYTES,
                        RESET, RESUME, VERSION, Frame, FrameError, check_body, check_stream_id,
                        check_version)

__all__ = ["ACK", "DATA", "HANDSHAKE", "HEARTBEAT", "MAX_REASON_BYTES", "MAX_STREAM_ID_BYTES", "RESET",
           "RESUME", "VERSION", "Frame", "FrameError", "decode", "encode", "encode_control",
           "encode_data", "peek_stream_id"]

_BODY_KIND = {name: kind for kind, name in KIND_NAMES.items()}
#: Field numbers the schema knows, per message: a wire-type mismatch on these is an error.
_KNOWN_TOP = frozenset(range(1, 11))
_KNOWN_BODY = {DATA: frozenset((1, 2, 3, 4)), RESUME: frozenset((1,)), RESET: frozenset((1,)),
               ACK: frozenset(), HEARTBEAT: frozenset(), HANDSHAKE: frozenset((1,))}


def _utf8_len(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise FrameError(f"cannot encode relay frame: {exc}") from None


def _check_stream_id(stream_id: str, offset: int = -1) -> None:
    check_stream_id(stream_id, _utf8_len(stream_id), offset)


def _check_frame(f: Frame, offset: int = -1) -> None:
    """The frame rules (docs/relay-protocol.md §Frames), on decode and on encode."""
    _check_stream_id(f.stream_id, offset)
    check_version(f.version, offset, f.stream_id)
    check_body(f.kind, f.segment_index, f.segment_count, len(f.payload),
               _utf8_len(f.reason) if f.kind == RESET else 0, offset, f.stream_id)


def _wire_type_error(fields: UnknownFieldSet, known: frozenset, where: str, sid: str | None) -> None:
    for field in fields:
        if field.field_number in known:
            raise FrameError(f"wrong wire type {field.wire_type} for {where} field {field.field_number}",
                             -1, sid)


def decode(buf: bytes | bytearray | memoryview) -> Frame:
    """Parse and validate one serialized ``RelayMessageFrame``.

    Checks run in the compiled twin's order (stream id, wire types, version, body) so both
    report the same failure for the same bytes.
    """
    msg = pb.RelayMessageFrame()
    try:
        msg.ParseFromString(bytes(buf))
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise FrameError(f"invalid relay message frame: {exc}") from None
    _check_stream_id(msg.stream_id)
    sid = msg.stream_id
    _wire_type_error(UnknownFieldSet(msg), _KNOWN_TOP, "frame", sid)
    which = msg.WhichOneof("body")
    if which is None:
        kind = 0
    else:
        kind = _BODY_KIND[which]
        body = getattr(msg, which)
        _wire_type_error(UnknownFieldSet(body), _KNOWN_BODY[kind], which, sid)
    if kind == DATA:
        f = Frame(DATA, sid, msg.ack, msg.ack_bits, body.seq, body.segment_index,
                  body.segment_count, body.payload, version=msg.version)
    elif kind == HANDSHAKE:
        f = Frame(HANDSHAKE, sid, msg.ack, msg.ack_bits, payload=body.payload, version=msg.version)
    else:
        f = Frame(kind, sid, msg.ack, msg.ack_bits,
                  next_seq=body.next_seq if kind == RESUME else 0,
                  reason=body.reason if kind == RESET else "", version=msg.version)
    _check_frame(f)
    return f


def _message(f: Frame) -> Any:  # a relay_pb2.RelayMessageFrame
    msg = pb.RelayMessageFrame(version=f.version, stream_id=f.stream_id, ack=f.ack, ack_bits=f.ack_bits)
    kind = f.kind
    if kind == DATA:
        msg.data.seq = f.seq
        msg.data.segment_index = f.segment_index
        msg.data.segment_count = f.segment_count
        msg.data.payload = f.payload
    elif kind == RESUME:
        msg.resume.next_seq = f.next_seq
    elif kind == RESET:
        msg.reset.reason = f.reason
    elif kind == ACK:
        msg.ack_frame.SetInParent()
    elif kind == HEARTBEAT:
        msg.heartbeat.SetInParent()
    elif kind == HANDSHAKE:
        msg.handshake.payload = f.payload
    return msg


def _serialize(f: Frame) -> bytes:
    _check_frame(f)
    try:
        return _message(f).SerializeToString(deterministic=True)
    except ValueError as exc:  # out-of-range integers
        raise FrameError(f"cannot encode relay frame: {exc}") from None


def encode(frame: Frame) -> bytes:
    """Serialize a frame; the output is byte-identical to protobuf's deterministic form."""
    return _serialize(frame)


def encode_data(stream_id: str, seq: int, ack: int, ack_bits: int,
                payload: bytes | bytearray | memoryview,
                segment_index: int = 0, segment_count: int = 1) -> bytes:
    """Serialize a Data frame without building a Frame first (the hot path)."""
    return _serialize(Frame(DATA, stream_id, ack, ack_bits, seq, segment_index, segment_count, payload))


def encode_control(kind: int, stream_id: str, ack: int = 0, ack_bits: int = 0, next_seq: int = 0,
                   reason: str = "") -> bytes:
    """Serialize an Ack, Resume, Reset or Heartbeat frame."""
    if kind not in (ACK, RESUME, RESET, HEARTBEAT):
        raise FrameError(f"encode_control: not a control frame kind: {kind}")
    return _serialize(Frame(kind, stream_id, ack, ack_bits, next_seq=next_seq, reason=reason))


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a varint of at most 10 bytes (the spare bits of a 10th byte are ignored, as upb
    ignores them); return ``(value, position after it)``."""
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise FrameError(f"truncated varint at offset {start}", start)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise FrameError(f"varint longer than 10 bytes at offset {start}", start)


def _skip(data: bytes, pos: int, end: int, key: int, at: int, depth: int) -> int:
    """Skip the value of an unknown field whose key (already read) started at ``at``."""
    wt = key & 7
    if wt == 0:
        return _varint(data, pos, end)[1]
    if wt == 2:
        n, pos = _varint(data, pos, end)
        if n > end - pos:
            raise FrameError(f"length {n} of field at offset {at} runs past the end", at)
        return pos + n
    if wt == 1 or wt == 5:
        n = 8 if wt == 1 else 4
        if n > end - pos:
            raise FrameError(f"fixed-width field at offset {at} runs past the end", at)
        return pos + n
    if wt == 3:
        if depth >= 100:
            raise FrameError(f"groups nested too deeply at offset {at}", at)
        while True:
            if pos >= end:
                raise FrameError(f"unterminated group at offset {at}", at)
            inner_at = pos
            inner, pos = _varint(data, pos, end)
            if inner > 0xFFFFFFFF:  # field number 0 is tolerated inside groups, as upb does
                raise FrameError(f"invalid field key at offset {inner_at}", inner_at)
            if inner & 7 == 4:
                if inner >> 3 != key >> 3:
                    raise FrameError(f"mismatched end of group at offset {inner_at}", inner_at)
                return pos
            pos = _skip(data, pos, end, inner, inner_at, depth + 1)
    if wt == 4:
        raise FrameError(f"unexpected end of group at offset {at}", at)
    raise FrameError(f"invalid wire type {wt} at offset {at}", at)


def peek_stream_id(buf: bytes | bytearray | memoryview) -> str:
    """Return the frame's stream_id for routing, scanning only the top-level fields.

    Bodies are skipped, not parsed, so a router never pays for (or judges) the payload; the
    last ``stream_id`` field wins, as in protobuf.  Same rules and errors as the compiled twin.
    """
    data = bytes(buf)
    end = len(data)
    pos = 0
    sid: bytes | None = None
    sid_at = -1
    while pos < end:
        at = pos
        key, pos = _varint(data, pos, end)
        if key > 0xFFFFFFFF or key >> 3 == 0:
            raise FrameError(f"invalid field key at offset {at}", at)
        if key >> 3 == 2:
            if key & 7 != 2:
                raise FrameError(f"wrong wire type {key & 7} for frame field 2 at offset {at}", at)
            n, pos = _varint(data, pos, end)
            if n > end - pos:
                raise FrameError(f"length {n} of stream_id at offset {at} runs past the end", at)
            sid, sid_at = data[pos:pos + n], at
            pos += n
        else:
            pos = _skip(data, pos, end, key, at, 0)
    if sid is None:
        raise FrameError("relay frame is missing stream_id", -1)
    try:
        text = sid.decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(f"stream_id at offset {sid_at} is not valid UTF-8", sid_at) from None
    _check_stream_id(text, sid_at)
    return text
