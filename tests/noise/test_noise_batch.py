"""Batching at the flush (docs/noise.md §Records): the messages a stream sends within one loop
turn go out sealed together, in order, on both framings; a tampered batch resets only its
stream."""
from __future__ import annotations

import pytest

from execrelay import wire
from execrelay.stream import LEGACY, PENDING
from execrelay.stream import noise

from _pair import Handler, Pair

pytestmark = pytest.mark.timeout(20)

N = 24


def _data(w, sid: str) -> list:
    return [f for f in w.frames() if f.stream_id == sid and f.kind == wire.DATA]


async def _established(pair: Pair, sid: str, mode: int) -> Handler:
    h = Handler()
    pair.harness.open_stream(sid, h, mode, record=pair.harness_layer(sid))
    pair.harness.send(sid, b'{"id":0}')
    await pair.carry()
    assert h.messages == [b're:{"id":0}']
    return h


@pytest.mark.parametrize("mode", [LEGACY, PENDING])
async def test_a_burst_goes_out_in_fewer_records_and_in_order(mode: int) -> None:
    pair = Pair()
    h = await _established(pair, "s", mode)
    before_out = len(_data(pair.to_executor, "s"))
    before_back = len(_data(pair.to_harness, "s"))
    burst = [b'{"id":%d,"method":"process/read"}' % i for i in range(1, N + 1)]
    for m in burst:                       # one loop turn: one batch
        pair.harness.send("s", m)
    await pair.carry()
    assert pair.handlers["s"].messages[1:] == burst
    assert h.messages[1:] == [b"re:" + m for m in burst]   # the echoes batch as well
    out = _data(pair.to_executor, "s")[before_out:]
    back = _data(pair.to_harness, "s")[before_back:]
    assert 1 <= len(out) < N and 1 <= len(back) < N
    if mode == LEGACY:   # 0.171's framing: one record per Data frame, consecutive seqs
        seqs = [f.seq for f in _data(pair.to_executor, "s")]
        assert seqs == list(range(len(seqs)))
        assert all(f.segment_count == 1 and f.ack == 0 for f in out + back)
    else:
        assert pair.harness.stream_mode("s") == "reliable"


@pytest.mark.parametrize("mode", [LEGACY, PENDING])
async def test_a_batch_past_one_record_and_a_big_message_keep_their_order(mode: int) -> None:
    """A burst larger than one record is cut into several (each still one reliable segment),
    and a big message sent in the middle goes after the small ones queued before it."""
    pair = Pair()
    h = await _established(pair, "s", mode)
    small = [b'{"id":%d,"pad":"%s"}' % (i, b"x" * 3000) for i in range(40)]
    big = b'{"big":"' + b"b" * 150_000 + b'"}'
    sent = small[:20] + [big] + small[20:]
    for m in sent:
        pair.harness.send("s", m)
    await pair.carry(12)
    assert pair.handlers["s"].messages[1:] == sent
    assert h.messages[1:] == [b"re:" + m for m in sent]
    frames = _data(pair.to_executor, "s")
    assert all(f.segment_count == 1 for f in frames)
    assert len(frames) < len(sent)


async def test_a_tampered_batched_record_resets_only_its_stream() -> None:
    pair = Pair()
    good = await _established(pair, "good", LEGACY)
    bad = await _established(pair, "bad", LEGACY)

    def tamper(m: bytes) -> list[bytes]:
        f = wire.decode(m)
        if f.stream_id == "bad" and f.kind == wire.DATA:
            p = bytearray(f.payload)
            p[len(p) // 2] ^= 1
            return [wire.encode_data("bad", f.seq, 0, 0, bytes(p))]
        return [m]

    pair.to_executor.hook = tamper
    for i in range(1, N + 1):             # both streams burst in the same turn
        pair.harness.send("bad", b'{"id":%d}' % i)
        pair.harness.send("good", b'{"id":%d}' % i)
    await pair.carry()
    resets = [f for f in pair.to_harness.frames() if f.stream_id == "bad" and f.kind == wire.RESET]
    assert [f.reason for f in resets] == [noise.RESET_REASON]
    assert bad.closes == [(noise.RESET_REASON, True)]
    assert pair.handlers["bad"].messages == [b'{"id":0}']   # nothing of the batch delivered
    assert good.messages[1:] == [b're:{"id":%d}' % i for i in range(1, N + 1)]
    assert not good.closes and pair.executor.handler("good") is not None
