"""Mutation fuzz: the compiled decoder decides like the reference on 100k+ buffers.

The reference decision is the pure twin's (google.protobuf's parser plus the rules of
docs/relay-protocol.md §Frames).  The compiled decoder must accept exactly what it accepts,
with equal frames, and refuse the rest with FrameError naming the same stream (or none):
never another exception, a crash or a hang.
``EXECRELAY_FUZZ_CASES`` raises the count (benchmarks/fuzz_codec.py runs millions).
"""
from __future__ import annotations

import os
import random

from execrelay.wire import relay_pb2 as pb

CASES = int(os.environ.get("EXECRELAY_FUZZ_CASES", "100000"))


def corpus(codec) -> list[bytes]:
    out = [codec.encode_data("3f2b8a9e-1c4d-4e5f-8a9b-0c1d2e3f4a5b", 12, 5, 0x6,
                             b'{"id":12,"method":"fs/getMetadata","params":{"path":"/tmp/x"}}'),
           codec.encode_data("A", 0, 0, 0, b"{}", 2, 3),
           codec.encode_control(codec.RESUME, "stream-b", next_seq=9),
           codec.encode_control(codec.RESET, "s", reason="harness_disconnected"),
           codec.encode_control(codec.HEARTBEAT, "h", 1, 2),
           codec.encode_control(codec.ACK, "a", 77, 0xFFFF),
           codec.encode(codec.Frame.handshake("n", bytes(range(200))))]
    m = pb.RelayMessageFrame(version=1, stream_id="u")
    m.data.payload = b"p" * 200
    m.data.segment_count = 1
    out.append(m.SerializeToString() + b"\xa2\x01\x02zz\xa3\x01\x08\x01\xa4\x01")  # unknowns + group
    out.append(codec.encode_control(codec.HEARTBEAT, "g") + b"\xa3\x01\x00\x01\xab\x01\xac\x01\xa4\x01")
    return out


def mutate(rng: random.Random, buf: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(buf)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        if op == 0 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 2 and b:
            del b[rng.randrange(len(b))]
        elif op == 3 and b:
            del b[rng.randrange(len(b)):]
        elif op == 4:
            other = rng.choice(pool)
            i = rng.randrange(len(other) + 1)
            b[rng.randrange(len(b) + 1):] = other[i:]
        elif op == 5 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 6:
            b += bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
        else:
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.choice([b"\x80", b"\xff" * 10, b"\x08\x01", b"\x3a\x00", b"\x12\x00", b"\x2a\x00", b"\x52\x00"])
    return bytes(b)


def outcome(codec, buf: bytes):
    try:
        f = codec.decode(buf)
    except codec.FrameError as exc:
        return ("error", exc.stream_id)
    return ("ok", f.kind, f.version, f.stream_id, f.ack, f.ack_bits, f.seq, f.segment_index,
            f.segment_count, f.payload, f.next_seq, f.reason)


def peek_outcome(codec, buf: bytes):
    try:
        return ("ok", codec.peek_stream_id(buf))
    except codec.FrameError:
        return ("error",)


def test_mutation_fuzz_matches_reference(compiled, pure):
    rng = random.Random(20261125)
    pool = corpus(pure)
    accepted = 0
    for i in range(CASES):
        if i % 10 == 0:
            buf = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        else:
            buf = mutate(rng, rng.choice(pool), pool)
        ref = outcome(pure, buf)
        got = outcome(compiled, buf)
        assert got == ref, (buf.hex(), got, ref)
        assert peek_outcome(compiled, buf) == peek_outcome(pure, buf), buf.hex()
        if ref[0] == "ok":
            accepted += 1
            if len(pool) < 200:
                pool.append(buf)
    # the fuzz must exercise both sides of the decision
    assert 0.02 * CASES < accepted < 0.9 * CASES, accepted
