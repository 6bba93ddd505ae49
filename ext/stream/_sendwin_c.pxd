# Types for the compiled build of src/execrelay/stream/_sendwin_py.py (Cython pure Python mode:
# setup.py compiles that file as execrelay.stream._sendwin_c with this .pxd beside it).
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef int64_t _SLOTS, _MASK
cdef list _NO_ITEMS


cdef class SendWindow:
    cdef public int64_t base
    cdef public int64_t next_seq
    cdef public int64_t in_flight
    cdef public int64_t in_flight_bytes
    cdef public int64_t sacked_count
    cdef public int64_t max_segments
    cdef public int64_t max_bytes
    cdef public double rto
    cdef public double srtt
    cdef public double rttvar
    cdef public double rto_min
    cdef public double rto_max
    cdef list _items
    # per-slot state, _SLOTS (32) entries each
    cdef int32_t _sizes[32]
    cdef double _sent_at[32]
    cdef char _retx[32]
    cdef char _sacked[32]
    cdef char _fr[32]
    cdef list _fast

    cpdef bint can_send(self, int64_t nbytes) except -1

    @cython.locals(seq=int64_t, i=cython.int, items=list)
    cpdef int64_t push(self, object item, int64_t nbytes, double now) except? -1

    @cython.locals(i=cython.int, items=list)
    cpdef object get(self, int64_t seq)

    @cython.locals(rto=double)
    cdef void _sample(self, double r)

    @cython.locals(nxt=int64_t, limit=int64_t, base=int64_t, s=int64_t, end=int64_t,
                   below=int64_t, total=int64_t, sample_at=double, i=cython.int, nfast=cython.int,
                   items=list)
    cpdef int on_ack(self, int64_t ack, uint64_t ack_bits, double now) except -1

    @cython.locals(fast=list)
    cpdef list take_fast(self)

    @cython.locals(out=list, rto=double, s=int64_t, nxt=int64_t, i=cython.int)
    cpdef list expire(self, double now)

    @cython.locals(first=double, t=double, s=int64_t, nxt=int64_t, i=cython.int)
    cpdef double next_deadline(self) except? -2.0

    @cython.locals(i=cython.int)
    cpdef void mark_sent(self, int64_t seq, double now)

    cpdef clear(self)
