"""Per-stream outbound bound (issue 13, item 2, sans-I/O part): the multiplexer reports a
stream unwritable once its queued bytes pass STREAM_HIGH_WATER and writable again at
STREAM_LOW_WATER; other streams are not affected."""
from __future__ import annotations

from execrelay import wire
from execrelay.stream import ACCEPTOR, Multiplexer
from execrelay.stream.errors import STREAM_HIGH_WATER, STREAM_LOW_WATER


def _mux(events: list) -> Multiplexer:
    return Multiplexer(ACCEPTOR, on_message=lambda *a: None, on_open=lambda *a: None,
                       on_close=lambda *a: None,
                       on_writable=lambda sid, ok: events.append((sid, ok)))


def test_legacy_stream_goes_unwritable_and_back():
    events: list = []
    mux = _mux(events)
    for sid in ("a", "b"):
        mux.feed(wire.encode_data(sid, 0, 0, 0, b"req"), 0.0)
    chunk = b"x" * 100_000
    while mux.writable("a"):
        mux.send("a", chunk)
    assert events == [("a", False)]
    assert STREAM_HIGH_WATER < mux.buffered("a") <= STREAM_HIGH_WATER + len(chunk) + 256
    mux.send("b", b"small")
    assert mux.writable("b")
    while mux.buffered("a") > STREAM_LOW_WATER:
        assert mux.writable("a") is False
        mux.poll_output(0.0, max_bytes=1)
    assert events == [("a", False), ("a", True)] and mux.writable("a")


def test_reliable_stream_stays_unwritable_until_acks_open_the_window():
    events: list = []
    mux = _mux(events)
    mux.feed(wire.encode_data("r", 1, 0, 0, b"req"), 0.0)
    big = b"y" * (4 * 1024 * 1024)
    mux.send("r", big)
    assert events == [("r", False)]
    mux.poll_output(0.0)                   # the send window fills; the rest stays queued
    assert not mux.writable("r") and mux.buffered("r") > STREAM_LOW_WATER
    eng = mux.stream("r")
    while mux.buffered("r") > 0:
        mux.feed(wire.encode_control(wire.ACK, "r", ack=eng._sw.next_seq - 1), 0.0)
        mux.poll_output(0.0)
    assert events == [("r", False), ("r", True)]
    assert mux.buffered("r") == 0
