"""Handshake frames through the sans-I/O stream engine and multiplexer (docs/noise.md
§Endpoints): when they go out, how a reliable opener repeats its own, how they are routed."""
from __future__ import annotations

import pytest

from execrelay import wire
from execrelay.stream import ACCEPTOR, LEGACY, OPENER, PENDING, Multiplexer, StreamClosed
from execrelay.stream.errors import RTO_INITIAL

pytestmark = pytest.mark.timeout(10)

HS1, HS2 = b"\x01" * 40, b"\x02" * 40


def kinds(frames: list[bytes]) -> list[tuple[int, bytes | int]]:
    out = []
    for f in map(wire.decode, frames):
        out.append((f.kind, f.payload if f.kind == wire.HANDSHAKE else f.next_seq))
    return out


def test_legacy_opener_sends_resume0_then_its_handshake_once() -> None:
    mux = Multiplexer(OPENER)
    mux.open_stream("s", 0.0, LEGACY)
    mux.send_handshake("s", HS1, 0.0)
    assert kinds(mux.poll_output(0.0)) == [(wire.RESUME, 0), (wire.HANDSHAKE, HS1)]
    mux.tick(60.0)
    assert mux.poll_output(60.0) == [] and mux.next_deadline() is None


def test_reliable_opener_holds_then_repeats_its_handshake_until_answered() -> None:
    mux = Multiplexer(OPENER, on_handshake=lambda sid, p: got.append((sid, p)))
    got: list[tuple[str, bytes]] = []
    mux.open_stream("s", 0.0, PENDING)
    mux.send_handshake("s", HS1, 0.0)
    assert kinds(mux.poll_output(0.0)) == [(wire.RESUME, 1)]          # held: no answer yet
    mux.feed(wire.encode_control(wire.RESUME, "s", next_seq=1), 0.1)  # the acceptor answers
    assert kinds(mux.poll_output(0.1)) == [(wire.HANDSHAKE, HS1)]
    t = mux.next_deadline()
    assert t is not None and abs(t - (0.1 + RTO_INITIAL)) < 1e-9
    mux.tick(t)
    assert kinds(mux.poll_output(t)) == [(wire.HANDSHAKE, HS1)]       # repeated ...
    t2 = mux.next_deadline()
    assert t2 is not None and t2 - t == pytest.approx(2 * RTO_INITIAL)  # ... with backoff
    mux.on_disconnect()
    mux.on_reconnect(t + 0.1)                                         # and after a reconnect
    assert (wire.HANDSHAKE, HS1) in kinds(mux.poll_output(t + 0.1))
    mux.feed(wire.encode(wire.Frame.handshake("s", HS2)), t + 0.2)    # the answer
    assert got == [("s", HS2)]
    mux.tick(t + 60.0)
    assert all(k != wire.HANDSHAKE for k, _ in kinds(mux.poll_output(t + 60.0)))


def test_acceptor_opens_a_legacy_noise_stream_on_a_handshake() -> None:
    events: list = []
    mux = Multiplexer(ACCEPTOR, on_open=lambda sid, mode: events.append(("open", sid, mode)),
                      on_handshake=lambda sid, p: events.append(("hs", sid, p)))
    mux.feed(wire.encode_control(wire.RESUME, "n", next_seq=0), 0.0)  # creates nothing
    mux.feed(wire.encode(wire.Frame.handshake("n", HS1)), 0.0)
    assert events == [("open", "n", "legacy"), ("hs", "n", HS1)]
    mux.send_handshake("n", HS2, 0.0)
    mux.send("n", b"record-0")
    out = [wire.decode(f) for f in mux.poll_output(0.0)]
    assert [(f.kind, f.seq if f.kind == wire.DATA else f.payload) for f in out] == \
        [(wire.HANDSHAKE, HS2), (wire.DATA, 0)]                     # records from seq 0
    mux.reset("n", "noise_relay_protocol_error")
    mux.poll_output(0.0)
    # a stray record of the dead stream gets its Reset again: no new (plaintext) stream
    mux.feed(wire.encode_data("n", 1, 0, 0, b"record-1"), 0.1)
    out = [wire.decode(f) for f in mux.poll_output(0.1)]
    assert [(f.kind, f.reason) for f in out] == [(wire.RESET, "noise_relay_protocol_error")]
    assert [e[0] for e in events].count("open") == 1


def test_send_handshake_errors() -> None:
    mux = Multiplexer(OPENER)
    with pytest.raises(StreamClosed):
        mux.send_handshake("nope", HS1, 0.0)
    mux.open_stream("s", 0.0, LEGACY)
    with pytest.raises(ValueError):
        mux.send_handshake("s", b"", 0.0)
    mux.reset("s", "bye")
    with pytest.raises(StreamClosed):
        mux.send_handshake("s", HS1, 0.0)
