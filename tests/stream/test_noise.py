"""stream.noise: the hybrid IK handshake and the record layer, ours against ours.

Interop with the real 0.171.0 executor is in tests/interop/test_noise171.py; here the two
roles meet each other, and every way a message or record can be wrong must raise.
"""
from __future__ import annotations

import json
import random

import pytest

from execrelay.stream import noise as N


@pytest.fixture(scope="module")
def keys() -> tuple[N.StaticKeyPair, N.StaticKeyPair]:
    return N.StaticKeyPair.generate(), N.StaticKeyPair.generate()


PRO = N.prologue("env-1", "reg-1", "0f0e0d0c-0b0a-4908-8706-050403020100")


def handshake(keys, authorization: bytes = b"auth-token",
              prologue_i: bytes = PRO, prologue_r: bytes = PRO) -> tuple[N.Transport, N.Transport]:
    harness, executor = keys
    ini = N.Initiator(harness, executor.public, prologue_i, authorization)
    res = N.Responder(executor, prologue_r)
    req = res.read_request(ini.message1)
    assert req.initiator_key == harness.public and req.authorization == authorization
    reply, t_res = res.respond()
    return ini.finish(reply), t_res


def test_sizes_are_those_of_0171(keys) -> None:
    harness, executor = keys
    ini = N.Initiator(harness, executor.public, PRO, b"x" * 13)
    assert len(ini.message1) == 3568 + 13 == N.MESSAGE1_BASE_BYTES + 13
    res = N.Responder(executor, PRO)
    res.read_request(ini.message1)
    reply, _ = res.respond()
    assert len(reply) == 3424 == N.MESSAGE2_BYTES


def test_prologue_layout() -> None:
    p = N.prologue("e", "rg", "s")
    label = b"codex-exec-server-relay-noise/v1"
    assert p == (len(label).to_bytes(8, "big") + label + (1).to_bytes(8, "big") + b"e"
                 + (2).to_bytes(8, "big") + b"rg" + (1).to_bytes(8, "big") + b"s")


def test_both_directions_and_hash_agree(keys) -> None:
    ti, tr = handshake(keys)
    assert ti.handshake_hash == tr.handshake_hash
    msg = json.dumps({"id": 1, "method": "initialize", "params": {}}).encode()
    [(seq, rec)] = ti.seal(msg)
    assert seq == 0 and len(rec) == len(msg) + 4 + 16 and msg not in rec
    assert tr.open(seq, rec) == [msg]
    [(seq, rec)] = tr.seal(b'{"id":1,"result":{}}')
    assert seq == 0 and ti.open(seq, rec) == [b'{"id":1,"result":{}}']
    assert [s for s, _ in ti.seal(b"{}")] == [1]


def test_messages_spanning_records_and_records_holding_many(keys) -> None:
    ti, tr = handshake(keys)
    big = b'"' + b"a" * (3 * N.RECORD_PLAINTEXT_BYTES) + b'"'
    records = ti.seal(big)
    assert [s for s, _ in records] == [0, 1, 2, 3]
    assert all(len(r) <= N.RECORD_PLAINTEXT_BYTES + 16 for _, r in records)
    out: list[bytes] = []
    for seq, rec in records:
        out += tr.open(seq, rec)
    assert out == [big]
    # several small messages, one record each, delivered out of order inside the window
    sealed = [ti.seal(b'{"n":%d}' % i)[0] for i in range(10)]
    got: list[bytes] = []
    for seq, rec in reversed(sealed):
        got += tr.open(seq, rec)
    assert got == [b'{"n":%d}' % i for i in range(10)]


def test_one_record_may_complete_two_messages(keys) -> None:
    ti, tr = handshake(keys)
    framed = b"".join(len(m).to_bytes(4, "big") + m for m in (b"[1]", b"[2]"))
    seq, rec = ti.seal_record(framed[:5])
    assert tr.open(seq, rec) == []
    seq, rec = ti.seal_record(framed[5:])
    assert tr.open(seq, rec) == [b"[1]", b"[2]"]


