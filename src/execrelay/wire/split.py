"""A large Data frame as two buffers: the encoded head and the payload, never joined.

A relay frame as every known encoder lays it out ends with the Data payload (field order
version, stream_id, ack, ack_bits, then the Data body whose last field is ``payload``; see
:mod:`.peek`), so the frame is ``head + payload``.  Copying an 11 MB payload into one frame
costs milliseconds of the event loop, during which no other stream is served; a
:class:`SplitFrame` lets the transport hand both buffers to ``writelines`` (one ``writev``,
no copy).  The bytes on the wire are exactly ``encode_data``'s (tests/wire/test_split.py
checks both codecs).  See docs/architecture.md §Large transfers.

Only worth it for large payloads (:data:`SPLIT_MIN_BYTES`): the head is built in Python.
"""
from __future__ import annotations

from typing import Union

#: Payloads from this size on are queued as a :class:`SplitFrame` by the stream layer.
SPLIT_MIN_BYTES: int = 256 * 1024

Buffer = Union[bytes, bytearray, memoryview]


class SplitFrame:
    """One relay frame as ``head`` + ``payload`` (two buffers).  ``len()`` is the frame's
    size on the wire, so queue accounting treats it like the ``bytes`` frame it stands for;
    ``bytes(frame)`` joins it (transports that cannot write two buffers at once)."""

    __slots__ = ("head", "payload", "_n")

    def __init__(self, head: bytes, payload: Buffer) -> None:
        self.head = head
        self.payload = payload
        self._n = len(head) + len(payload)

    def __len__(self) -> int:
        return self._n

    def __bytes__(self) -> bytes:
        return b"".join((self.head, self.payload))

    def __repr__(self) -> str:
        return f"SplitFrame({len(self.head)} + {len(self.payload)} bytes)"


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def data_head(stream_id: str, seq: int, ack: int, ack_bits: int, payload_len: int,
              segment_index: int = 0, segment_count: int = 1) -> bytes:
    """The bytes of ``encode_data(stream_id, seq, ack, ack_bits, payload, ...)`` that come
    before ``payload`` (``payload_len`` bytes).  The caller validates the fields (see
    :func:`encode_data_split`)."""
    sid = stream_id.encode()
    body = bytearray()
    if seq:
        body += b"\x08" + _varint(seq)
    if segment_index:
        body += b"\x10" + _varint(segment_index)
    body += b"\x18" + _varint(segment_count)
    body += b"\x22" + _varint(payload_len)
    head = bytearray(b"\x08\x01\x12")
    head += _varint(len(sid))
    head += sid
    if ack:
        head += b"\x18" + _varint(ack)
    if ack_bits:
        head += b"\x20" + _varint(ack_bits)
    head += b"\x2a" + _varint(len(body) + payload_len)
    head += body
    return bytes(head)


def encode_data_split(encode_data, stream_id: str, seq: int, ack: int, ack_bits: int,
                      payload: Buffer, segment_index: int = 0,
                      segment_count: int = 1) -> SplitFrame:
    """``encode_data(...)`` as a :class:`SplitFrame` (same bytes, payload not copied).

    ``encode_data`` is the codec's encoder: it validates the fields (stream id, segment
    numbers, integer ranges) on a one-byte stand-in payload, so a bad frame raises the same
    :class:`FrameError` as an ordinary encode."""
    encode_data(stream_id, seq, ack, ack_bits, b"\x00", segment_index, segment_count)
    return SplitFrame(data_head(stream_id, seq, ack, ack_bits, len(payload), segment_index,
                                segment_count), payload)


__all__ = ["SplitFrame", "SPLIT_MIN_BYTES", "data_head", "encode_data_split"]
