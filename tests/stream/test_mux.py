"""Multiplexer behaviour: stream creation/reaping, callbacks, disconnect/reconnect, output
batching, tombstones, per-stream memory."""
from __future__ import annotations

import gc
import tracemalloc

import pytest

from execrelay import wire
from execrelay.stream import (ACCEPTOR, IMPLEMENTATION, LEGACY, OPENER, RELIABLE, Multiplexer,
                              StreamClosed)
from execrelay.stream.mux import TOMBSTONE_SECONDS


def test_callbacks_and_reentrant_send():
    log = []
    mux = None

    def on_message(sid, payload):
        log.append(("msg", sid, payload))
        mux.send(sid, b"echo:" + payload)           # re-entrant, from inside feed()

    mux = Multiplexer(ACCEPTOR, on_message=on_message,
                      on_open=lambda sid, mode: log.append(("open", sid, mode)),
                      on_close=lambda sid, r, peer: log.append(("close", sid, r, peer)))
    mux.feed(wire.encode_data("a", 0, 0, 0, b"x"), 0.0)
    mux.feed(wire.encode_control(wire.RESUME, "b", next_seq=1), 0.0)
    mux.feed(wire.encode_data("b", 1, 0, 0, b"y"), 0.0)
    assert log == [("open", "a", "legacy"), ("msg", "a", b"x"), ("open", "b", "reliable"),
                   ("msg", "b", b"y")]
    out = [wire.decode(f) for f in mux.poll_output(0.0)]
    assert [(f.stream_id, f.kind, f.payload) for f in out] == [
        ("a", wire.DATA, b"echo:x"), ("b", wire.RESUME, b""), ("b", wire.DATA, b"echo:y")]
    assert mux.events == []
    mux.reset("a", "bye")
    assert log[-1] == ("close", "a", "bye", False)
    (f,) = [wire.decode(b) for b in mux.poll_output(0.0)]
    assert (f.kind, f.stream_id, f.reason) == (wire.RESET, "a", "bye")
    assert "a" not in mux.streams and len(mux) == 1


def test_round_robin_order_and_max_bytes():
    mux = Multiplexer(ACCEPTOR)
    for sid in "abc":
        mux.feed(wire.encode_data(sid, 0, 0, 0, b"req"), 0.0)
    for sid, n in (("a", 3), ("b", 1), ("c", 2)):
        for i in range(n):
            mux.send(sid, b"%s%d" % (sid.encode(), i))
    out = [wire.decode(f).payload for f in mux.poll_output(0.0, max_bytes=1)]
    assert out == [b"a0"]                                # stops once max_bytes is reached
    out = [wire.decode(f).payload for f in mux.poll_output(0.0)]
    assert out == [b"b0", b"c0", b"a1", b"c1", b"a2"]    # one frame per stream per turn
    assert not mux.has_output()


def test_disconnect_ends_legacy_streams_reconnect_resumes_reliable():
    mux = Multiplexer(ACCEPTOR)
    mux.feed(wire.encode_data("leg", 0, 0, 0, b"x"), 0.0)
    mux.feed(wire.encode_control(wire.RESUME, "rel", next_seq=1), 0.0)
    mux.poll_output(0.0)
    mux.send("rel", b"unacked")
    mux.send("leg", b"lost")
    mux.on_disconnect()
    assert ("close", "leg", ("disconnected", True)) in mux.events
    with pytest.raises(StreamClosed):
        mux.send("leg", b"more")
    mux.poll_output(0.1)                                 # written into the dead socket: lost
    mux.on_reconnect(0.2)
    out = [wire.decode(f) for f in mux.poll_output(0.2)]
    assert [(f.stream_id, f.kind, f.next_seq, f.seq, f.payload) for f in out] == [
        ("rel", wire.RESUME, 2, 0, b""), ("rel", wire.DATA, 0, 1, b"unacked")]


def test_opener_ignores_unknown_streams_and_duplicate_open():
    mux = Multiplexer(OPENER)
    mux.feed(wire.encode_data("zz", 0, 0, 0, b"x"), 0.0)
    assert mux.events == [] and len(mux) == 0 and mux.unrouted_frames == 1
    mux.open_stream("s", 0.0, RELIABLE)
    with pytest.raises(ValueError):
        mux.open_stream("s", 0.0, LEGACY)


def test_tombstone_repeats_reset_then_expires():
    mux = Multiplexer(ACCEPTOR)
    mux.feed(wire.encode_control(wire.RESUME, "r", next_seq=1), 0.0)
    mux.feed(wire.encode_control(wire.RESET, "r", reason="gone"), 0.0)
    mux.poll_output(0.0)
    mux.feed(wire.encode_data("r", 3, 0, 0, b"late"), 1.0)
    (f,) = [wire.decode(b) for b in mux.poll_output(1.0)]
    assert (f.kind, f.reason) == (wire.RESET, "gone")
    mux.tick(TOMBSTONE_SECONDS + 1)
    mux.feed(wire.encode_data("r", 1, 0, 0, b"new"), TOMBSTONE_SECONDS + 2)
    assert mux.events[-2:] == [("open", "r", "reliable"), ("message", "r", b"new")]


