"""Websocket frame headers (RFC 6455), for writing many messages with one ``write()``.

Only headers are built here; payload bytes are never copied or masked (clients use the all-zero
masking key, which RFC 6455 permits and which leaves the payload unchanged).
"""
from __future__ import annotations

from .._wsframe import header
from ..wire.split import SplitFrame


def frame_parts(messages: list, opcode: int, masked: bool) -> tuple[list, int]:
    """``[header, payload, header, payload, ...]`` and the total payload size, for writelines()
    (uvloop turns it into one writev without copying large payloads).  A
    :class:`~execrelay.wire.split.SplitFrame` contributes its two buffers after one header."""
    parts: list = []
    append = parts.append
    total = 0
    for m in messages:
        t = type(m)
        if t is str:
            m = m.encode()
        n = len(m)
        total += n
        append(header(opcode, n, masked))
        if t is SplitFrame:
            append(m.head)
            append(m.payload)
        else:
            append(m)
    return parts, total
