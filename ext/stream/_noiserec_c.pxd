# Types for the compiled build of src/execrelay/stream/_noiserec_py.py (Cython pure Python mode:
# setup.py compiles that file as execrelay.stream._noiserec_c with this .pxd beside it).
cimport cython
from libc.stdint cimport int64_t

cdef int64_t _RECORD, _TAG, _MAX_MESSAGE, _MAX_RECORDS, _REORDER_RECORDS, _REORDER_BYTES
cdef object _NONCE_PACK, _LENGTH_PACK, _LENGTH_UNPACK
cdef bytes _EMPTY


cdef class Transport:
    cdef object _tx
    cdef object _rx
    cdef public int64_t _tx_n          # public: tests set it near the nonce limit
    cdef public int64_t _rx_n
    cdef dict _pending
    cdef int64_t _pending_bytes
    cdef list _parts
    cdef int64_t _have
    cdef public object handshake_hash

    @cython.locals(n=int64_t)
    cpdef tuple seal_record(self, object plaintext)

    @cython.locals(m=Py_ssize_t, n=int64_t, first=Py_ssize_t, i=Py_ssize_t, out=list)
    cpdef list seal(self, object message)

    @cython.locals(m=Py_ssize_t, parts=list)
    cpdef list seal_many(self, object messages)

    @cython.locals(size=Py_ssize_t, i=Py_ssize_t)
    cdef list _seal_stream(self, bytes framed)

    @cython.locals(nxt=int64_t, end=Py_ssize_t, m=int64_t, size=int64_t, out=list, pending=dict)
    cpdef list open(self, object seq, object record)

    @cython.locals(out=list, pos=Py_ssize_t, end=Py_ssize_t, m=int64_t, stop=Py_ssize_t)
    cdef list _split(self, bytes plaintext)

    @cython.locals(parts=list, have=int64_t, m=int64_t, extra=int64_t, cut=Py_ssize_t)
    cdef list _feed(self, bytes plaintext)

    @cython.locals(n=int64_t)
    cpdef bytes _decrypt(self, object record)