def test_legacy_streams_have_no_timers():
    mux = Multiplexer(ACCEPTOR)
    for i in range(100):
        mux.feed(wire.encode_data(f"s{i}", 0, 0, 0, b"x"), 0.0)
    assert mux.next_deadline() is None
    mux.tick(1e9)
    assert mux.poll_output(1e9) == []


@pytest.mark.parametrize("mode,budget", [("legacy", 1024), ("reliable", 2048)])
def test_idle_stream_memory(mode, budget):
    """P4: an idle stream must stay small (10,000 streams per executor)."""
    if mode == "legacy":
        frames = [wire.encode_data(f"3f2b8a9e-1c4d-4e5f-8a9b-{i:012d}", 0, 0, 0, b"{}")
                  for i in range(2000)]
    else:
        frames = [wire.encode_control(wire.RESUME, f"3f2b8a9e-1c4d-4e5f-8a9b-{i:012d}",
                                      next_seq=1) for i in range(2000)]
    mux = Multiplexer(ACCEPTOR, on_message=lambda s, p: None, on_open=lambda s, m: None)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for f in frames:
            mux.feed(f, 0.0)
        for sid in list(mux.streams):
            mux.send(sid, b'{"id":1,"result":{}}')
        mux.poll_output(0.0)
        if mode == "reliable":                           # the peer acks the reply
            for sid in list(mux.streams):
                mux.feed(wire.encode_control(wire.ACK, sid, 1, 0), 0.001)
        mux.tick(0.01)
        mux.poll_output(0.01)
        mux.next_deadline()
        gc.collect()
        per = (tracemalloc.get_traced_memory()[0] - before) / len(frames)
    finally:
        tracemalloc.stop()
    if IMPLEMENTATION == "pure" and mode == "reliable":
        budget *= 3   # the pure twins keep their windows in Python lists; the budget is for
                      # the accelerated build (the pure one is the fallback, not the product)
    assert per <= budget, f"{per:.0f} bytes per idle {mode} stream"


def test_lossy_open_seq2_first_is_a_reliable_stream_on_probation():
    """P2: the opener's Resume{1} and seq 1 were lost, seq 2 (ack 0: it has received
    nothing) arrives first -> a reliable stream; seq 1 delivered first once it is resent."""
    mux = Multiplexer(ACCEPTOR)
    mux.feed(wire.encode_data("n", 2, 0, 0, b"second"), 0.0)
    assert mux.events == [("open", "n", "reliable")]
    mux.feed(wire.encode_data("n", 1, 0, 0, b"first"), 0.6)
    assert [e[2] for e in mux.events[1:]] == [b"first", b"second"]
    mux.tick(10.0)                                    # probation passed: stream stays
    assert not mux.streams["n"].closed


def test_seq2_first_without_seq1_is_reset_after_probation():
    """The same first frame from a legacy harness mid-stream (executor restart): seq 1 never
    comes, so the stream is reset with unknown_stream after PROBATION_SECONDS -- never a hang."""
    from execrelay.stream.errors import PROBATION_SECONDS
    mux = Multiplexer(ACCEPTOR)
    mux.feed(wire.encode_data("n", 7, 0, 0, b"mid-stream"), 0.0)
    mux.poll_output(0.0)
    t = mux.next_deadline()
    while t is not None and t < PROBATION_SECONDS:
        mux.tick(t)
        mux.poll_output(t)
        t = mux.next_deadline()
    assert t == PROBATION_SECONDS
    mux.tick(t)
    out = [wire.decode(f) for f in mux.poll_output(t)]
    assert [(f.kind, f.reason) for f in out] == [(wire.RESET, "unknown_stream")]
    assert mux.events[-1] == ("close", "n", ("unknown_stream", False)) and len(mux) == 0


def test_restarted_executor_refuses_streams_it_never_had():
    """A peer that already got our Data (ack > 0) or resumes past seq 1 talks to a stream this
    side never had (executor restart): Reset 'unknown_stream' at once instead of hanging."""
    mux = Multiplexer(ACCEPTOR)
    mux.feed(wire.encode_data("old", 5, 3, 0, b"x"), 0.0)
    mux.feed(wire.encode_control(wire.RESUME, "old2", next_seq=7), 0.0)
    out = [wire.decode(f) for f in mux.poll_output(0.0)]
    assert [(f.stream_id, f.kind, f.reason) for f in out] == [
        ("old", wire.RESET, "unknown_stream"), ("old2", wire.RESET, "unknown_stream")]
    assert len(mux) == 0 and mux.events == []


def test_noise_handshake_on_a_plaintext_executor_is_reset_at_once():
    """A 0.171 Noise harness (Resume{0}, then a Handshake) on an executor that serves plaintext
    streams only: Reset with 0.171's Noise failure reason instead of silence (the harness would
    wait for message 2 forever)."""
    mux = Multiplexer(ACCEPTOR)
    mux.feed(wire.encode_control(wire.RESUME, "n1", next_seq=0), 0.0)
    mux.feed(wire.encode(wire.Frame(wire.HANDSHAKE, "n1", payload=b"\x01" * 64)), 0.0)
    out = [wire.decode(f) for f in mux.poll_output(0.0)]
    assert [(f.stream_id, f.kind, f.reason) for f in out] == [("n1", wire.RESET, "noise_relay_protocol_error")]
    assert len(mux) == 0 and mux.events == []
