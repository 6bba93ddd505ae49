# cython: language_level=3, boundscheck=False, wraparound=False
"""Per-method request counters with no allocation on the request path.

Twin: ``src/execrelay/executor/_reqstats_py.py`` (same class, same numbers).  The counters are
C integers: counting a request in pure Python allocates several int objects (nanosecond times,
sums and byte totals are far above the small-int cache) and costs ~10 bytecodes; here it is two
method calls, each reading CLOCK_MONOTONIC and adding to C fields
(docs/operations.md §Cost on the request path).
"""
from cpython.object cimport PyObject_Length
from libc.stdint cimport int64_t, uint64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

#: slots of the duration histogram: a duration dt (ns) is counted in slot dt.bit_length()
BIT_BUCKETS = 65


cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil


cdef inline int64_t _now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int _bit_length(int64_t v) noexcept nogil:
    if v <= 0:
        return 0
    return 64 - __builtin_clzll(<unsigned long long>v)


cdef class MethodStats:
    """The handler of one JSON-RPC method and its counters (one per method, allocated once).

    ``begin(message)`` when a request arrives, ``end(answer)`` once its answer is sent (a sync
    handler: nothing runs in between); an async request keeps ``started`` and finishes with
    ``end_since(t0, answer)``.  ``buckets[b]`` counts the requests whose duration in ns has
    bit length ``b``; their sum is the number answered, whatever the outcome.
    """

    cdef public object name
    cdef public object handler
    #: the access-log hook while ``--access-log`` is on, else None
    cdef public object log
    cdef public int64_t errors
    cdef public int64_t internal
    cdef public int64_t cancelled
    cdef int64_t _t0
    cdef int64_t _last
    cdef int64_t _sum
    cdef int64_t _in
    cdef int64_t _out
    cdef int64_t _buckets[65]

    def __init__(self, name, handler):
        self.name = name
        self.handler = handler
        self.log = None

    def begin(self, message) -> None:
        """A request arrived: start its clock, count its bytes."""
        self._t0 = _now()
        self._in += PyObject_Length(message)

    def end(self, data) -> None:
        """Its answer ``data`` was sent: file the duration since :meth:`begin`."""
        self._observe(_now() - self._t0, PyObject_Length(data))

    def end_since(self, int64_t t0, Py_ssize_t nbytes) -> None:
        """An async request started at ``t0`` (``started``) ended with ``nbytes`` sent."""
        self._observe(_now() - t0, nbytes)

    def add_bytes_in(self, Py_ssize_t nbytes) -> None:
        self._in += nbytes

    cdef inline void _observe(self, int64_t dt, Py_ssize_t nbytes) noexcept:
        if dt < 0:
            dt = 0
        self._buckets[_bit_length(dt)] += 1
        self._sum += dt
        self._out += nbytes
        self._last = dt

    @property
    def started(self) -> int:
        """The clock (ns) of the last :meth:`begin`."""
        return self._t0

    @property
    def last_ns(self) -> int:
        """Duration of the last request filed (for the access log)."""
        return self._last

    @property
    def sum_ns(self) -> int:
        return self._sum

    @property
    def bytes_in(self) -> int:
        return self._in

    @property
    def bytes_out(self) -> int:
        return self._out

    @property
    def buckets(self) -> list:
        return [self._buckets[i] for i in range(65)]

    @property
    def count(self) -> int:
        cdef int64_t n = 0
        for i in range(65):
            n += self._buckets[i]
        return n
