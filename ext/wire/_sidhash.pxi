# The stream-id slot hash of the two stream-id caches: the codec's (ext/wire/_codec_c.pyx) and
# the rendezvous frame path's (ext/rendezvous/_rdvfast_c.pyx). An include file (inline C, no
# module of its own): both modules `include` it and mask the result to their table size.
# The including module cimports uint8_t, uint32_t, uint64_t and memcpy.


cdef inline uint32_t sid_hash(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """Cheap slot hash: length plus the first and last 8 bytes (a hit is verified with memcmp,
    so collisions only cost a miss).  UUID-like ids differ early and late, which this sees."""
    cdef uint64_t a = 0, b = 0
    if n >= 8:
        memcpy(&a, p, 8)
        memcpy(&b, p + n - 8, 8)
    else:
        memcpy(&a, p, n)
    # murmur3's fmix64: every input bit reaches the low bits the caller keeps (a bare
    # multiply only carries differences upward: ids that differ in their last bytes, e.g.
    # "stream-0001" and "stream-0002", all landed in one slot)
    a = a ^ (b * 0x9E3779B97F4A7C15ULL) ^ <uint64_t>n
    a ^= a >> 33
    a *= 0xFF51AFD7ED558CCDULL
    a ^= a >> 33
    return <uint32_t>a
