# Types for the compiled build of src/execrelay/wire/_frame_py.py (Cython pure Python mode:
# setup.py compiles that file as execrelay.wire._frame_c with this .pxd beside it).  The
# compiled codec (_codec_c.pyx) cimports Frame, the checks and these C constants from here.
cimport cython

cdef enum:  # the body kinds and limits of _frame_py, as C constants for the compiled codec
    K_DATA = 5
    K_ACK = 6
    K_RESUME = 7
    K_RESET = 8
    K_HEARTBEAT = 9
    K_HANDSHAKE = 10
    MAX_SID = 128
    MAX_REASON = 256

# C-typed copies of the Python constants for the frame rules (assigned in _frame_py.py)
cdef unsigned int _VERSION
cdef int _DATA, _ACK, _RESUME, _RESET, _HEARTBEAT, _HANDSHAKE, _MAX_SID, _MAX_REASON


# (the freelist is declared in _frame_py.py: Cython ignores @cython.freelist in a .pxd)
cdef class Frame:
    cdef public int kind
    cdef public unsigned int version
    cdef public str stream_id
    cdef public unsigned int ack
    cdef public unsigned int ack_bits
    cdef public unsigned int seq
    cdef public unsigned int segment_index
    cdef public unsigned int segment_count
    cdef public bytes payload
    cdef public unsigned int next_seq
    cdef public str reason


@cython.locals(first=cython.long, last=cython.long)
cpdef int check_stream_id(str sid, Py_ssize_t n, Py_ssize_t at) except -1

cpdef int check_version(unsigned int version, Py_ssize_t at, object sid) except -1

cpdef int check_body(int kind, unsigned int index, unsigned int count, Py_ssize_t payload_len,
                     Py_ssize_t reason_len, Py_ssize_t at, object sid) except -1
