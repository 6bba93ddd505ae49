"""What a router may learn about a relay frame without decoding it, and the frame limits.

A relay frame (``codex.exec_server.relay.v1.RelayMessageFrame``) as every known encoder lays
it out starts with the *canonical prefix*::

    08 01  12 <len> <stream_id>  [18 <ack varint>]  [20 <ack_bits varint>]  <body tag> ...

(version = 1, the stream id, the optional acks, then the body: field 5 Data .. 10 Handshake).
:func:`body_kind` reads the body's field number from that prefix, so the rendezvous forwards
frames unmodified after a few byte comparisons and decodes only the rare ones (first frame of
a stream, Reset, unusual layout).  The rest of the relay-frame knowledge shared by the codec,
the stream layer and the rendezvous lives here too: the 16 MiB frame limit of 0.131.0 and the
clipping of Reset reasons to the protocol's limit.  See docs/relay-protocol.md §Frames and
§Limits.

A leaf module: it imports nothing from execrelay, so the codec package may re-export it.
"""
from __future__ import annotations

#: The largest websocket frame a 0.131.0 peer accepts (tungstenite's default frame limit);
#: the rendezvous refuses larger relay frames, a legacy stream never sends one.
LEGACY_MAX_FRAME_BYTES: int = 16 * 1024 * 1024

#: A Reset reason is 1..256 UTF-8 bytes (docs/relay-protocol.md §Frames).
MAX_REASON_BYTES: int = 256

#: Body field numbers of RelayMessageFrame's oneof (the values of ``wire.DATA`` ..
#: ``wire.HANDSHAKE``), length-delimited, hence tag = field << 3 | 2.
_DATA = 5
_FIRST_BODY = 5
_LAST_BODY = 10
_DATA_TAG = _DATA << 3 | 2  # 0x2a
_ACK_TAG = 0x18              # field 3 (ack), varint
_ACK_BITS_TAG = 0x20         # field 4 (ack_bits), varint


def body_kind(data: bytes) -> int:
    """Body field number (DATA..HANDSHAKE) of a canonically laid out v1 frame, else -1.

    -1 means "not sure" (other field order, version absent or not 1, a stream id of 128
    bytes, whose length takes two bytes, an unknown body, a truncated frame): the caller
    falls back to a full decode.  The stream id's length is read from the frame, in bytes,
    so any UTF-8 id works.  A Data frame without acks, the common case, costs four byte
    comparisons.
    """
    try:
        if data[0] != 0x08 or data[1] != 0x01 or data[2] != 0x12:
            return -1
        n = data[3]
        if n >= 0x80:
            return -1
        pos = n + 4
        t = data[pos]
        if t == _DATA_TAG:
            return _DATA
        if t == _ACK_TAG:
            pos += 1
            while data[pos] & 0x80:
                pos += 1
            pos += 1
            t = data[pos]
        if t == _ACK_BITS_TAG:
            pos += 1
            while data[pos] & 0x80:
                pos += 1
            pos += 1
            t = data[pos]
    except IndexError:
        return -1
    if t & 7 != 2:
        return -1
    t >>= 3
    return t if _FIRST_BODY <= t <= _LAST_BODY else -1


def clip_reason(reason: str) -> str:
    """Fit a Reset reason into 1..256 UTF-8 bytes without splitting a character.

    An empty reason becomes ``"reset"`` (an empty one is invalid on the wire and fatal to a
    0.131.0 peer).
    """
    raw = reason.encode("utf-8")
    if not raw:
        return "reset"
    if len(raw) <= MAX_REASON_BYTES:
        return reason
    return raw[:MAX_REASON_BYTES].decode("utf-8", "ignore")


__all__ = ["LEGACY_MAX_FRAME_BYTES", "MAX_REASON_BYTES", "body_kind", "clip_reason"]
