# cython: annotation_typing=False
"""The relay frame object, its constants and the frame rules (docs/relay-protocol.md §Frames),
written once for both codecs.

The pure build runs this file as is (the pure codec ``_codec_py`` uses it); ``setup.py``
compiles the same file, typed by ``ext/wire/_frame_c.pxd`` (Cython pure Python mode), as
``execrelay.wire._frame_c``, whose ``Frame`` is a C struct the compiled parser
(``ext/wire/_codec_c.pyx``) fills directly and whose checks it calls as C functions.
"""
from __future__ import annotations

try:
    import cython
except ImportError:  # the pure build runs without Cython: its class decorators do nothing
    from types import SimpleNamespace
    cython = SimpleNamespace(freelist=lambda size: lambda cls: cls, cclass=lambda cls: cls)

DATA = 5
ACK = 6
RESUME = 7
RESET = 8
HEARTBEAT = 9
HANDSHAKE = 10
VERSION = 1
MAX_STREAM_ID_BYTES = 128
MAX_REASON_BYTES = 256

# The frame rules at the end of this file compare with these copies: the .pxd declares them as
# C ints, so in the compiled build a rule compares two C ints instead of boxing its argument and
# looking up a module global (~100 instructions a decode).  Uncompiled they are the same objects.
_VERSION, _DATA, _ACK, _RESUME, _RESET, _HEARTBEAT, _HANDSHAKE = (
    VERSION, DATA, ACK, RESUME, RESET, HEARTBEAT, HANDSHAKE)
_MAX_SID, _MAX_REASON = MAX_STREAM_ID_BYTES, MAX_REASON_BYTES

#: body kind (the oneof field number) -> its protobuf field name
KIND_NAMES = {DATA: "data", ACK: "ack_frame", RESUME: "resume", RESET: "reset",
              HEARTBEAT: "heartbeat", HANDSHAKE: "handshake"}

_U32_FIELDS = ("ack", "ack_bits", "seq", "segment_index", "next_seq", "version")


class FrameError(ValueError):
    """A relay frame that cannot be decoded or breaks the rules of docs/relay-protocol.md §Frames.

    ``offset`` is the byte offset where the problem was found (-1 when unknown) and
    ``stream_id`` the frame's stream if it was readable, so that a router can reset that
    stream only.
    """

    def __init__(self, message: str, offset: int = -1, stream_id: str | None = None) -> None:
        super().__init__(message)
        self.offset = offset
        self.stream_id = stream_id


