# cython: annotation_typing=False
"""The reliable-mode send window and ack processing, written once: the pure build runs this file
as is, and ``setup.py`` compiles the same file (typed by ``ext/stream/_sendwin_c.pxd``, Cython
"pure Python mode") into ``execrelay.stream._sendwin_c``.  The floating-point RTO arithmetic is
the same IEEE double operations in the same order either way.

Holds the in-flight segments (seq ``base`` .. ``next_seq - 1``) of one stream direction and
answers the questions the engine asks on every frame:

- ``can_send(n)``: the window of docs/relay-protocol.md §Reliable mode, at most ``max_segments`` seqs outstanding (counted as the span
  ``next_seq - base``, which also keeps every in-flight seq inside the 32-bit ``ack_bits``
  reach) and ``max_bytes`` unacknowledged bytes;
- ``on_ack(ack, ack_bits, now)``: release what the peer's cumulative ack and selective bits
  cover, take one RTT sample (Karn: never from a retransmitted segment), and queue fast
  retransmits (an unacked segment with >= 3 selectively acked segments above it, once per
  transmission).  Returns how many fast retransmits were queued (``take_fast()`` gets them).
  An ack of a seq never sent raises :class:`ProtocolViolation`.
- ``expire(now)``: RFC 6298 retransmission timeout, per segment, with exponential backoff.

Times are floats passed in by the caller; nothing here reads a clock.  Compiled, the per-slot
state (``_sizes``, ``_sent_at``, ``_retx``, ``_sacked``, ``_fr``) is C arrays: always index them
through ``self`` (a local alias would be a copy).
"""
from __future__ import annotations

from .errors import RTO_INITIAL, RTO_MAX, RTO_MIN, ProtocolViolation

_SLOTS = 32      # in-flight seqs span at most max_segments <= 32: distinct mod 32
_MASK = _SLOTS - 1
_NO_ITEMS: list[object] = []   # never written: stands in for the ring when nothing is in flight