def test_seal_many_puts_a_batch_in_one_record(keys) -> None:
    ti, tr = handshake(keys)
    batch = [b'{"id":%d,"method":"x"}' % i for i in range(16)]
    [(seq, rec)] = ti.seal_many(batch)
    assert seq == 0 and len(rec) == sum(4 + len(m) for m in batch) + 16
    assert tr.open(seq, rec) == batch
    assert ti.seal_many([]) == [] and ti.next_send_seq == 1
    # the same bytes as one seal per message would have framed: one stream, any cut
    assert tr.open(*ti.seal_many([b"[7]"])[0]) == [b"[7]"]


def test_seal_many_spans_records_and_splits_messages(keys) -> None:
    ti, tr = handshake(keys)
    # 5 messages of 20 KiB: 100 KiB + prefixes -> two records, one message cut in two
    batch = [b'"' + bytes([97 + i]) * (20 * 1024 - 2) + b'"' for i in range(5)]
    records = ti.seal_many(batch)
    assert [s for s, _ in records] == [0, 1]
    assert len(records[0][1]) == N.RECORD_PLAINTEXT_BYTES + 16
    first = tr.open(*records[0])
    assert first == batch[:2]                     # the third ends in the next record
    assert first + tr.open(*records[1]) == batch
    # in reverse order: the second record waits in the window, then both open together
    ti2, tr2 = handshake(keys)
    records = ti2.seal_many(batch)
    assert tr2.open(*records[1]) == []
    assert tr2.open(*records[0]) == batch


def test_seal_many_refuses_a_bad_batch_whole(keys) -> None:
    ti, _ = handshake(keys)
    for bad in ([b"[1]", b""], [b"[1]", b"x" * (N.MAX_MESSAGE_BYTES + 1)]):
        with pytest.raises(N.RecordError):
            ti.seal_many(bad)
    assert ti.next_send_seq == 0                  # nothing was sealed, no nonce spent
    ti._tx_n = N.MAX_RECORDS  # noqa: SLF001 - the last sequence number
    with pytest.raises(N.SequenceExhausted):
        ti.seal_many([b"x" * N.RECORD_PLAINTEXT_BYTES])  # would need two records
    assert ti.next_send_seq == N.MAX_RECORDS
    [(seq, _)] = ti.seal_many([b"[1]", b"[2]"])
    assert seq == N.MAX_RECORDS
    with pytest.raises(N.SequenceExhausted):
        ti.seal_many([b"[3]"])


def test_a_record_ending_inside_a_message_keeps_the_tail(keys) -> None:
    ti, tr = handshake(keys)
    framed = b"".join(len(m).to_bytes(4, "big") + m for m in (b"[1]", b"[22]", b"[333]"))
    for cut in range(1, len(framed)):
        a = ti.seal_record(framed[:cut])
        b = ti.seal_record(framed[cut:])
        assert tr.open(*a) + tr.open(*b) == [b"[1]", b"[22]", b"[333]"], cut
    # a zero length inside a multi-message record is a framing error
    seq, rec = ti.seal_record(b"\x00\x00\x00\x01[" + b"\x00\x00\x00\x00")
    with pytest.raises(N.RecordError):
        tr.open(seq, rec)


def test_any_cut_of_the_byte_stream_gives_the_messages_back(keys) -> None:
    """Messages of 1 byte .. 150 KiB, framed as one byte stream and cut into records of random
    sizes (length prefixes cut too), records delivered in a shuffled order within the window:
    the messages come back whole and in order."""
    rng = random.Random(14)
    ti, tr = handshake(keys)
    for _ in range(30):
        msgs = [bytes([rng.randrange(256)]) * rng.choice((1, 3, 5, 100, 70_000, 150_000))
                for _ in range(rng.randrange(1, 6))]
        framed = b"".join(len(m).to_bytes(4, "big") + m for m in msgs)
        records = []
        pos = 0
        while pos < len(framed):
            n = min(rng.choice((1, 2, 3, 4, 5, 50, 4096, N.RECORD_PLAINTEXT_BYTES)), len(framed) - pos)
            records.append(ti.seal_record(framed[pos:pos + n]))
            pos += n
        order = list(range(len(records)))
        for i in range(0, len(order), 8):        # shuffle inside windows of 8 records
            chunk = order[i:i + 8]
            rng.shuffle(chunk)
            order[i:i + 8] = chunk
        got: list[bytes] = []
        for i in order:
            got += tr.open(*records[i])
        assert got == msgs


