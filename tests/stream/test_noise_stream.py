"""stream.noise_stream: a Noise relay stream as 0.171 frames it, our two ends over frames."""
from __future__ import annotations

import pytest

from execrelay import wire
from execrelay.stream.noise import NoiseError, StaticKeyPair
from execrelay.stream.noise_stream import ExecutorNoiseStream, HarnessNoiseStream

SID = "0f0e0d0c-0b0a-4908-8706-050403020100"


@pytest.fixture(scope="module")
def keys() -> tuple[StaticKeyPair, StaticKeyPair]:
    return StaticKeyPair.generate(), StaticKeyPair.generate()


def pair(keys, registration: str = "reg-1") -> tuple[HarnessNoiseStream, ExecutorNoiseStream, list[bytes]]:
    harness, executor = keys
    h = HarnessNoiseStream(SID, harness, executor.public, "env", registration, "auth-1")
    e = ExecutorNoiseStream(SID, executor, "env", "reg-1")
    return h, e, h.start()


def deliver(frames: list[bytes], to) -> list[bytes]:
    out: list[bytes] = []
    for raw in frames:
        out += to.receive(wire.decode(raw))
    return out


def test_the_0171_frame_sequence(keys) -> None:
    h, e, opening = pair(keys)
    first, second = (wire.decode(f) for f in opening)
    assert (first.kind, first.next_seq) == (wire.RESUME, 0)
    assert second.kind == wire.HANDSHAKE and len(second.payload) == 3568 + len("auth-1")
    assert deliver(opening, e) == [] and e.request is not None
    assert e.request.initiator_key == keys[0].public and e.request.authorization == b"auth-1"
    [reply] = e.accept()
    assert wire.decode(reply).kind == wire.HANDSHAKE and len(wire.decode(reply).payload) == 3424
    assert deliver([reply], h) == [] and h.established and e.established
    frames = h.send(b'{"id":1,"method":"initialize","params":{"clientName":"t"}}')
    f = wire.decode(frames[0])
    assert (f.kind, f.seq, f.segment_count, f.ack, f.ack_bits) == (wire.DATA, 0, 1, 0, 0)
    assert deliver(frames, e) == [b'{"id":1,"method":"initialize","params":{"clientName":"t"}}']
    assert deliver(e.send(b'{"id":1,"result":{}}'), h) == [b'{"id":1,"result":{}}']
    assert [wire.decode(x).seq for x in h.send(b"[" + b"1," * 70000 + b"1]")] == [1, 2, 3]


def test_refusal_and_peer_reset(keys) -> None:
    h, e, opening = pair(keys)
    deliver(opening, e)
    reset = wire.decode(e.refuse())
    assert (reset.kind, reset.reason) == (wire.RESET, "noise_relay_protocol_error")
    assert e.closed
    assert deliver([wire.encode(reset)], h) == [] and h.closed
    assert h.close_reason == "noise_relay_protocol_error" and not h.established
    with pytest.raises(NoiseError):
        h.send(b"{}")


def test_out_of_order_frames_are_errors(keys) -> None:
    h, e, opening = pair(keys)
    early = wire.encode_data(SID, 0, 0, 0, b"x" * 40)
    with pytest.raises(NoiseError, match="before handshake"):
        deliver([early], e)
    h, e, opening = pair(keys)
    deliver(opening, e)
    with pytest.raises(NoiseError):
        deliver([opening[1]], e)                      # a second message 1
    [reply] = e.accept()
    deliver([reply], h)
    with pytest.raises(NoiseError):
        deliver([reply], h)                           # a second message 2
    with pytest.raises(NoiseError):
        deliver([wire.encode_data(SID, 0, 0, 0, b"x", 0, 2)], e)  # segmented data


def test_wrong_registration_fails_the_handshake(keys) -> None:
    _, e, opening = pair(keys, registration="reg-other")
    with pytest.raises(NoiseError):
        deliver(opening, e)


def test_tampered_record_in_a_frame(keys) -> None:
    h, e, opening = pair(keys)
    deliver(opening, e)
    deliver(e.accept(), h)
    f = wire.decode(h.send(b"[1]")[0])
    bad = bytearray(f.payload)
    bad[0] ^= 1
    with pytest.raises(NoiseError, match="authenticate"):
        e.receive(wire.Frame.data(SID, f.seq, bytes(bad)))
    assert "established" in repr(e) and "auth" not in repr(e)