# A freelist of 256 (compiled build): decode allocates one Frame per frame, and reusing freed ones
# instead of calling the allocator saves ~100 instructions of a ~3,300-instruction small-frame
# decode.  Cython takes the freelist only here, from the decorator above ``cclass`` (ignored in
# the .pxd, refused without ``cclass``); see docs/architecture.md §Compiled and pure builds.
@cython.freelist(256)
@cython.cclass
class Frame:
    """One relay frame: header fields plus exactly one body, flattened for speed.

    ``kind`` is the protobuf oneof field number of the body (DATA, ACK, RESUME, RESET,
    HEARTBEAT, HANDSHAKE); fields of other bodies stay at their defaults.  A Handshake body
    (one Noise handshake message, docs/noise.md) keeps its bytes in ``payload``.
    """

    kind: int
    version: int
    stream_id: str
    ack: int
    ack_bits: int
    seq: int
    segment_index: int
    segment_count: int
    payload: bytes
    next_seq: int
    reason: str

    __slots__ = ("kind", "version", "stream_id", "ack", "ack_bits", "seq", "segment_index",
                 "segment_count", "payload", "next_seq", "reason")

    def __init__(self, kind: int, stream_id: str, ack: int = 0, ack_bits: int = 0, seq: int = 0,
                 segment_index: int = 0, segment_count: int = -1, payload: bytes | bytearray | memoryview = b"",
                 next_seq: int = 0, reason: str = "", version: int = VERSION) -> None:
        values = (ack, ack_bits, seq, segment_index, next_seq, version)
        for i in range(6):
            if not 0 <= values[i] <= 0xFFFFFFFF:
                raise OverflowError(f"{_U32_FIELDS[i]} does not fit in an unsigned 32-bit field")
        if segment_count > 0xFFFFFFFF:
            raise OverflowError("segment_count does not fit in 32 bits")
        self.kind = kind
        self.version = version
        self.stream_id = stream_id
        self.ack = ack
        self.ack_bits = ack_bits
        self.seq = seq
        self.segment_index = segment_index
        # -1 means "the natural default": 1 for a Data frame (one unsplit message), else 0.
        self.segment_count = segment_count if segment_count >= 0 else (1 if kind == DATA else 0)
        self.payload = payload if type(payload) is bytes else bytes(payload)
        self.next_seq = next_seq
        self.reason = reason

    @classmethod
    def data(cls, stream_id: str, seq: int, payload: bytes | bytearray | memoryview, ack: int = 0, ack_bits: int = 0,
             segment_index: int = 0, segment_count: int = 1) -> Frame:
        return cls(DATA, stream_id, ack, ack_bits, seq, segment_index, segment_count, payload)

    @classmethod
    def resume(cls, stream_id: str, next_seq: int, ack: int = 0, ack_bits: int = 0) -> Frame:
        return cls(RESUME, stream_id, ack, ack_bits, next_seq=next_seq)

    @classmethod
    def reset(cls, stream_id: str, reason: str, ack: int = 0, ack_bits: int = 0) -> Frame:
        return cls(RESET, stream_id, ack, ack_bits, reason=reason)

    @classmethod
    def ack_frame(cls, stream_id: str, ack: int, ack_bits: int) -> Frame:
        return cls(ACK, stream_id, ack, ack_bits)

    @classmethod
    def handshake(cls, stream_id: str, payload: bytes | bytearray | memoryview) -> Frame:
        return cls(HANDSHAKE, stream_id, payload=payload)

    @classmethod
    def heartbeat(cls, stream_id: str, ack: int = 0, ack_bits: int = 0) -> Frame:
        return cls(HEARTBEAT, stream_id, ack, ack_bits)

    def _key(self) -> tuple[object, ...]:
        return (self.kind, self.version, self.stream_id, self.ack, self.ack_bits, self.seq,
                self.segment_index, self.segment_count, self.payload, self.next_seq, self.reason)

    def __eq__(self, other: object) -> bool:
        if not hasattr(other, "_key"):
            return NotImplemented
        return self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        if not hasattr(other, "_key"):
            return NotImplemented
        return self._key() != other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        name = KIND_NAMES.get(self.kind, f"kind{self.kind}")
        if self.kind == DATA:
            body = (f"seq={self.seq}, segment={self.segment_index}/{self.segment_count}, "
                    f"payload={len(self.payload)}B")
        elif self.kind == HANDSHAKE:
            body = f"payload={len(self.payload)}B"
        elif self.kind == RESUME:
            body = f"next_seq={self.next_seq}"
        elif self.kind == RESET:
            body = f"reason={self.reason!r}"
        else:
            body = ""
        return (f"Frame.{name}(stream_id={self.stream_id!r}, ack={self.ack}, "
                f"ack_bits={self.ack_bits:#x}{', ' + body if body else ''})")


# ---------------------------------------------------------------------------------------------
# the frame rules (docs/relay-protocol.md §Frames), shared by decode and encode of both codecs;
# each returns 0 or raises FrameError (the int return lets the compiled build propagate it)

def check_stream_id(sid: str, n: int, at: int) -> int:
    """``sid`` (``n`` bytes of UTF-8) is a valid stream id: 1..128 bytes, no surrounding space."""
    if n == 0:
        raise FrameError("relay frame is missing stream_id", at)
    if n > _MAX_SID:
        raise FrameError(f"relay frame stream_id is longer than {MAX_STREAM_ID_BYTES} bytes", at)
    first = ord(sid[0])
    last = ord(sid[len(sid) - 1])
    # printable ASCII other than space at both ends is certainly not whitespace: no strip()
    if not (0x20 < first < 0x7F and 0x20 < last < 0x7F) and sid != sid.strip():
        raise FrameError("relay frame stream_id has surrounding whitespace", at)
    return 0


def check_version(version: int, at: int, sid: str) -> int:
    """Only version 1 exists."""
    if version != _VERSION:
        raise FrameError(f"unsupported relay frame version {version}", at, sid)
    return 0


def check_body(kind: int, index: int, count: int, payload_len: int, reason_len: int, at: int,
               sid: str) -> int:
    """The body rules: a Data frame is a non-empty segment ``index < count``; a Reset carries a
    1..256-byte reason; a Handshake a non-empty payload; a frame has one of the six bodies."""
    if kind == _DATA:
        if count < 1:
            raise FrameError("relay data frame has segment_count 0", at, sid)
        if index >= count:
            raise FrameError(f"relay data frame segment_index {index} >= segment_count {count}",
                             at, sid)
        if payload_len == 0:
            raise FrameError("relay data frame has an empty payload", at, sid)
    elif kind == _RESET:
        if reason_len < 1 or reason_len > _MAX_REASON:
            raise FrameError(
                f"relay reset reason must be 1..{MAX_REASON_BYTES} bytes, got {reason_len}", at, sid)
    elif kind == _HANDSHAKE:
        if payload_len == 0:
            raise FrameError("relay handshake frame has an empty payload", at, sid)
    elif kind != _ACK and kind != _RESUME and kind != _HEARTBEAT:
        raise FrameError("relay frame is missing body", at, sid)
    return 0
