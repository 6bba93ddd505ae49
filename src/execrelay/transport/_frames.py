"""Websocket frame headers (RFC 6455), for writing many messages with one ``write()``.

Only headers are built here; payload bytes are never copied or masked (clients use the all-zero
masking key, which RFC 6455 permits and which leaves the payload unchanged).
"""
from __future__ import annotations

from .._wsframe import header
from ..wire.split import SplitFrame


#: headers of payloads below this size are kept once built (per opcode and masking): a
#: batch's header then costs one list index, not a Python call (~400 instructions less per
#: message on the relay's write path); at most 2 x 2,048 small bytes objects per process
_TABLE_N = 2048
_tables: dict[tuple[int, bool], list[bytes | None]] = {}


def frame_parts(messages: list, opcode: int, masked: bool) -> tuple[list, int]:
    """``[header, payload, header, payload, ...]`` and the total payload size, for writelines()
    (uvloop turns it into one writev without copying large payloads).  A
    :class:`~execrelay.wire.split.SplitFrame` contributes its two buffers after one header."""
    table = _tables.get((opcode, masked))
    if table is None:
        table = _tables[(opcode, masked)] = [None] * _TABLE_N
    parts: list = []
    append = parts.append
    total = 0
    for m in messages:
        t = type(m)
        if t is str:
            m = m.encode()
        n = len(m)
        total += n
        h = table[n] if n < _TABLE_N else None
        if h is None:
            h = header(opcode, n, masked)
            if n < _TABLE_N:
                table[n] = h
        append(h)
        if t is SplitFrame:
            append(m.head)
            append(m.payload)
        else:
            append(m)
    return parts, total
