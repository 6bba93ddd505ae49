# cython: annotation_typing=False
"""The reliable-mode receive window, written once: the pure build runs this file as is, and
``setup.py`` compiles the same file (typed by ``ext/stream/_window_c.pxd``, Cython "pure Python
mode") into ``execrelay.stream._window_c``.

Tracks the cumulative ``ack`` (every seq 1..ack received), a 64-bit map of the out-of-order
seqs held in the reorder buffer (bit i <-> seq ack+1+i, so ``ack_bits`` is its low 32 bits,
exactly the formula of docs/relay-protocol.md §Reliable mode), and up to 64 buffered segments /
1 MiB.  The caller stores whatever object it likes per segment (the engine stores the decoded
Frame: no extra allocation).

Protocol per received segment::

    code = w.offer(seq, item, nbytes)
    if code == IN_ORDER:            # seq == ack+1: ack already advanced, process `item` now
        process(item)
        while (nxt := w.pop_next()) is not None:   # drain what the gap was holding back
            process(nxt)
    # BUFFERED: held; DUPLICATE: seen before (drop); DROPPED: beyond 64 seqs / 1 MiB (drop)

Compiled, ``_sizes`` is a C array: always index it through ``self`` (a local alias would be a
copy).
"""
from __future__ import annotations

# The codes are exported; the compiled build reads the _-prefixed copies, typed C globals (see
# the .pxd), so returning one costs no Python lookup.
IN_ORDER = _IN_ORDER = 0
BUFFERED = _BUFFERED = 1
DUPLICATE = _DUPLICATE = 2
DROPPED = _DROPPED = 3

_SLOTS = 64      # the C array sizes in ext/stream/_window_c.pxd must match
_MASK = _SLOTS - 1


class RecvWindow:
    """Receive window of one reliable stream: cumulative ack, selective bits, reorder buffer."""

    ack: int
    buffered_bytes: int
    buffered_count: int
    max_bytes: int
    _present: int
    _slots: list[object] | None
    _sizes: list[int]

    __slots__ = ("ack", "_present", "_slots", "_sizes", "buffered_bytes", "buffered_count",
                 "max_bytes")

    def __init__(self, max_bytes: int = 1024 * 1024) -> None:
        if not 0 <= max_bytes < 2**31:
            raise ValueError("max_bytes must be below 2 GiB")
        self.ack = 0
        self._present = 0
        self._slots = None   # created on the first out-of-order segment
        self._sizes = [0] * 64   # _SLOTS, a literal: Cython fills the C array from it
        self.buffered_bytes = 0
        self.buffered_count = 0
        self.max_bytes = max_bytes

    def offer(self, seq: int, item: object, nbytes: int) -> int:
        """Classify one received segment; buffers it when it is out of order and fits."""
        ack = self.ack
        if seq <= ack:
            return _DUPLICATE
        off = seq - ack - 1
        if off == 0:
            self.ack = seq
            self._present >>= 1
            return _IN_ORDER
        if off >= _SLOTS:
            return _DROPPED
        bit = 1
        bit <<= off      # compiled: an unsigned 64-bit shift (bit is uint64_t)
        if self._present & bit:
            return _DUPLICATE
        if self.buffered_bytes + nbytes > self.max_bytes:
            return _DROPPED
        i = seq & _MASK
        if self._slots is None:
            self._slots = [None] * _SLOTS
        self._slots[i] = item
        self._sizes[i] = nbytes
        self._present |= bit
        self.buffered_bytes += nbytes
        self.buffered_count += 1
        return _BUFFERED

    def pop_next(self) -> object | None:
        """Return (and release) the buffered segment ack+1 if present, advancing ack."""
        if not self._present & 1:
            return None
        seq = self.ack + 1
        i = seq & _MASK
        slots = self._slots
        assert slots is not None   # a present bit means a buffered segment
        item = slots[i]
        slots[i] = None
        self.buffered_bytes -= self._sizes[i]
        self.buffered_count -= 1
        self.ack = seq
        self._present >>= 1
        return item

    @property
    def ack_bits(self) -> int:
        """Selective acks (docs/relay-protocol.md §Reliable mode): bit i acknowledges seq
        ack+1+i (bit 0 is always 0 once drained)."""
        return self._present & 0xFFFFFFFF

    def clear(self) -> None:
        """Drop every buffered segment (stream teardown)."""
        self._slots = None
        self._present = 0
        self.buffered_bytes = 0
        self.buffered_count = 0

    def bench_inorder(self, n: int) -> int:
        """Benchmark helper: n in-order offers + ack_bits reads in one loop (compiled, a C loop)."""
        total = 0
        for k in range(n):  # noqa: B007 - typed loop counter when compiled
            self.offer(self.ack + 1, None, 100)
            total += self._present & 0xFFFFFFFF
        return total
