"""Relay frame codec: ``codex.exec_server.relay.v1.RelayMessageFrame`` <-> :class:`Frame`.

The bottom layer of execrelay.  ``execrelay.wire._codec_c`` (Cython, hand-written protobuf
wire parsing) is used when it is built; ``execrelay.wire._codec_py`` (on the generated
protobuf classes) otherwise, or when ``EXECRELAY_PURE=1``.  Both have the same API and share
``Frame``, the constants and the frame rules (``_frame_py``, compiled as ``_frame_c``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .._accel import select as _select
# the constants are plain ints, the same in both builds: imported from their one source
from ._frame_py import (ACK, DATA, HANDSHAKE, HEARTBEAT, MAX_REASON_BYTES, MAX_STREAM_ID_BYTES,
                        RESET, RESUME, VERSION)
from .peek import LEGACY_MAX_FRAME_BYTES, body_kind, clip_reason

if TYPE_CHECKING:   # the type checker sees the pure twin: same API, real annotations
    from . import _codec_py as _impl
else:
    _impl = _select("wire", "execrelay.wire._codec_c", "execrelay.wire._codec_py")

Frame = _impl.Frame
FrameError = _impl.FrameError
decode = _impl.decode
encode = _impl.encode
encode_data = _impl.encode_data
encode_control = _impl.encode_control
peek_stream_id = _impl.peek_stream_id

IMPLEMENTATION: str = "cython" if _impl.__name__.endswith("_c") else "pure"

__all__ = [
    "Frame", "FrameError", "decode", "encode", "encode_data", "encode_control", "peek_stream_id",
    "DATA", "ACK", "RESUME", "RESET", "HEARTBEAT", "HANDSHAKE", "VERSION", "MAX_STREAM_ID_BYTES",
    "MAX_REASON_BYTES", "LEGACY_MAX_FRAME_BYTES", "IMPLEMENTATION", "body_kind", "clip_reason",
]