def test_duplicates_are_dropped_and_the_window_is_bounded(keys) -> None:
    ti, tr = handshake(keys)
    recs = [ti.seal(b"[%d]" % i)[0] for i in range(3)]
    assert tr.open(*recs[0]) == [b"[0]"]
    assert tr.open(*recs[0]) == []           # replayed: the first copy won
    assert tr.open(*recs[2]) == []           # ahead: buffered
    assert tr.open(*recs[2]) == []           # buffered twice: still once
    assert tr.open(*recs[1]) == [b"[1]", b"[2]"]
    with pytest.raises(N.RecordError, match="reorder window"):
        tr.open(3 + N.REORDER_RECORDS + 1, b"x" * 32)


def test_tampered_records_and_wrong_keys_fail(keys) -> None:
    ti, tr = handshake(keys)
    seq, rec = ti.seal(b"[1]")[0]
    bad = bytearray(rec)
    bad[5] ^= 1
    with pytest.raises(N.RecordError, match="authenticate"):
        tr.open(seq, bytes(bad))
    other_i, _ = handshake(keys)   # same static keys, another session: other keys
    seq, rec = other_i.seal(b"[1]")[0]
    with pytest.raises(N.RecordError):
        handshake(keys)[1].open(seq, rec)
    # a record replayed under another seq decrypts with the wrong nonce
    ti3, tr3 = handshake(keys)
    r0 = ti3.seal(b"[0]")[0][1]
    assert tr3.open(0, r0) == [b"[0]"]
    with pytest.raises(N.RecordError):
        tr3.open(1, r0)


def test_framing_errors(keys) -> None:
    ti, tr = handshake(keys)
    seq, rec = ti.seal_record(b"\x00\x00\x00\x00")
    with pytest.raises(N.RecordError, match="invalid length"):
        tr.open(seq, rec)
    with pytest.raises(N.RecordError):
        ti.seal(b"")
    with pytest.raises(N.RecordError):
        ti.seal_record(b"x" * (N.RECORD_PLAINTEXT_BYTES + 1))


def test_nonce_exhaustion_is_refused(keys) -> None:
    ti, tr = handshake(keys)
    ti._tx_n = N.MAX_RECORDS                # noqa: SLF001 - 2**32 records are not sendable in a test
    seq, rec = ti.seal_record(b"\x00\x00\x00\x02[]")
    assert seq == N.MAX_RECORDS
    with pytest.raises(N.SequenceExhausted):
        ti.seal(b"[]")
    tr._rx_n = N.MAX_RECORDS                # noqa: SLF001
    assert tr.open(seq, rec) == [b"[]"]
    with pytest.raises(N.SequenceExhausted):
        tr._decrypt(rec)                    # noqa: SLF001
    # a multi-record message that would cross the limit is refused before any record
    ti2, _ = handshake(keys)
    ti2._tx_n = N.MAX_RECORDS - 1           # noqa: SLF001
    with pytest.raises(N.SequenceExhausted):
        ti2.seal(b"x" * (3 * N.RECORD_PLAINTEXT_BYTES))
    assert ti2.next_send_seq == N.MAX_RECORDS - 1


