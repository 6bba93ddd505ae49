# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of ``execrelay.stream._reasm_py`` (segment reassembly).

The first segment of a multi-segment message allocates an *uninitialised* bytes object of
``min(count * max_segment, max_message)`` bytes (pages are only touched when written); each
segment is memcpy'd once into place; the last one sets the object's size to the real size (a
realloc only when more than 64 KiB would be left unused) and that very object is delivered: no join, no
second copy, nothing quadratic.
"""
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.ref cimport PyObject, Py_INCREF, Py_XDECREF, Py_DECREF
from libc.string cimport memcpy
from libc.stdint cimport int64_t

from execrelay.stream.errors import ProtocolViolation
from execrelay.stream.errors import MAX_MESSAGE_BYTES as _MAXMSG, SEGMENT_BYTES as _SEG

cdef extern from "Python.h":
    int _PyBytes_Resize(PyObject **bytes, Py_ssize_t newsize) except -1
    void Py_SET_SIZE(PyObject* ob, Py_ssize_t size)

# Up to this much unused tail is left in the delivered object instead of reallocating it:
# shrinking a large block with realloc makes glibc's next same-sized allocation an mmap (fresh
# pages, a page fault per 4 KiB: 6x slower reassembly), while keeping the block lets it reuse
# warm heap memory.  The waste is under one segment per message in flight.
cdef enum:  # compile-time constants (DEF is deprecated in Cython 3)
    KEEP_SLACK = 64 * 1024


cdef class Reassembler:
    cdef public bint active
    cdef public int64_t expected
    cdef public int64_t count
    cdef public int64_t size
    cdef public int64_t max_segment
    cdef public int64_t max_message
    cdef int64_t _cap
    cdef PyObject* _buf

    def __cinit__(self):
        self._buf = NULL

    def __init__(self, int64_t max_segment=_SEG, int64_t max_message=_MAXMSG):
        self.active = False
        self.expected = 0
        self.count = 0
        self.size = 0
        self.max_segment = max_segment
        self.max_message = max_message

    def __dealloc__(self):
        Py_XDECREF(self._buf)
        self._buf = NULL

    cpdef object feed(self, int64_t index, int64_t count, object payload):
        cdef const unsigned char[::1] view
        cdef const char* src
        cdef Py_ssize_t n
        cdef int64_t cap, size
        cdef object out
        cdef char* dst
        if type(payload) is bytes:
            src = PyBytes_AS_STRING(payload)
            n = PyBytes_GET_SIZE(payload)
        else:
            view = payload
            n = view.shape[0]
            src = <const char*>&view[0] if n else NULL
        if n > self.max_segment:
            raise ProtocolViolation(f"segment payload of {n} bytes exceeds {self.max_segment}")
        if index >= count:
            raise ProtocolViolation(f"segment_index {index} >= segment_count {count}")
        if not self.active:
            if index != 0:
                raise ProtocolViolation(f"segment {index}/{count} does not start a message")
            if count == 1:
                return payload if type(payload) is bytes else bytes(payload)
            if count > (self.max_message + self.max_segment - 1) // self.max_segment:
                raise ProtocolViolation(f"message of {count} segments exceeds {self.max_message} bytes")
            cap = count * self.max_segment
            if cap > self.max_message:
                cap = self.max_message
            out = PyBytes_FromStringAndSize(NULL, cap)
            Py_INCREF(out)          # our own reference, kept in self._buf
            Py_XDECREF(self._buf)
            self._buf = <PyObject*>out
            self._cap = cap
            memcpy(PyBytes_AS_STRING(out), src, n)
            self.active = True
            self.expected = 1
            self.count = count
            self.size = n
            return None
        if count != self.count:
            raise ProtocolViolation(f"segment_count changed from {self.count} to {count}")
        if index != self.expected:
            raise ProtocolViolation(
                f"segment {index}/{count} overlaps: segment {self.expected} was expected")
        size = self.size + n
        if size > self.max_message:
            raise ProtocolViolation(f"message exceeds {self.max_message} bytes")
        if size > self._cap:  # only with a caller-chosen max_segment larger than used: grow
            _PyBytes_Resize(&self._buf, size)
            self._cap = size
        dst = PyBytes_AS_STRING(<object>self._buf)
        memcpy(dst + self.size, src, n)
        self.size = size
        self.expected += 1
        if self.expected < count:
            return None
        if size != self._cap:
            if self._cap - size <= KEEP_SLACK:
                dst = PyBytes_AS_STRING(<object>self._buf)
                dst[size] = 0
                Py_SET_SIZE(self._buf, size)
            else:
                _PyBytes_Resize(&self._buf, size)
        out = <object>self._buf
        Py_DECREF(out)
        self._buf = NULL
        self.active = False
        self.expected = 0
        self.count = 0
        self.size = 0
        self._cap = 0
        return out

    def clear(self):
        Py_XDECREF(self._buf)
        self._buf = NULL
        self.active = False
        self.expected = 0
        self.count = 0
        self.size = 0
        self._cap = 0


