"""Exact-outcome unit tests of the hot-path pieces, run against each twin."""
from __future__ import annotations

import pytest

from execrelay.stream.errors import ProtocolViolation


def test_window_in_order_dup_reorder(twin):
    m = twin("window")
    w = m.RecvWindow()
    assert w.offer(1, "a", 10) == m.IN_ORDER and w.ack == 1 and w.ack_bits == 0
    assert w.offer(1, "a", 10) == m.DUPLICATE
    assert w.offer(3, "c", 10) == m.BUFFERED
    assert w.ack_bits == 0b10           # bit i <-> ack+1+i: seq 3 = ack(1)+1+1
    assert w.offer(3, "c", 10) == m.DUPLICATE
    assert w.offer(5, "e", 10) == m.BUFFERED
    assert w.ack_bits == 0b1010
    assert w.pop_next() is None
    assert w.offer(2, "b", 10) == m.IN_ORDER and w.ack == 2
    assert w.pop_next() == "c" and w.ack == 3
    assert w.pop_next() is None
    assert w.ack_bits == 0b1 << 1 and w.buffered_count == 1 and w.buffered_bytes == 10
    assert w.offer(4, "d", 10) == m.IN_ORDER
    assert w.pop_next() == "e" and w.ack == 5 and w.buffered_count == 0 and w.buffered_bytes == 0


def test_window_bounds(twin):
    m = twin("window")
    w = m.RecvWindow(max_bytes=1000)
    assert w.offer(65, "x", 1) == m.DROPPED       # ack+65: beyond 64
    assert w.offer(64, "x", 1) == m.BUFFERED      # ack+64: the last slot
    assert w.offer(2, "y", 999) == m.BUFFERED
    assert w.offer(3, "z", 1) == m.DROPPED        # 1 MiB-style byte bound
    assert w.buffered_bytes == 1000 and w.buffered_count == 2
    assert w.offer(1, "big", 10 ** 9) == m.IN_ORDER  # in-order is never refused


def test_sendwin_cumulative_and_sack(twin):
    m = twin("sendwin")
    s = m.SendWindow()
    for i in range(5):
        assert s.push(f"s{i+1}", 100, 0.0) == i + 1
    assert s.in_flight == 5 and s.in_flight_bytes == 500
    assert s.on_ack(2, 0, 0.1) == 0
    assert s.base == 3 and s.in_flight == 3 and s.get(2) is None and s.get(3) == "s3"
    assert s.srtt == pytest.approx(0.1)
    # seqs 4 and 5 selectively acked (bits 1 and 2 relative to ack=2)
    assert s.on_ack(2, 0b110, 0.2) == 0
    assert s.in_flight == 1 and s.in_flight_bytes == 100 and s.unacked() == [3]
    assert s.on_ack(5, 0, 0.3) == 0 and s.in_flight == 0 and s.base == 6


def test_sendwin_fast_retransmit_once(twin):
    m = twin("sendwin")
    s = m.SendWindow()
    for _ in range(6):
        s.push(b"x", 1, 0.0)
    assert s.on_ack(0, 0b110, 0.01) == 0            # 2 above seq 1: not yet
    assert s.on_ack(0, 0b1110, 0.02) == 1           # 3 above seq 1: fast retransmit 1
    assert s.take_fast() == [1]
    assert s.on_ack(0, 0b11110, 0.03) == 0          # only once per transmission
    assert s.take_fast() == []


def test_sendwin_window_and_violations(twin):
    m = twin("sendwin")
    s = m.SendWindow()
    for _ in range(32):
        assert s.can_send(60 * 1024)
        s.push(b"x", 60 * 1024, 0.0)
    assert not s.can_send(1)
    with pytest.raises(ProtocolViolation, match="never sent"):
        s.on_ack(33, 0, 0.0)
    s2 = m.SendWindow()
    s2.push(b"x", 1, 0.0)
    s2.push(b"x", 1, 0.0)
    with pytest.raises(ProtocolViolation, match="ack_bits"):
        s2.on_ack(0, 0b100, 0.0)                      # bit 2 = seq 3, never sent
    b = m.SendWindow(max_bytes=1000)
    b.push(b"x", 900, 0.0)
    assert not b.can_send(101) and b.can_send(100)


def test_sendwin_rto_backoff(twin):
    m = twin("sendwin")
    s = m.SendWindow()
    s.push(b"x", 1, 1.0)
    assert s.next_deadline() == 1.5
    assert s.expire(1.49) == []
    assert s.expire(1.5) == [1] and s.rto == 1.0
    assert s.next_deadline() == 2.5
    assert s.expire(2.5) == [1] and s.rto == 2.0
    for _ in range(10):
        s.expire(100.0 + s.rto * 100)
    assert s.rto == 10.0                              # ceiling
    s.on_ack(1, 0, 200.0)                             # retransmitted: no sample (Karn)
    assert s.srtt == -1.0 and s.rto == 10.0
    s.push(b"y", 1, 300.0)
    s.on_ack(2, 0, 300.001)                           # sample 1 ms -> floor 50 ms
    assert s.rto == 0.05


def test_reasm_exact(twin):
    m = twin("reasm")
    r = m.Reassembler(max_segment=4, max_message=10)
    p = b"abcd"
    assert r.feed(0, 1, p) is p                       # unsplit: returned as is
    assert r.feed(0, 3, b"abcd") is None
    assert r.feed(1, 3, b"efgh") is None
    assert r.feed(2, 3, b"ij") == b"abcdefghij"
    assert not r.active
    for bad, match in [((1, 2, b"a"), "does not start"), ((0, 4, b"a"), "segments exceeds"),
                       ((0, 1, b"abcde"), "exceeds 4"), ((2, 2, b"a"), ">= segment_count")]:
        with pytest.raises(ProtocolViolation, match=match):
            m.Reassembler(max_segment=4, max_message=10).feed(*bad)
    r.feed(0, 3, b"abcd")
    with pytest.raises(ProtocolViolation, match="changed from 3 to 2"):
        r.feed(1, 2, b"x")
    r = m.Reassembler(max_segment=4, max_message=10)
    r.feed(0, 3, b"abcd")
    with pytest.raises(ProtocolViolation, match="overlaps"):
        r.feed(0, 3, b"x")
    r = m.Reassembler(max_segment=4, max_message=10)
    r.feed(0, 3, b"abcd")
    r.feed(1, 3, b"efgh")
    with pytest.raises(ProtocolViolation, match="message exceeds 10"):
        r.feed(2, 3, b"ijk")


def test_reasm_64mib_limit_real_sizes(twin):
    m = twin("reasm")
    seg = b"\x01" * (60 * 1024)
    r = m.Reassembler()
    count = 1093                                      # ceil(64 MiB / 60 KiB)
    for i in range(count - 1):
        assert r.feed(i, count, seg) is None
    with pytest.raises(ProtocolViolation, match="message exceeds 67108864"):
        r.feed(count - 1, count, seg)
    r.clear()
    big = bytes(range(256)) * (16 * 1024 * 1024 // 256)
    n = -(-len(big) // (60 * 1024))
    out = None
    for i in range(n):
        out = r.feed(i, n, big[i * 61440:(i + 1) * 61440])
    assert out == big


def test_reasm_unsplit_message_is_bytes(twin):
    """Both twins deliver ``bytes``: an unsplit message given as another buffer is copied."""
    m = twin("reasm")
    payload = b"abc"
    assert m.Reassembler().feed(0, 1, payload) is payload
    out = m.Reassembler().feed(0, 1, memoryview(b"xyz"))
    assert type(out) is bytes and out == b"xyz"