def test_tampered_message1_fails_at_the_responder(keys) -> None:
    harness, executor = keys
    msg = N.Initiator(harness, executor.public, PRO, b"auth").message1
    for pos in (0, 1100, 1088 + 32 + 1184 + 3, len(msg) - 1):  # skem, e, s, payload
        bad = bytearray(msg)
        bad[pos] ^= 0x40
        with pytest.raises(N.HandshakeError):
            N.Responder(executor, PRO).read_request(bytes(bad))
    with pytest.raises(N.HandshakeError, match="bytes"):
        N.Responder(executor, PRO).read_request(msg[:100])


def test_wrong_responder_key_or_prologue_fails(keys) -> None:
    harness, executor = keys
    stranger = N.StaticKeyPair.generate()
    msg = N.Initiator(harness, stranger.public, PRO, b"auth").message1
    with pytest.raises(N.HandshakeError):
        N.Responder(executor, PRO).read_request(msg)
    with pytest.raises(N.HandshakeError):
        handshake(keys, prologue_r=N.prologue("env-1", "reg-1", "another-stream"))


def test_tampered_message2_fails_at_the_initiator(keys) -> None:
    harness, executor = keys
    for pos in (0, 1088 + 5, 1088 + 1104 + 1, 3424 - 1):  # ekem, skem, e, payload tag
        ini = N.Initiator(harness, executor.public, PRO, b"auth")
        res = N.Responder(executor, PRO)
        res.read_request(ini.message1)
        reply, _ = res.respond()
        bad = bytearray(reply)
        bad[pos] ^= 0x01
        with pytest.raises(N.HandshakeError):
            ini.finish(bytes(bad))
    ini = N.Initiator(harness, executor.public, PRO, b"auth")
    with pytest.raises(N.HandshakeError, match="3424"):
        ini.finish(b"x" * 10)
    with pytest.raises(N.HandshakeError, match="already"):
        ini.finish(b"x" * N.MESSAGE2_BYTES)


def test_out_of_turn_and_limits(keys) -> None:
    harness, executor = keys
    res = N.Responder(executor, PRO)
    with pytest.raises(N.HandshakeError):
        res.respond()
    with pytest.raises(N.HandshakeError):
        N.Initiator(harness, executor.public, PRO, b"a" * (N.MAX_AUTHORIZATION_BYTES + 1))
    ini = N.Initiator(harness, executor.public, PRO, b"")
    res.read_request(ini.message1)
    with pytest.raises(N.HandshakeError):
        res.read_request(ini.message1)


def test_errors_reset_with_the_0171_reason() -> None:
    for cls in (N.HandshakeError, N.RecordError, N.SequenceExhausted):
        assert issubclass(cls, N.NoiseError)
        assert cls("x").reason == "noise_relay_protocol_error"


def test_keys_never_show(keys) -> None:
    harness, executor = keys
    secret = harness.private_bytes()
    ti, tr = handshake(keys)
    for obj in (harness, executor, ti, tr, N.Initiator(harness, executor.public, PRO, b"a"),
                N.Responder(executor, PRO)):
        text = repr(obj)
        assert secret.hex()[:16] not in text and secret.hex()[64:80] not in text
        assert ti.handshake_hash.hex()[:16] not in text and len(text) < 120


def test_public_key_json_roundtrip_is_strict(keys) -> None:
    pub = keys[0].public
    obj = pub.to_json()
    assert obj["suite"] == "Noise_hybridIK_X25519+MLKEM768_AESGCM_SHA256"
    assert N.PublicKey.from_json(obj) == pub
    for bad in ({**obj, "extra": 1}, {**obj, "suite": "other"},
                {**obj, "x25519_public_key": "!!"}, {**obj, "x25519_public_key": "AAAA"}, []):
        with pytest.raises(ValueError):
            N.PublicKey.from_json(bad)


def test_key_pair_persists(keys) -> None:
    raw = keys[1].private_bytes()
    again = N.StaticKeyPair.from_private_bytes(raw)
    assert again.public == keys[1].public
    ini = N.Initiator(keys[0], keys[1].public, PRO, b"a")
    N.Responder(again, PRO).read_request(ini.message1)
