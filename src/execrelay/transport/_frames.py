"""Websocket frame headers (RFC 6455), for writing many messages with one ``write()``.

Only headers are built here; payload bytes are never copied or masked (clients use the all-zero
masking key, which RFC 6455 permits and which leaves the payload unchanged).
"""
from __future__ import annotations

import struct

_pack_H = struct.Struct("!H").pack
_pack_Q = struct.Struct("!Q").pack
_ZERO_KEY = b"\x00\x00\x00\x00"


def header(opcode: int, length: int, masked: bool) -> bytes:
    """Header of one unfragmented frame (FIN set) carrying ``length`` payload bytes."""
    b0 = 0x80 | opcode
    m = 0x80 if masked else 0
    if length < 126:
        h = bytes((b0, m | length))
    elif length < 65536:
        h = bytes((b0, m | 126)) + _pack_H(length)
    else:
        h = bytes((b0, m | 127)) + _pack_Q(length)
    return h + _ZERO_KEY if masked else h


def frame_parts(messages: list, opcode: int, masked: bool) -> tuple[list, int]:
    """``[header, payload, header, payload, ...]`` and the total payload size, for writelines()
    (uvloop turns it into one writev without copying large payloads)."""
    parts = []
    append = parts.append
    total = 0
    for m in messages:
        if type(m) is str:
            m = m.encode()
        n = len(m)
        total += n
        append(header(opcode, n, masked))
        append(m)
    return parts, total
