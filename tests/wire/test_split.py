"""wire.split: a large Data frame as head + payload, byte-identical to encode_data."""
from __future__ import annotations

from types import ModuleType

import pytest

from execrelay.transport._frames import frame_parts
from execrelay.wire.split import SplitFrame, data_head, encode_data_split


@pytest.mark.parametrize("sid", ["s", "流-0001", "x" * 128])
@pytest.mark.parametrize("seq,ack,ack_bits", [(0, 0, 0), (1, 0, 0), (127, 128, 0), (2**32 - 1, 300, 2**32 - 1)])
@pytest.mark.parametrize("n", [1, 127, 128, 16383, 16384, 300_000, 2_100_000])
def test_head_plus_payload_is_encode_data(codec: ModuleType, sid: str, seq: int, ack: int,
                                           ack_bits: int, n: int) -> None:
    payload = bytes(range(256)) * (n // 256) + b"z" * (n % 256)
    for index, count in ((0, 1), (1, 3), (200, 1000)):
        whole = codec.encode_data(sid, seq, ack, ack_bits, payload, index, count)
        head = data_head(sid, seq, ack, ack_bits, n, index, count)
        assert head + payload == whole
        frame = encode_data_split(codec.encode_data, sid, seq, ack, ack_bits, payload, index, count)
        assert len(frame) == len(whole) and bytes(frame) == whole
        assert frame.payload is payload  # not copied


def test_split_validates_like_encode_data(codec: ModuleType) -> None:
    with pytest.raises(codec.FrameError):
        encode_data_split(codec.encode_data, "", 1, 0, 0, b"x" * 10)
    with pytest.raises(codec.FrameError):
        encode_data_split(codec.encode_data, "s", 1, 0, 0, b"x" * 10, 3, 2)


@pytest.mark.parametrize("masked", [False, True])
def test_frame_parts_writes_a_split_frame_after_one_header(codec: ModuleType, masked: bool) -> None:
    payload = b"p" * 70_000
    split = encode_data_split(codec.encode_data, "s-1", 4, 0, 0, payload)
    whole = codec.encode_data("s-1", 4, 0, 0, payload)
    parts, total = frame_parts([b"ab", split], 2, masked)
    ref, ref_total = frame_parts([b"ab", whole], 2, masked)
    assert total == ref_total and b"".join(parts) == b"".join(ref)
    assert parts[-1] is payload
    assert isinstance(split, SplitFrame)
