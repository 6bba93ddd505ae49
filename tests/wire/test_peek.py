"""wire.peek: the body-kind sniffer, Reset reason clipping, the frame limit."""
from __future__ import annotations

import pytest

from execrelay.wire import (ACK, DATA, HANDSHAKE, HEARTBEAT, MAX_REASON_BYTES, RESET, RESUME,
                            Frame, decode, encode, encode_control, encode_data)
from execrelay.wire.peek import LEGACY_MAX_FRAME_BYTES, body_kind, clip_reason
from execrelay.wire import peek


@pytest.mark.parametrize("ack,ack_bits", [(0, 0), (1, 0), (300, 0), (0, 7), (2**32 - 1, 2**32 - 1)])
def test_body_kind_on_every_kind(ack: int, ack_bits: int) -> None:
    sid = "s" * 100
    assert body_kind(encode_data(sid, 5, ack, ack_bits, b"{}")) == DATA
    assert body_kind(encode_control(ACK, sid, ack, ack_bits)) == ACK
    assert body_kind(encode_control(RESUME, sid, ack, ack_bits, next_seq=3)) == RESUME
    assert body_kind(encode_control(RESET, sid, ack, ack_bits, reason="r")) == RESET
    assert body_kind(encode_control(HEARTBEAT, sid, ack, ack_bits)) == HEARTBEAT
    assert body_kind(encode(Frame(HANDSHAKE, sid, ack, ack_bits, payload=b"n" * 3600))) == HANDSHAKE


@pytest.mark.parametrize("sid", ["é", "流-0001", "s-\U0001f600", "ü" * 63, "x" * 127])
def test_body_kind_counts_stream_id_bytes_not_characters(sid: str) -> None:
    """The id's length prefix is in bytes; a non-ASCII id has fewer characters than bytes."""
    for ack in (0, 9):
        assert body_kind(encode_data(sid, 1, ack, 0, b"{}")) == DATA
        assert body_kind(encode_control(RESET, sid, ack, 0, reason="r")) == RESET
        assert body_kind(encode_control(HEARTBEAT, sid, ack, 0)) == HEARTBEAT


def test_body_kind_unsure_means_minus_one() -> None:
    frame = encode_data("s", 0, 0, 0, b"{}")
    assert body_kind(frame[:5]) == -1              # truncated
    assert body_kind(b"\x08\x02" + frame[2:]) == -1  # version 2
    assert body_kind(frame[2:] + b"\x08\x01") == -1  # other field order
    assert body_kind(b"\x08\x01\x12\x01s\x5a\x00") == -1  # unknown body field 11
    assert body_kind(b"\x08\x01\x12\x80\x01" + b"s" * 128 + b"\x4a\x00") == -1  # 2-byte length
    assert body_kind(b"\x08\x01\x12\x01s\x18\x80") == -1  # ack varint runs off the end
    assert body_kind(b"\x08\x01\x12\x01s\x28\x00") == -1  # field 5 as a varint
    assert body_kind(b"") == -1


def test_body_kind_agrees_with_the_constants() -> None:
    """peek is a leaf; its field numbers must be the codec's."""
    assert (peek._FIRST_BODY, peek._LAST_BODY, peek._DATA) == (DATA, HANDSHAKE, DATA)
    assert peek.MAX_REASON_BYTES == MAX_REASON_BYTES


@pytest.mark.parametrize("reason,expected", [
    ("queue_full", "queue_full"),
    ("", "reset"),
    ("r" * 256, "r" * 256),
    ("r" * 257, "r" * 256),
    ("é" * 200, "é" * 128),          # 400 bytes -> 256 bytes, whole characters
    ("a" + "é" * 200, "a" + "é" * 127),  # the 256th byte would split a character: dropped
])
def test_clip_reason(reason: str, expected: str) -> None:
    clipped = clip_reason(reason)
    assert clipped == expected
    assert 1 <= len(clipped.encode()) <= MAX_REASON_BYTES
    # what clip_reason returns is always a valid Reset reason
    assert decode(encode_control(RESET, "s", reason=clipped)).reason == clipped


def test_legacy_frame_limit_is_16_mib() -> None:
    assert LEGACY_MAX_FRAME_BYTES == 16 * 1024 * 1024