class SendWindow:
    """Send side of one reliable stream: in-flight ring, ack/SACK processing, RTO timers."""

    base: int
    next_seq: int
    in_flight: int
    in_flight_bytes: int
    sacked_count: int
    max_segments: int
    max_bytes: int
    rto: float
    srtt: float
    rttvar: float
    rto_min: float
    rto_max: float
    _items: list[object] | None
    _sizes: list[int]
    _sent_at: list[float]
    _retx: list[bool]
    _sacked: list[bool]
    _fr: list[bool]
    _fast: list[int]

    __slots__ = ("base", "next_seq", "in_flight", "in_flight_bytes", "sacked_count",
                 "max_segments", "max_bytes", "rto", "srtt", "rttvar", "rto_min", "rto_max",
                 "_items", "_sizes", "_sent_at", "_retx", "_sacked", "_fr", "_fast")

    def __init__(self, max_segments: int = 32, max_bytes: int = 2 * 1024 * 1024,
                 rto_initial: float = RTO_INITIAL, rto_min: float = RTO_MIN,
                 rto_max: float = RTO_MAX) -> None:
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
        self._items = None   # created on the first push
        # 32 == _SLOTS, written as a literal so that Cython can fill the C arrays from the lists
        self._sizes = [0] * 32
        self._sent_at = [0.0] * 32
        self._retx = [False] * 32
        self._sacked = [False] * 32
        self._fr = [False] * 32
        self._fast = []

    def can_send(self, nbytes: int) -> bool:
        """Whether a segment of ``nbytes`` fits in the window now."""
        if self.next_seq - self.base >= self.max_segments:
            return False
        return self.in_flight_bytes == 0 or self.in_flight_bytes + nbytes <= self.max_bytes

    def push(self, item: object, nbytes: int, now: float) -> int:
        """Record a segment sent now; returns its seq."""
        if not 0 <= nbytes < 2**31:
            raise ValueError("segment size must be below 2 GiB")
        seq = self.next_seq
        i = seq & _MASK
        items = self._items
        if items is None:
            items = self._items = [None] * _SLOTS
        items[i] = item
        self._sizes[i] = nbytes
        self._sent_at[i] = now
        self._retx[i] = False
        self._sacked[i] = False
        self._fr[i] = False
        self.next_seq = seq + 1
        self.in_flight += 1
        self.in_flight_bytes += nbytes
        return seq

    def get(self, seq: int) -> object | None:
        """The segment ``seq`` if it is still unacknowledged, else None."""
        if seq < self.base or seq >= self.next_seq:
            return None
        i = seq & _MASK
        if self._sacked[i]:
            return None
        items = self._items
        return None if items is None else items[i]

    def _sample(self, r: float) -> None:
        if self.srtt < 0.0:
            self.srtt = r
            self.rttvar = r / 2.0
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        rto = self.srtt + 4.0 * self.rttvar
        if rto < self.rto_min:
            rto = self.rto_min
        elif rto > self.rto_max:
            rto = self.rto_max
        self.rto = rto

    def on_ack(self, ack: int, ack_bits: int, now: float) -> int:
        """Process one Ack (cumulative ``ack`` + selective ``ack_bits``); returns how many fast
        retransmits it queued."""
        nxt = self.next_seq
        if ack >= nxt:
            raise ProtocolViolation(f"ack {ack} acknowledges a seq never sent (next seq {nxt})")
        if ack_bits:
            limit = nxt - ack - 1
            if limit < 32 and ack_bits >> limit:
                raise ProtocolViolation(
                    f"ack_bits {ack_bits:#x} acknowledge seqs never sent (ack {ack}, next seq {nxt})")
        sample_at = -1.0
        base = self.base
        # a list, not a C array, so aliasing it is safe; None only when nothing is in flight,
        # and then neither loop below touches it
        items = self._items if self._items is not None else _NO_ITEMS
        while base <= ack:
            i = base & _MASK
            if self._sacked[i]:
                self._sacked[i] = False
                self.sacked_count -= 1
            else:
                self.in_flight -= 1
                self.in_flight_bytes -= self._sizes[i]
                if not self._retx[i] and self._sent_at[i] > sample_at:
                    sample_at = self._sent_at[i]
                items[i] = None
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
                    i = s & _MASK
                    if not self._sacked[i]:
                        self._sacked[i] = True
                        self.sacked_count += 1
                        self.in_flight -= 1
                        self.in_flight_bytes -= self._sizes[i]
                        if not self._retx[i] and self._sent_at[i] > sample_at:
                            sample_at = self._sent_at[i]
                        items[i] = None
                s += 1
        if sample_at >= 0.0:
            self._sample(now - sample_at)
        nfast = 0
        if self.sacked_count >= 3:
            below = 0
            total = self.sacked_count
            s = base
            while s < nxt:
                i = s & _MASK
                if self._sacked[i]:
                    below += 1
                elif total - below >= 3 and not self._fr[i]:
                    self._fr[i] = True
                    self._retx[i] = True
                    self._sent_at[i] = now
                    self._fast.append(s)
                    nfast += 1
                s += 1
        return nfast

    def take_fast(self) -> list[int]:
        """The seqs queued for fast retransmit by ``on_ack`` since the last call."""
        fast = self._fast
        self._fast = []
        return fast

    def expire(self, now: float) -> list[int]:
        """Seqs whose retransmission timer ran out (marked resent now); backs the RTO off once."""
        out: list[int] = []
        if self.in_flight == 0:
            return out
        rto = self.rto
        s = self.base
        nxt = self.next_seq
        while s < nxt:
            i = s & _MASK
            if not self._sacked[i] and self._sent_at[i] + rto <= now:
                self._sent_at[i] = now
                self._retx[i] = True
                self._fr[i] = False
                out.append(s)
            s += 1
        if out:
            rto = rto * 2.0
            self.rto = rto if rto < self.rto_max else self.rto_max
        return out

    def next_deadline(self) -> float:
        """When the earliest unacked segment times out; -1.0 when nothing is in flight."""
        if self.in_flight == 0:
            return -1.0
        first = -1.0
        s = self.base
        nxt = self.next_seq
        while s < nxt:
            i = s & _MASK
            if not self._sacked[i]:
                t = self._sent_at[i]
                if first < 0.0 or t < first:
                    first = t
            s += 1
        return first + self.rto

    def mark_sent(self, seq: int, now: float) -> None:
        """A retransmission of ``seq`` went out now (Resume resend)."""
        if self.base <= seq < self.next_seq:
            i = seq & _MASK
            self._sent_at[i] = now
            self._retx[i] = True

    def unacked(self) -> list[int]:
        """Every in-flight seq not yet acknowledged, ascending."""
        return [s for s in range(self.base, self.next_seq) if not self._sacked[s & _MASK]]

    def clear(self) -> None:
        """Forget every in-flight segment (stream teardown)."""
        self._items = None
        self.in_flight = 0
        self.in_flight_bytes = 0
