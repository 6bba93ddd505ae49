"""Websocket frame headers (RFC 6455 §5.2): the one builder every layer uses.

Code that writes many websocket messages with one ``write()``/``writelines()`` (the
rendezvous, the relay transports, the benchmark drivers) builds the two-to-fourteen byte
header itself and puts the payload after it unchanged.  Payload bytes are never copied or
masked here: a client uses the all-zero masking key, which RFC 6455 permits and which leaves
the payload as it is (the receiver still runs its unmask pass).

A leaf module (no execrelay imports), so any layer may use it.
"""
from __future__ import annotations

import struct

OP_TEXT: int = 0x1
OP_BINARY: int = 0x2

_pack_H = struct.Struct("!H").pack
_pack_Q = struct.Struct("!Q").pack
_ZERO_KEY = b"\x00\x00\x00\x00"
#: Unmasked binary headers of payloads below 126 bytes, by length: a per-frame caller indexes
#: it inline (``SMALL_BINARY[n] if n < 126 else binary_header(n)``) and saves a call.
SMALL_BINARY: list[bytes] = [bytes((0x80 | OP_BINARY, n)) for n in range(126)]


# One struct call per header (the "4x" pads are the all-zero masking key).
_hdr2 = struct.Struct("!BB").pack
_hdr4 = struct.Struct("!BBH").pack
_hdr10 = struct.Struct("!BBQ").pack
_hdr2m = struct.Struct("!BB4x").pack
_hdr4m = struct.Struct("!BBH4x").pack
_hdr10m = struct.Struct("!BBQ4x").pack


def header(opcode: int, length: int, masked: bool = False) -> bytes:
    """Header of one unfragmented frame (FIN set) carrying ``length`` payload bytes.

    ``masked`` (client to server) appends the all-zero masking key.
    """
    b0 = 0x80 | opcode
    if masked:
        if length < 126:
            return _hdr2m(b0, 0x80 | length)
        if length < 65536:
            return _hdr4m(b0, 0xFE, length)
        return _hdr10m(b0, 0xFF, length)
    if length < 126:
        return _hdr2(b0, length)
    if length < 65536:
        return _hdr4(b0, 126, length)
    return _hdr10(b0, 127, length)


def binary_header(length: int) -> bytes:
    """``header(OP_BINARY, length)``, from a table for small payloads (per-frame callers)."""
    if length < 126:
        return SMALL_BINARY[length]
    return header(OP_BINARY, length)


def header_size(length: int, masked: bool = False) -> int:
    """Bytes :func:`header` produces for a ``length``-byte payload."""
    return (2 if length < 126 else 4 if length < 65536 else 10) + (4 if masked else 0)


__all__ = ["OP_TEXT", "OP_BINARY", "header", "binary_header", "header_size", "SMALL_BINARY"]
