# Types for the compiled build of src/execrelay/executor/_reqstats_py.py (Cython pure Python
# mode: setup.py compiles that file as execrelay.executor._reqstats_c with this .pxd beside it).
cimport cython
from libc.stdint cimport int64_t
from posix.time cimport timespec

@cython.locals(ts=timespec)
cdef int64_t _now() noexcept

cdef extern from *:
    # GCC/Clang builtin, for _slot (the .py calls it in its cython.compiled branch)
    int _clz64 "__builtin_clzll"(unsigned long long) noexcept nogil

cdef int _slot(int64_t v) noexcept


cdef class MethodStats:
    cdef public object name
    cdef public object handler
    cdef public object log
    cdef public int64_t errors
    cdef public int64_t internal
    cdef public int64_t cancelled
    cdef public int64_t started
    cdef public int64_t last_ns
    cdef public int64_t sum_ns
    cdef public int64_t bytes_in
    cdef public int64_t bytes_out
    cdef int64_t _buckets[65]     # BIT_BUCKETS

    cpdef void end_since(self, int64_t t0, int64_t nbytes) except *
    cpdef void add_bytes_in(self, int64_t nbytes) except *
    cdef inline void _observe(self, int64_t dt, int64_t nbytes) noexcept
