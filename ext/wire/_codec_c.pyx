# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled relay frame codec: hand-written protobuf wire parsing for ``RelayMessageFrame``.

Twin of ``execrelay.wire._codec_py`` (same API, same accept/reject decisions; the pure one is
built on the generated protobuf classes).  Parsing follows protobuf's rules for this schema:
fields in any order, unknown fields skipped (groups included), last one wins for scalars,
strings and the oneof, and a repeated occurrence of the *same* body message merges into it.
Strings are checked for UTF-8 on every occurrence, as upb does.  On top of protobuf, a known
field sent with the wrong wire type is an error, and the frame rules of the relay profile are
enforced (docs/relay-protocol.md §Frames).  Every failure is a :class:`FrameError` naming what
and where.
"""
cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memcmp

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    bint PyBytes_CheckExact(object)

# Frame, FrameError, the constants and the frame rules exist once, in the pure-mode module
# src/execrelay/wire/_frame_py.py, compiled as execrelay.wire._frame_c: the C view is cimported
# (CFrame, the K_* kinds, the checks as C calls), the Python names are re-exported.
from execrelay.wire._frame_c cimport (Frame as CFrame, K_DATA, K_ACK, K_RESUME, K_RESET,
                                      K_HEARTBEAT, K_HANDSHAKE, MAX_SID, check_stream_id,
                                      check_version, check_body)
from execrelay.wire._frame_c import (Frame, FrameError, KIND_NAMES as _KIND_NAMES, DATA, ACK,
                                     RESUME, RESET, HEARTBEAT, HANDSHAKE, VERSION,
                                     MAX_STREAM_ID_BYTES,
                                     MAX_REASON_BYTES)

cdef enum:  # compile-time constants (DEF is deprecated in Cython 3)
    MAX_GROUP_DEPTH = 100
    SID_CACHE_SLOTS = 512


cdef inline int _fail(str message, Py_ssize_t offset, object sid=None) except -1:
    raise FrameError(message, offset, sid)


# ---------------------------------------------------------------------------------------------
# varints and skipping

cdef inline Py_ssize_t _varint(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end,
                               uint64_t* out) except -1:
    """Read a varint at ``pos``; return the position after it.  One-byte varints (nearly all
    of them in this schema) are decoded inline; longer ones go to :func:`_varint_slow`."""
    cdef uint8_t b
    if pos < end:
        b = buf[pos]
        if b < 0x80:
            out[0] = b
            return pos + 1
    return _varint_slow(buf, pos, end, out)


cdef Py_ssize_t _varint_slow(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end,
                             uint64_t* out) except -1:
    """At most 10 bytes, like upb (the spare bits of a 10th byte are ignored, as upb
    ignores them)."""
    cdef uint64_t result = 0
    cdef uint8_t b
    cdef Py_ssize_t start = pos
    cdef int shift = 0
    while True:
        if pos >= end:
            _fail(f"truncated varint at offset {start}", start)
        b = buf[pos]
        pos += 1
        result |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            out[0] = result
            return pos
        shift += 7
        if shift >= 70:
            _fail(f"varint longer than 10 bytes at offset {start}", start)


cdef Py_ssize_t _skip(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end, uint32_t key,
                      Py_ssize_t at, int depth) except -1:
    """Skip the value of an unknown field whose key (already read) started at ``at``."""
    cdef uint64_t v
    cdef uint32_t wt = key & 7
    cdef uint32_t inner
    cdef Py_ssize_t inner_at
    if wt == 0:
        return _varint(buf, pos, end, &v)
    if wt == 1:
        if end - pos < 8:
            _fail(f"fixed64 field at offset {at} runs past the end", at)
        return pos + 8
    if wt == 5:
        if end - pos < 4:
            _fail(f"fixed32 field at offset {at} runs past the end", at)
        return pos + 4
    if wt == 2:
        pos = _varint(buf, pos, end, &v)
        if v > <uint64_t>(end - pos):
            _fail(f"length {v} of field at offset {at} runs past the end", at)
        return pos + <Py_ssize_t>v
    if wt == 3:
        if depth >= MAX_GROUP_DEPTH:
            _fail(f"groups nested too deeply at offset {at}", at)
        while True:
            if pos >= end:
                _fail(f"unterminated group at offset {at}", at)
            inner_at = pos
            pos = _varint(buf, pos, end, &v)
            if (v >> 32) != 0:  # field number 0 is tolerated inside groups, as upb does
                _fail(f"invalid field key at offset {inner_at}", inner_at)
            inner = <uint32_t>v
            if (inner & 7) == 4:
                if (inner >> 3) != (key >> 3):
                    _fail(f"mismatched end of group at offset {inner_at}", inner_at)
                return pos
            pos = _skip(buf, pos, end, inner, inner_at, depth + 1)
    if wt == 4:
        _fail(f"unexpected end of group at offset {at}", at)
    _fail(f"invalid wire type {wt} at offset {at}", at)


cdef inline Py_ssize_t _key(const uint8_t* buf, Py_ssize_t pos, Py_ssize_t end,
                            uint32_t* key) except -1:
    cdef uint64_t v
    cdef Py_ssize_t at = pos
    pos = _varint(buf, pos, end, &v)
    if (v >> 32) != 0 or (v >> 3) == 0:
        _fail(f"invalid field key at offset {at}", at)
    key[0] = <uint32_t>v
    return pos


cdef inline tuple _wrong_type_msg(uint32_t key, str where, Py_ssize_t at):
    return (f"wrong wire type {key & 7} for {where} field {key >> 3} at offset {at}", at)


cdef inline int _wrong_type(uint32_t key, str where, Py_ssize_t at, object sid) except -1:
    _fail(_wrong_type_msg(key, where, at)[0], at, sid)


cdef inline bint _body_wrong_type(int kind, uint32_t skey):
    """A known field of the body message sent with a wire type the schema does not allow."""
    cdef uint32_t f = skey >> 3, wt = skey & 7
    if kind == K_DATA:
        if f == 4:
            return wt != 2
        return 1 <= f <= 3 and wt != 0
    if kind == K_RESUME:
        return f == 1 and wt != 0
    if kind == K_RESET or kind == K_HANDSHAKE:
        return f == 1 and wt != 2
    return False


cdef inline object _utf8(const uint8_t* p, Py_ssize_t n, str what, Py_ssize_t at, object sid):
    try:
        return PyUnicode_DecodeUTF8(<const char*>p, n, NULL)
    except UnicodeDecodeError:
        _fail(f"{what} at offset {at} is not valid UTF-8", at, sid)


# ---------------------------------------------------------------------------------------------
# stream-id cache: a frame's stream id repeats on every frame of the stream, so a validated
# ``str`` is kept in a small direct-mapped table and reused when the same bytes come again.
# That saves the allocation, the UTF-8 decode and the frame checks on the routing hot path.

cdef object _sid_cache = [None] * SID_CACHE_SLOTS


include "_sidhash.pxi"


cdef object _stream_id(const uint8_t* p, Py_ssize_t n, Py_ssize_t at):
    """Decode and validate a stream id, or return the cached str for the same bytes."""
    cdef uint32_t slot
    cdef object cached
    cdef const char* cp
    cdef Py_ssize_t cn
    cdef object sid
    if n == 0 or n > MAX_SID:
        sid = _utf8(p, n, "stream_id", at, None)
        check_stream_id(sid, n, at)
    slot = sid_hash(p, n) & (SID_CACHE_SLOTS - 1)
    cached = (<list>_sid_cache)[slot]
    if cached is not None:
        cp = PyUnicode_AsUTF8AndSize(cached, &cn)
        if cn == n and memcmp(cp, p, n) == 0:
            return cached
    sid = _utf8(p, n, "stream_id", at, None)
    check_stream_id(sid, n, at)
    (<list>_sid_cache)[slot] = sid
    return sid


# ---------------------------------------------------------------------------------------------
# decode

cdef object _decode(const uint8_t* buf, Py_ssize_t end):
    cdef Py_ssize_t pos = 0, at, sub_end, n
    cdef uint32_t key, field, wt, skey
    cdef uint64_t v
    cdef uint32_t version = 0, ack = 0, ack_bits = 0
    cdef int kind = 0
    cdef uint32_t seq = 0, index = 0, count = 0, next_seq = 0
    cdef const uint8_t* payload_p = NULL
    cdef Py_ssize_t payload_n = 0
    cdef const uint8_t* sid_p = NULL
    cdef Py_ssize_t sid_n = 0, sid_at = -1
    cdef object sid = None
    cdef object reason = None
    cdef Py_ssize_t reason_n = 0
    cdef CFrame f
    cdef object deferred_top = None, deferred_body = None

    while pos < end:
        at = pos
        pos = _key(buf, pos, end, &key)
        field = key >> 3
        wt = key & 7
        if (field == 2 and wt != 2) or ((field == 1 or field == 3 or field == 4) and wt != 0) \
                or (5 <= field <= 10 and wt != 2):
            # protobuf would keep it as an unknown field; we refuse it, but only once the
            # whole frame parsed, so the error carries the stream id exactly as the pure twin's
            if deferred_top is None:
                deferred_top = _wrong_type_msg(key, "frame", at)
            pos = _skip(buf, pos, end, key, at, 0)
        elif field == 2:
            pos = _varint(buf, pos, end, &v)
            if v > <uint64_t>(end - pos):
                _fail(f"length {v} of stream_id at offset {at} runs past the end", at)
            if sid_p != NULL:
                # an earlier occurrence is overwritten, but protobuf still checks its UTF-8
                _utf8(sid_p, sid_n, "stream_id", sid_at, None)
            sid_p = buf + pos
            sid_n = <Py_ssize_t>v
            sid_at = at
            pos += sid_n
        elif field == 1 or field == 3 or field == 4:
            pos = _varint(buf, pos, end, &v)
            if field == 1:
                version = <uint32_t>v
            elif field == 3:
                ack = <uint32_t>v
            else:
                ack_bits = <uint32_t>v
        elif 5 <= field <= 10:
            pos = _varint(buf, pos, end, &v)
            if v > <uint64_t>(end - pos):
                _fail(f"length {v} of body at offset {at} runs past the end", at, sid)
            sub_end = pos + <Py_ssize_t>v
            if kind != <int>field:
                # switching oneof member: the previous body is discarded, as protobuf does
                kind = <int>field
                seq = index = count = next_seq = 0
                payload_p = NULL
                payload_n = 0
                reason = None
                reason_n = 0
                deferred_body = None
            while pos < sub_end:
                at = pos
                if kind == K_ACK or kind == K_HEARTBEAT:
                    # upb tolerates field number 0 inside these field-less messages
                    pos = _varint(buf, pos, sub_end, &v)
                    if (v >> 32) != 0:
                        _fail(f"invalid field key at offset {at}", at)
                    skey = <uint32_t>v
                else:
                    pos = _key(buf, pos, sub_end, &skey)
                if _body_wrong_type(kind, skey):
                    if deferred_body is None:
                        deferred_body = _wrong_type_msg(skey, _KIND_NAMES[kind], at)
                    pos = _skip(buf, pos, sub_end, skey, at, 1)
                elif (kind == K_DATA and 1 <= (skey >> 3) <= 4) or \
                        (kind == K_HANDSHAKE and (skey >> 3) == 1):
                    if (skey >> 3) == 4 or kind == K_HANDSHAKE:
                        pos = _varint(buf, pos, sub_end, &v)
                        if v > <uint64_t>(sub_end - pos):
                            _fail(f"length {v} of payload at offset {at} runs past the end", at, sid)
                        payload_p = buf + pos
                        payload_n = <Py_ssize_t>v
                        pos += payload_n
                    else:
                        pos = _varint(buf, pos, sub_end, &v)
                        if (skey >> 3) == 1:
                            seq = <uint32_t>v
                        elif (skey >> 3) == 2:
                            index = <uint32_t>v
                        else:
                            count = <uint32_t>v
                elif kind == K_RESUME and (skey >> 3) == 1:
                    pos = _varint(buf, pos, sub_end, &v)
                    next_seq = <uint32_t>v
                elif kind == K_RESET and (skey >> 3) == 1:
                    pos = _varint(buf, pos, sub_end, &v)
                    if v > <uint64_t>(sub_end - pos):
                        _fail(f"length {v} of reason at offset {at} runs past the end", at, sid)
                    reason_n = <Py_ssize_t>v
                    reason = _utf8(buf + pos, reason_n, "reset reason", at, sid)
                    pos += reason_n
                else:
                    pos = _skip(buf, pos, sub_end, skey, at, 1)
        else:
            pos = _skip(buf, pos, end, key, at, 0)

    if sid_p == NULL:
        _fail("relay frame is missing stream_id", -1)
    sid = _stream_id(sid_p, sid_n, sid_at)
    if deferred_top is not None:
        _fail(deferred_top[0], deferred_top[1], sid)
    if deferred_body is not None:
        _fail(deferred_body[0], deferred_body[1], sid)
    check_version(version, -1, sid)
    check_body(kind, index, count, payload_n, reason_n, -1, sid)

    f = CFrame.__new__(CFrame)
    f.kind = kind
    f.version = version
    f.stream_id = <str>sid
    f.ack = ack
    f.ack_bits = ack_bits
    f.seq = seq
    f.segment_index = index
    f.segment_count = count
    f.payload = PyBytes_FromStringAndSize(<const char*>payload_p, payload_n) if payload_n else b""
    f.next_seq = next_seq
    f.reason = reason if reason is not None else ""
    return f


ctypedef object (*_reader)(const uint8_t*, Py_ssize_t)


cdef inline object _over_bytes(buf, _reader read):
    """``read`` over the bytes of ``buf``: a bytes object directly, anything else through the
    buffer protocol (released afterwards)."""
    cdef Py_buffer view
    if PyBytes_CheckExact(buf):
        return read(<const uint8_t*>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf))
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        return read(<const uint8_t*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


def decode(buf):
    """Parse and validate one serialized ``RelayMessageFrame``."""
    return _over_bytes(buf, _decode)


cdef object _peek(const uint8_t* buf, Py_ssize_t end):
    cdef Py_ssize_t pos = 0, at, sid_at = -1, sid_n = 0
    cdef const uint8_t* sid_p = NULL
    cdef uint32_t key
    cdef uint64_t v
    cdef object sid = None
    while pos < end:
        at = pos
        pos = _key(buf, pos, end, &key)
        if (key >> 3) == 2:
            if (key & 7) != 2:
                _wrong_type(key, "frame", at, None)
            pos = _varint(buf, pos, end, &v)
            if v > <uint64_t>(end - pos):
                _fail(f"length {v} of stream_id at offset {at} runs past the end", at)
            sid_p = buf + pos
            sid_n = <Py_ssize_t>v
            sid_at = at
            pos += sid_n
        else:
            pos = _skip(buf, pos, end, key, at, 0)
    if sid_p == NULL:
        _fail("relay frame is missing stream_id", -1)
    return <str>_stream_id(sid_p, sid_n, sid_at)


def peek_stream_id(buf):
    """Return the frame's stream_id for routing, scanning only the top-level fields.

    Bodies are skipped, not parsed, so a router never pays for (or judges) the payload; the
    last ``stream_id`` field wins, as in protobuf.
    """
    return _over_bytes(buf, _peek)


# ---------------------------------------------------------------------------------------------
# encode

cdef inline Py_ssize_t _vlen(uint64_t v) nogil:
    cdef Py_ssize_t n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


cdef inline uint8_t* _put(uint8_t* p, uint64_t v) nogil:
    while v >= 0x80:
        p[0] = <uint8_t>(v | 0x80)
        v >>= 7
        p += 1
    p[0] = <uint8_t>v
    return p + 1


cdef inline uint8_t* _tagged(uint8_t* p, uint8_t tag, uint64_t v) nogil:
    """One field: its tag byte, then ``v`` as a varint (a length or a number)."""
    p[0] = tag
    return _put(p + 1, v)


cdef bytes _encode(int kind, str stream_id, uint32_t ack, uint32_t ack_bits, uint32_t seq,
                   uint32_t index, uint32_t count, const uint8_t* payload, Py_ssize_t payload_n,
                   uint32_t next_seq, str reason, uint32_t version):
    cdef Py_ssize_t sid_n, reason_n = 0, body_n = 0, total
    cdef const uint8_t* sid_p
    cdef const uint8_t* reason_p = NULL
    cdef bytes out
    cdef uint8_t* p
    try:
        sid_p = <const uint8_t*>PyUnicode_AsUTF8AndSize(stream_id, &sid_n)
        if kind == K_RESET:
            reason_p = <const uint8_t*>PyUnicode_AsUTF8AndSize(reason, &reason_n)
    except UnicodeEncodeError as exc:
        raise FrameError(f"cannot encode relay frame: {exc}") from None
    check_stream_id(stream_id, sid_n, -1)
    check_version(version, -1, stream_id)
    check_body(kind, index, count, payload_n, reason_n, -1, stream_id)

    if kind == K_DATA:
        if seq:
            body_n += 1 + _vlen(seq)
        if index:
            body_n += 1 + _vlen(index)
        body_n += 1 + _vlen(count)
        body_n += 1 + _vlen(payload_n) + payload_n
    elif kind == K_RESUME:
        if next_seq:
            body_n += 1 + _vlen(next_seq)
    elif kind == K_RESET:
        body_n += 1 + _vlen(reason_n) + reason_n
    elif kind == K_HANDSHAKE:
        body_n += 1 + _vlen(payload_n) + payload_n
    total = 2 + 1 + _vlen(sid_n) + sid_n + 1 + _vlen(body_n) + body_n
    if ack:
        total += 1 + _vlen(ack)
    if ack_bits:
        total += 1 + _vlen(ack_bits)

    out = PyBytes_FromStringAndSize(NULL, total)
    p = <uint8_t*>PyBytes_AS_STRING(out)
    p[0] = 0x08
    p[1] = 0x01
    p[2] = 0x12
    p = _put(p + 3, sid_n)
    memcpy(p, sid_p, sid_n)
    p += sid_n
    if ack:
        p = _tagged(p, 0x18, ack)
    if ack_bits:
        p = _tagged(p, 0x20, ack_bits)
    p = _tagged(p, <uint8_t>((kind << 3) | 2), body_n)
    if kind == K_DATA:
        if seq:
            p = _tagged(p, 0x08, seq)
        if index:
            p = _tagged(p, 0x10, index)
        p = _tagged(p, 0x18, count)
        p = _tagged(p, 0x22, payload_n)
        memcpy(p, payload, payload_n)
    elif kind == K_RESUME:
        if next_seq:
            _tagged(p, 0x08, next_seq)
    elif kind == K_RESET:
        p = _tagged(p, 0x0A, reason_n)
        memcpy(p, reason_p, reason_n)
    elif kind == K_HANDSHAKE:
        p = _tagged(p, 0x0A, payload_n)
        memcpy(p, payload, payload_n)
    return out


def encode(CFrame frame):
    """Serialize a frame; the output is byte-identical to protobuf's deterministic form."""
    cdef bytes payload = frame.payload
    return _encode(frame.kind, frame.stream_id, frame.ack, frame.ack_bits, frame.seq,
                   frame.segment_index, frame.segment_count,
                   <const uint8_t*>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload),
                   frame.next_seq, frame.reason, frame.version)


def encode_data(str stream_id, unsigned int seq, unsigned int ack, unsigned int ack_bits,
                payload, unsigned int segment_index=0, unsigned int segment_count=1):
    """Serialize a Data frame without building a Frame first (the hot path)."""
    cdef Py_buffer view
    if PyBytes_CheckExact(payload):
        return _encode(K_DATA, stream_id, ack, ack_bits, seq, segment_index, segment_count,
                       <const uint8_t*>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload),
                       0, None, 1)
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        return _encode(K_DATA, stream_id, ack, ack_bits, seq, segment_index, segment_count,
                       <const uint8_t*>view.buf, view.len, 0, None, 1)
    finally:
        PyBuffer_Release(&view)


def encode_control(int kind, str stream_id, unsigned int ack=0, unsigned int ack_bits=0,
                   unsigned int next_seq=0, str reason=""):
    """Serialize an Ack, Resume, Reset or Heartbeat frame."""
    if kind != K_ACK and kind != K_RESUME and kind != K_RESET and kind != K_HEARTBEAT:
        raise FrameError(f"encode_control: not a control frame kind: {kind}")
    return _encode(kind, stream_id, ack, ack_bits, 0, 0, 0, NULL, 0, next_seq, reason, 1)
