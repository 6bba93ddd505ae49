# cython: language_level=3, boundscheck=False, wraparound=False
"""The picows link and listener, compiled against picows's ``picows.pxd`` (``cimport``).

Twin: ``src/execrelay/transport/_picows_py.py`` (same classes, same behaviour; the rare paths --
fragments, close frames, disconnect, write pauses, batches with large or non-bytes payloads --
are that module's functions, called from here).  What compiling buys per message:

* picows calls ``on_ws_frame`` through its C vtable (no Python frame), and the frame's type,
  FIN and last-in-buffer bits are C fields (from Python, ``frame.msg_type`` converts a C enum to
  an ``IntEnum`` member: ~150 ns per frame);
* ``send`` is a C method (the JSON-RPC connection calls it once per answer);
* a read's batch of small ``bytes`` messages is framed into ONE buffer in C (headers written
  in place) instead of a header object per message and a join.

This module depends on picows's C layout: it refuses to import (so :mod:`.ws_picows` falls back
to the Python twin, with the usual banner) unless the installed picows is the release it was
built against (``setup.py`` records it; Cython itself checks the type sizes).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.stdint cimport uint8_t
from libc.string cimport memcpy
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

import asyncio

import picows as _picows

from execrelay import _accel

from execrelay.transport import _picows_py as _py
from execrelay.transport.base import peer_of

cdef extern from *:
    """
    #ifndef EXECRELAY_PICOWS_VERSION
    #define EXECRELAY_PICOWS_VERSION ""
    #endif
    """
    const char* EXECRELAY_PICOWS_VERSION

#: the picows release this module was compiled against (``setup.py`` passes it)
BUILT_AGAINST = (<bytes>EXECRELAY_PICOWS_VERSION).decode()
_accel.require_release(_picows, BUILT_AGAINST)

cdef Py_ssize_t JOIN_LIMIT = _py.JOIN_LIMIT


cdef inline Py_ssize_t _header_size(Py_ssize_t n, bint masked) noexcept:
    return (2 if n < 126 else 4 if n < 65536 else 10) + (4 if masked else 0)


cdef inline char* _put_header(char* p, uint8_t b0, Py_ssize_t n, bint masked) noexcept:
    """RFC 6455 header of one unfragmented frame at ``p`` (the all-zero key when ``masked``,
    as ``execrelay._wsframe.header``); returns the end."""
    cdef uint8_t m = 0x80 if masked else 0
    cdef int i
    p[0] = <char>b0
    if n < 126:
        p[1] = <char>(m | n)
        p += 2
    elif n < 65536:
        p[1] = <char>(m | 126)
        p[2] = <char>((n >> 8) & 0xFF)
        p[3] = <char>(n & 0xFF)
        p += 4
    else:
        p[1] = <char>(m | 127)
        for i in range(8):
            p[2 + i] = <char>((<unsigned long long>n >> (56 - 8 * i)) & 0xFF)
        p += 10
    if masked:
        p[0] = 0
        p[1] = 0
        p[2] = 0
        p[3] = 0
        p += 4
    return p


cdef class PicowsLink:
    """A :class:`~execrelay.transport.base.Link` over one picows transport."""

    cdef WSTransport _t
    cdef object _raw
    cdef object _write
    cdef object _loop
    cdef list _out
    cdef bint _client
    cdef bint _out_bin
    cdef bint _in_read
    cdef bint _scheduled
    cdef public object peer
    cdef public bint write_paused
    cdef public bint _closed
    cdef public object _handler
    cdef object __weakref__

    def __init__(self, WSTransport transport, bint client):
        self._t = transport
        self._raw = transport.underlying_transport
        self._write = self._raw.write
        self._client = client
        self.peer = peer_of(self._raw.get_extra_info("peername"))
        self.write_paused = False
        self._out = []
        self._out_bin = False
        self._in_read = False
        self._scheduled = False
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._handler = None

    cpdef send(self, data, bint binary=False):
        if self._closed:
            return
        if self._out and binary != self._out_bin:
            self.flush()
        self._out_bin = binary
        self._out.append(data)
        if not self._in_read and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_soon)

    def send_many(self, messages, bint binary=False):
        for m in messages:
            self.send(m, binary)

    cpdef write_now(self, list messages, bint binary=False):
        """``send_many(messages)`` + ``flush()`` without scheduling a flush callback first.
        Takes ownership of ``messages``."""
        if self._closed:
            return
        cdef list out = self._out
        if out:
            if binary != self._out_bin:
                self.flush()
                self._out = messages
            else:
                out.extend(messages)
        else:
            self._out = messages
        self._out_bin = binary
        self.flush()

    def _flush_soon(self):
        self._scheduled = False
        self.flush()

    cpdef flush(self):
        cdef list out = self._out
        cdef Py_ssize_t k = PyList_GET_SIZE(out)
        cdef Py_ssize_t i, n, payload = 0, size = 0
        cdef object m
        cdef bint masked = self._client
        if k == 0:
            return
        self._out = []
        if self._closed:
            return
        for i in range(k):
            m = <object>PyList_GET_ITEM(out, i)
            if type(m) is not bytes:
                payload = JOIN_LIMIT + 1          # str, bytearray, SplitFrame...: the twin's path
                break
            n = PyBytes_GET_SIZE(m)
            payload += n
            size += n + _header_size(n, masked)
        if payload > JOIN_LIMIT:
            if k == 1 and type(m) is not _py.SplitFrame and len(m) <= JOIN_LIMIT:
                self._t.send(WSMsgType.BINARY if self._out_bin else WSMsgType.TEXT,
                             m.encode() if type(m) is str else m)
            else:
                _py.write_batch(self._raw, out, self._out_bin, masked)
            return
        if k == 1:  # picows frames and writes one message itself (its own buffer)
            self._t.send(WSMsgType.BINARY if self._out_bin else WSMsgType.TEXT, m)
            return
        cdef bytes buf = PyBytes_FromStringAndSize(NULL, size)
        cdef char* p = PyBytes_AS_STRING(buf)
        cdef uint8_t b0 = 0x82 if self._out_bin else 0x81
        for i in range(k):
            m = <object>PyList_GET_ITEM(out, i)
            n = PyBytes_GET_SIZE(m)
            p = _put_header(p, b0, n, masked)
            memcpy(p, PyBytes_AS_STRING(m), n)
            p += n
        self._write(buf)

    def pause_reading(self, bint paused):
        """Stop (True) or restart (False) reading from the socket: TCP backpressure to the peer."""
        if self._closed:
            return
        if paused:
            self._raw.pause_reading()
        else:
            self._raw.resume_reading()

    def close(self, bint graceful=False):
        if self._closed:
            return
        if graceful:
            self.flush()
            self._closed = True
            self._t.send_close()
            self._t.disconnect(True)
        else:
            self._closed = True
            self._out = []
            self._raw.abort()

    async def wait_closed(self):
        await self._t.wait_disconnected()


cdef class Listener(WSListener):
    """picows's listener of one connection: whole messages go to the handler's ``on_message``."""

    cdef public object _factory
    cdef public bint _client
    cdef public Py_ssize_t _max
    cdef public object _frag
    cdef public bint _frag_bin
    cdef public Py_ssize_t _frag_size
    cdef public PicowsLink link
    cdef public object handler
    cdef public object _on_message

    def __init__(self, factory, bint client, Py_ssize_t max_message):
        self._factory = factory
        self._client = client
        self._max = max_message
        self._frag = None
        self._frag_bin = False
        self._frag_size = 0
        self.link = None
        self.handler = None
        self._on_message = None

    cpdef on_ws_connected(self, WSTransport transport):
        _py.connected(self, PicowsLink(transport, self._client))

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef PicowsLink link = self.link
        cdef WSMsgType mt = frame.msg_type
        link._in_read = True
        try:
            if (mt == WSMsgType.TEXT or mt == WSMsgType.BINARY) and frame.fin:  # the hot path
                self._on_message(frame.get_payload_as_bytes(), mt == WSMsgType.BINARY)
            else:
                _py.other_frame(self, frame.msg_type, frame)
        finally:
            if frame.last_in_buffer:
                link._in_read = False
                link.flush()

    cpdef on_ws_disconnected(self, WSTransport transport):
        _py.disconnected(self)

    cpdef pause_writing(self):
        _py.write_paused(self, True)

    cpdef resume_writing(self):
        _py.write_paused(self, False)
