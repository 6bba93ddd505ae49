# Types for the compiled build of src/execrelay/stream/_reasm_py.py (Cython pure Python mode:
# setup.py compiles that file as execrelay.stream._reasm_c with this .pxd beside it).
cimport cython
from libc.stdint cimport int64_t


cdef class Reassembler:
    cdef public bint active
    cdef public int64_t expected
    cdef public int64_t count
    cdef public int64_t size
    cdef public int64_t max_segment
    cdef public int64_t max_message
    cdef list _parts

    @cython.locals(n=int64_t, size=int64_t)
    cpdef object feed(self, int64_t index, int64_t count, object payload)

    cpdef clear(self)
