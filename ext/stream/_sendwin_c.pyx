# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of ``execrelay.stream._sendwin_py`` (send window, ack processing, RTO).

Same API and behaviour, including the floating-point RTO arithmetic (same operations in the
same order, IEEE doubles), so the differential tests can compare every output exactly.
"""
from libc.stdint cimport uint64_t, int64_t, int32_t
from libc.math cimport fabs

from execrelay.stream.errors import ProtocolViolation
from execrelay.stream.errors import RTO_INITIAL as _RTO0, RTO_MIN as _RTOMIN, RTO_MAX as _RTOMAX

cdef enum:  # compile-time constants (DEF is deprecated in Cython 3)
    SLOTS = 32      # in-flight seqs span at most max_segments <= 32: distinct mod 32
    MASK = 31


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
    cdef int32_t _sizes[SLOTS]
    cdef double _sent_at[SLOTS]
    cdef char _retx[SLOTS]
    cdef char _sacked[SLOTS]
    cdef char _fr[SLOTS]
    cdef list _fast

    def __init__(self, int64_t max_segments=32, int64_t max_bytes=2 * 1024 * 1024,
                 double rto_initial=_RTO0, double rto_min=_RTOMIN, double rto_max=_RTOMAX):
        cdef int i
        if not 1 <= max_segments <= 32:
            raise ValueError("max_segments must be 1..32 (ack_bits reach)")
        self.base = 1
        self.next_seq = 1
        self.in_flight = 0
        self.in_flight_bytes = 0
        self.sacked_count = 0
        self.max_segments = max_segments
        self.max_bytes = max_bytes
        self.rto = rto_initial
        self.srtt = -1.0
        self.rttvar = 0.0
        self.rto_min = rto_min
        self.rto_max = rto_max
        self._items = None          # created on the first push
        for i in range(SLOTS):
            self._sizes[i] = 0
            self._sent_at[i] = 0.0
            self._retx[i] = 0
            self._sacked[i] = 0
            self._fr[i] = 0
        self._fast = []

    cpdef bint can_send(self, int64_t nbytes):
        if self.next_seq - self.base >= self.max_segments:
            return False
        return self.in_flight_bytes == 0 or self.in_flight_bytes + nbytes <= self.max_bytes

    cpdef int64_t push(self, object item, int64_t nbytes, double now) except? -1:
        cdef int64_t seq = self.next_seq
        cdef int i = <int>(seq & MASK)
        if not 0 <= nbytes < 2**31:
            raise ValueError("segment size must be below 2 GiB")
        if self._items is None:
            self._items = [None] * SLOTS
        self._items[i] = item
        self._sizes[i] = <int32_t>nbytes
        self._sent_at[i] = now
        self._retx[i] = 0
        self._sacked[i] = 0
        self._fr[i] = 0
        self.next_seq = seq + 1
        self.in_flight += 1
        self.in_flight_bytes += nbytes
        return seq

    cpdef object get(self, int64_t seq):
        cdef int i
        if seq < self.base or seq >= self.next_seq:
            return None
        i = <int>(seq & MASK)
        if self._sacked[i]:
            return None
        return self._items[i]

    cdef void _sample(self, double r):
        cdef double rto
        if self.srtt < 0.0:
            self.srtt = r
            self.rttvar = r / 2.0
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * fabs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        rto = self.srtt + 4.0 * self.rttvar
        if rto < self.rto_min:
            rto = self.rto_min
        elif rto > self.rto_max:
            rto = self.rto_max
        self.rto = rto

    cpdef int on_ack(self, int64_t ack, uint64_t ack_bits, double now) except -1:
        cdef int64_t nxt = self.next_seq
        cdef int64_t limit, base, s, end, below, total
        cdef double sample_at = -1.0
        cdef int i, nfast = 0
        if ack >= nxt:
            raise ProtocolViolation(f"ack {ack} acknowledges a seq never sent (next seq {nxt})")
        if ack_bits:
            limit = nxt - ack - 1
            if limit < 32 and (ack_bits >> limit):
                raise ProtocolViolation(
                    f"ack_bits {ack_bits:#x} acknowledge seqs never sent (ack {ack}, next seq {nxt})")
        base = self.base
        while base <= ack:
            i = <int>(base & MASK)
            if self._sacked[i]:
                self._sacked[i] = 0
                self.sacked_count -= 1
            else:
                self.in_flight -= 1
                self.in_flight_bytes -= self._sizes[i]
                if not self._retx[i] and self._sent_at[i] > sample_at:
                    sample_at = self._sent_at[i]
                self._items[i] = None
            base += 1
        self.base = base
        if base == nxt:       # nothing in flight: drop the ring (idle streams stay small)
            self._items = None
        if ack_bits:
            s = base if base > ack + 1 else ack + 1
            end = ack + 33
            if end > nxt:
                end = nxt
            while s < end:
                if (ack_bits >> (s - ack - 1)) & 1:
                    i = <int>(s & MASK)
                    if not self._sacked[i]:
                        self._sacked[i] = 1
                        self.sacked_count += 1
                        self.in_flight -= 1
                        self.in_flight_bytes -= self._sizes[i]
                        if not self._retx[i] and self._sent_at[i] > sample_at:
                            sample_at = self._sent_at[i]
                        self._items[i] = None
                s += 1
        if sample_at >= 0.0:
            self._sample(now - sample_at)
        if self.sacked_count >= 3:
            below = 0
            total = self.sacked_count
            s = base
            while s < nxt:
                i = <int>(s & MASK)
                if self._sacked[i]:
                    below += 1
                elif total - below >= 3 and not self._fr[i]:
                    self._fr[i] = 1
                    self._retx[i] = 1
                    self._sent_at[i] = now
                    self._fast.append(s)
                    nfast += 1
                s += 1
        return nfast

    def take_fast(self):
        fast = self._fast
        self._fast = []
        return fast

    def expire(self, double now):
        cdef list out = []
        cdef double rto = self.rto
        cdef int64_t s = self.base
        cdef int64_t nxt = self.next_seq
        cdef int i
        if self.in_flight == 0:
            return out
        while s < nxt:
            i = <int>(s & MASK)
            if not self._sacked[i] and self._sent_at[i] + rto <= now:
                self._sent_at[i] = now
                self._retx[i] = 1
                self._fr[i] = 0
                out.append(s)
            s += 1
        if out:
            rto = rto * 2.0
            self.rto = rto if rto < self.rto_max else self.rto_max
        return out

    cpdef double next_deadline(self):
        cdef double first = -1.0, t
        cdef int64_t s = self.base
        cdef int64_t nxt = self.next_seq
        cdef int i
        if self.in_flight == 0:
            return -1.0
        while s < nxt:
            i = <int>(s & MASK)
            if not self._sacked[i]:
                t = self._sent_at[i]
                if first < 0.0 or t < first:
                    first = t
            s += 1
        return first + self.rto

    cpdef void mark_sent(self, int64_t seq, double now):
        cdef int i
        if self.base <= seq < self.next_seq:
            i = <int>(seq & MASK)
            self._sent_at[i] = now
            self._retx[i] = 1

    def unacked(self):
        cdef int64_t s
        return [s for s in range(self.base, self.next_seq) if not self._sacked[s & MASK]]

    def clear(self):
        self._items = None
        self.in_flight = 0
        self.in_flight_bytes = 0
