# Types for the compiled build of src/execrelay/stream/_window_py.py (Cython pure Python mode:
# setup.py compiles that file as execrelay.stream._window_c with this .pxd beside it).
cimport cython
from libc.stdint cimport int32_t, int64_t, uint64_t

cdef int _IN_ORDER, _BUFFERED, _DUPLICATE, _DROPPED
cdef int64_t _SLOTS, _MASK


cdef class RecvWindow:
    cdef public int64_t ack
    cdef uint64_t _present
    cdef list _slots
    cdef int32_t _sizes[64]     # _SLOTS; each <= max_bytes (< 2 GiB, checked in __init__)
    cdef public int64_t buffered_bytes
    cdef public int64_t buffered_count
    cdef public int64_t max_bytes

    @cython.locals(ack=int64_t, off=int64_t, bit=uint64_t, i=cython.int)
    cpdef int offer(self, int64_t seq, object item, int64_t nbytes) except? -1

    @cython.locals(seq=int64_t, i=cython.int, slots=list)
    cpdef object pop_next(self)

    cpdef clear(self)

    @cython.locals(k=int64_t, total=uint64_t)
    cpdef uint64_t bench_inorder(self, int64_t n) except? 0
