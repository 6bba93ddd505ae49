"""Noise record layers on RelayEndpoint streams (docs/noise.md §Endpoints), in memory: both
framings (0.171's legacy one, execrelay's reliable one), and every failure resetting its
stream only."""
from __future__ import annotations

import asyncio

import pytest

from execrelay import wire
from execrelay.stream import LEGACY, PENDING, RELIABLE
from execrelay.stream import noise

from _pair import Handler, Pair

pytestmark = pytest.mark.timeout(20)

MSG = b'{"id":1,"method":"initialize","params":{"clientName":"t"}}'


def data_frames(w, sid: str) -> list:
    return [f for f in w.frames() if f.stream_id == sid and f.kind == wire.DATA]


@pytest.mark.parametrize("mode", [LEGACY, PENDING])
async def test_handshake_then_sealed_messages_both_ways(mode: int) -> None:
    pair = Pair()
    h = Handler()
    pair.harness.open_stream("s", h, mode, record=pair.harness_layer("s"))
    pair.harness.send("s", MSG)           # held until the handshake is done
    big = b'{"x":"' + b"a" * 200_000 + b'"}'
    pair.harness.send("s", big)           # several records
    await pair.carry()
    assert pair.handlers["s"].messages == [MSG, big]
    assert h.messages == [b"re:" + MSG, b"re:" + big]
    assert pair.validations == ["s"]
    sent = pair.to_executor.frames()
    kinds = [f.kind for f in sent if f.stream_id == "s"]
    assert kinds.index(wire.HANDSHAKE) < kinds.index(wire.DATA)
    blob = b"".join(pair.to_executor.sent + pair.to_harness.sent)
    # (markers long enough that ciphertext cannot hold them by chance)
    assert b'"method":"initialize"' not in blob and b"a" * 32 not in blob and b're:{"id":1' not in blob
    if mode == LEGACY:   # 0.171's framing: Resume{0}, Handshake, Data seq 0.. one record each
        assert sent[0].kind == wire.RESUME and sent[0].next_seq == 0
        seqs = [f.seq for f in data_frames(pair.to_executor, "s")]
        assert seqs == list(range(len(seqs))) and len(seqs) >= 4
        assert all(f.ack == 0 and f.segment_count == 1 for f in data_frames(pair.to_harness, "s"))
        assert pair.harness.stream_mode("s") == "legacy"
    else:
        assert pair.harness.stream_mode("s") == "reliable"
        assert pair.executor.stream_mode("s") == "reliable"
        # a big message's records each fill one reliable segment (never a 16-byte tail)
        frames = data_frames(pair.to_executor, "s") + data_frames(pair.to_harness, "s")
        assert len(frames) >= 8 and all(f.segment_count == 1 for f in frames)


async def test_reliable_handshake_survives_lost_frames() -> None:
    """The reliable opener repeats message 1 until the answer comes; the executor repeats
    message 2 for a repeated message 1; records lost on the way are retransmitted."""
    pair = Pair()
    drops = {"hs_to_exec": 1, "hs_to_harness": 1, "data": 2}

    def lossy(key: str, kind: int):
        def hook(m: bytes) -> list[bytes]:
            f = wire.decode(m)
            if f.kind == kind and drops[key] > 0:
                drops[key] -= 1
                return []
            return [m, m] if f.kind == wire.DATA else [m]   # and every Data twice
        return hook

    pair.to_executor.hook = lossy("hs_to_exec", wire.HANDSHAKE)
    pair.to_harness.hook = lossy("hs_to_harness", wire.HANDSHAKE)
    h = Handler()
    pair.harness.open_stream("s", h, PENDING, record=pair.harness_layer("s"))
    pair.harness.send("s", MSG)
    deadline = asyncio.get_running_loop().time() + 10
    while not h.messages and asyncio.get_running_loop().time() < deadline:
        await pair.carry(1)
        await asyncio.sleep(0.02)
    assert h.messages == [b"re:" + MSG]
    assert pair.handlers["s"].messages == [MSG]       # exactly once despite the duplicates
    assert drops["hs_to_exec"] == 0 and drops["hs_to_harness"] == 0
    assert pair.validations == ["s"]                  # the registry was asked once


async def _two_streams(pair: Pair, mode: int = LEGACY) -> tuple[Handler, Handler]:
    good, bad = Handler(), Handler()
    pair.harness.open_stream("good", good, mode, record=pair.harness_layer("good"))
    pair.harness.open_stream("bad", bad, mode, record=pair.harness_layer("bad"))
    pair.harness.send("good", MSG)
    pair.harness.send("bad", MSG)
    await pair.carry()
    assert good.messages == [b"re:" + MSG] and bad.messages == [b"re:" + MSG]
    return good, bad


