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


@pytest.mark.parametrize("opcode", [1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_frame_parts_headers_equal_header_on_both_sides_of_the_cache(opcode: int, masked: bool) -> None:
    """Headers of small payloads come from a per-(opcode, masking) table filled on first use;
    every size, cached or not, a first or a repeated use, gives what ``header()`` builds."""
    from execrelay._wsframe import header
    from execrelay.transport import _frames

    sizes = [0, 1, 125, 126, 127, 2000, _frames._TABLE_N - 1, _frames._TABLE_N, 65535, 65536, 70_000]
    for _ in range(2):
        msgs = [b"x" * n for n in sizes]
        parts, total = frame_parts(msgs, opcode, masked)
        assert total == sum(sizes)
        assert parts[0::2] == [header(opcode, n, masked) for n in sizes]
        assert parts[1::2] == msgs
    text_parts, _ = frame_parts(["é"], opcode, masked)  # str payloads are encoded first
    assert text_parts == [header(opcode, 2, masked), "é".encode()]
