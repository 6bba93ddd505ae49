# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of ``execrelay.stream._window_py`` (reliable-mode receive window).

Same API and behaviour; see the pure twin for the protocol.  State is a 64-bit presence map
(bit i <-> seq ack+1+i) and a 64-slot ring of Python objects indexed by ``seq & 63``.
"""
from libc.stdint cimport uint64_t, int64_t, int32_t

cdef enum:  # compile-time constants (DEF is deprecated in Cython 3)
    SLOTS = 64
    MASK = 63
    C_IN_ORDER = 0
    C_BUFFERED = 1
    C_DUPLICATE = 2
    C_DROPPED = 3

IN_ORDER = C_IN_ORDER
BUFFERED = C_BUFFERED
DUPLICATE = C_DUPLICATE
DROPPED = C_DROPPED


cdef class RecvWindow:
    cdef public int64_t ack
    cdef uint64_t _present
    cdef list _slots
    cdef int32_t _sizes[SLOTS]   # each <= max_bytes (< 2 GiB, checked in __init__)
    cdef public int64_t buffered_bytes
    cdef public int64_t buffered_count
    cdef public int64_t max_bytes

    def __init__(self, int64_t max_bytes=1024 * 1024):
        self.ack = 0
        self._present = 0
        cdef int i
        if not 0 <= max_bytes < 2**31:
            raise ValueError("max_bytes must be below 2 GiB")
        self._slots = None          # created on the first out-of-order segment
        for i in range(SLOTS):
            self._sizes[i] = 0
        self.buffered_bytes = 0
        self.buffered_count = 0
        self.max_bytes = max_bytes

    cpdef int offer(self, int64_t seq, object item, int64_t nbytes):
        cdef int64_t ack = self.ack
        cdef int64_t off
        cdef uint64_t bit
        cdef int i
        if seq <= ack:
            return C_DUPLICATE
        off = seq - ack - 1
        if off == 0:
            self.ack = seq
            self._present >>= 1
            return C_IN_ORDER
        if off >= SLOTS:
            return C_DROPPED
        bit = (<uint64_t>1) << off
        if self._present & bit:
            return C_DUPLICATE
        if self.buffered_bytes + nbytes > self.max_bytes:
            return C_DROPPED
        i = <int>(seq & MASK)
        if self._slots is None:
            self._slots = [None] * SLOTS
        self._slots[i] = item
        self._sizes[i] = <int32_t>nbytes
        self._present |= bit
        self.buffered_bytes += nbytes
        self.buffered_count += 1
        return C_BUFFERED

    cpdef object pop_next(self):
        cdef int64_t seq
        cdef int i
        if not (self._present & 1):
            return None
        seq = self.ack + 1
        i = <int>(seq & MASK)
        item = self._slots[i]
        self._slots[i] = None
        self.buffered_bytes -= self._sizes[i]
        self.buffered_count -= 1
        self.ack = seq
        self._present >>= 1
        return item

    @property
    def ack_bits(self):
        return <unsigned int>(self._present & 0xFFFFFFFF)

    def clear(self):
        self._slots = None
        self._present = 0
        self.buffered_bytes = 0
        self.buffered_count = 0

    def bench_inorder(self, int64_t n):
        """Benchmark helper: n in-order offers + ack_bits reads (C loop, no Python calls)."""
        cdef int64_t k
        cdef uint64_t total = 0
        for k in range(n):
            self.offer(self.ack + 1, None, 100)
            total += self._present & 0xFFFFFFFF
        return total