async def _still_works(pair: Pair, good: Handler) -> None:
    pair.harness.send("good", b'{"id":2}')
    await pair.carry()
    assert good.messages[-1] == b're:{"id":2}' and not good.closes


def _resets(pair: Pair, sid: str) -> list:
    return [f for f in pair.to_harness.frames() if f.stream_id == sid and f.kind == wire.RESET]


async def test_tampered_record_resets_only_its_stream() -> None:
    pair = Pair()
    good, bad = await _two_streams(pair)

    def tamper(m: bytes) -> list[bytes]:
        f = wire.decode(m)
        if f.stream_id == "bad" and f.kind == wire.DATA:
            p = bytearray(f.payload)
            p[-1] ^= 1
            return [wire.encode_data("bad", f.seq, 0, 0, bytes(p))]
        return [m]

    pair.to_executor.hook = tamper
    pair.harness.send("bad", b'{"id":2}')
    await pair.carry()
    assert [f.reason for f in _resets(pair, "bad")] == [noise.RESET_REASON]
    assert bad.closes == [(noise.RESET_REASON, True)]
    assert pair.handlers["bad"].closes == [(noise.RESET_REASON, False)]
    pair.to_executor.hook = None
    await _still_works(pair, good)
    # the dead stream's later frames get its Reset again, never a new plaintext stream
    pair.executor.on_message(wire.encode_data("bad", 5, 0, 0, b"junk"), True)
    await pair.carry()
    assert len(_resets(pair, "bad")) == 2 and pair.executor.handler("bad") is None


async def test_replayed_record_resets_only_its_stream() -> None:
    pair = Pair()
    good, bad = await _two_streams(pair)
    first = data_frames(pair.to_executor, "bad")[0]
    pair.executor.on_message(wire.encode_data("bad", 1, 0, 0, first.payload), True)  # record 0 again
    await pair.carry()
    assert [f.reason for f in _resets(pair, "bad")] == [noise.RESET_REASON]
    assert pair.handlers["bad"].messages == [MSG]     # the replay was never delivered
    await _still_works(pair, good)


@pytest.mark.parametrize("mode", [LEGACY, PENDING])
async def test_wrong_executor_key_resets_only_its_stream(mode: int) -> None:
    pair = Pair()
    good = Handler()
    pair.harness.open_stream("good", good, mode, record=pair.harness_layer("good"))
    wrong = Handler()
    pair.harness.open_stream("wrong", wrong, mode, record=pair.harness_layer(
        "wrong", executor_key=noise.StaticKeyPair.generate().public))
    pair.harness.send("good", MSG)
    pair.harness.send("wrong", MSG)
    await pair.carry()
    assert wrong.closes == [(noise.RESET_REASON, True)] and not wrong.messages
    assert pair.validations == ["good"]               # never got as far as the registry
    assert good.messages == [b"re:" + MSG]


async def test_unauthorized_harness_key_is_refused() -> None:
    pair = Pair(authorize=False)
    h = Handler()
    pair.harness.open_stream("s", h, LEGACY, record=pair.harness_layer("s"))
    pair.harness.send("s", MSG)
    await pair.carry()
    assert pair.validations == ["s"]
    assert h.closes == [(noise.RESET_REASON, True)] and not h.messages
    assert pair.handlers["s"].messages == []


@pytest.mark.parametrize("mode", [LEGACY, RELIABLE])
async def test_require_noise_refuses_plaintext_with_a_reason(mode: int) -> None:
    pair = Pair(require_noise=True)
    plain, enc = Handler(), Handler()
    pair.harness.open_stream("plain", plain, mode)
    pair.harness.open_stream("enc", enc, mode, record=pair.harness_layer("enc"))
    pair.harness.send("plain", MSG)
    pair.harness.send("enc", MSG)
    await pair.carry()
    assert plain.closes == [("noise_required: test", True)] and not plain.messages
    assert pair.handlers["plain"].messages == []
    assert enc.messages == [b"re:" + MSG]


async def test_plaintext_acceptor_refuses_a_handshake_on_a_live_stream() -> None:
    pair = Pair()
    pair.executor._handshake_factory = None  # noqa: SLF001 - an executor without Noise
    h = Handler()
    pair.harness.open_stream("s", h, RELIABLE)
    pair.harness.send("s", MSG)
    await pair.carry()
    pair.to_executor.send_many([wire.encode(wire.Frame.handshake("s", b"x" * 10))])
    await pair.carry()
    assert h.closes == [(noise.RESET_REASON, True)]
