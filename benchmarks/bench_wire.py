"""Frame codec micro-benchmarks: Cython vs pure twin vs raw google.protobuf (upb), one run.

    python -m pytest benchmarks/bench_wire.py --benchmark-only --benchmark-group-by=group

What is compared: the codec twins only (``cython``: ext/wire/_codec_c.pyx with the compiled
``_frame_c``; ``pure``: _codec_py on google.protobuf) and raw upb; of what ``EXECRELAY_PURE``
switches (twins, websocket transport, event loop) only the first is involved here.

"decode" includes reading the fields a router/engine needs (stream_id, kind, seq, payload),
as the Rust anchor of docs/benchmarks.md §Targets ("parse + field access") does.
"""
from __future__ import annotations

import pytest

from execrelay._accel import load_both
from execrelay.wire import relay_pb2 as pb

compiled, pure = load_both("execrelay.wire._codec_c", "execrelay.wire._codec_py")
IMPLS = [pytest.param(pure, id="pure")]
if compiled is not None:
    IMPLS.insert(0, pytest.param(compiled, id="cython"))

SID = "3f2b8a9e-1c4d-4e5f-8a9b-0c1d2e3f4a5b"
SMALL = b'{"id":12,"method":"fs/getMetadata","params":{"path":"/tmp/x"}}'  # 112-byte frame
BIG = b"x" * (1024 * 1024)
SIZES = {"small": SMALL, "1MiB": BIG}


def _pb_frame(payload: bytes) -> bytes:
    m = pb.RelayMessageFrame(version=1, stream_id=SID, ack=5)
    m.data.seq, m.data.segment_count, m.data.payload = 12, 1, payload
    return m.SerializeToString()


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", IMPLS)
def test_decode(benchmark, impl, size):
    benchmark.group = f"decode+access {size}"
    wire = _pb_frame(SIZES[size])
    decode = impl.decode

    def run():
        f = decode(wire)
        return f.stream_id, f.kind, f.seq, f.payload

    assert run()[0] == SID
    benchmark(run)


@pytest.mark.parametrize("size", list(SIZES))
def test_decode_upb(benchmark, size):
    benchmark.group = f"decode+access {size}"
    wire = _pb_frame(SIZES[size])

    def run():
        m = pb.RelayMessageFrame()
        m.ParseFromString(wire)
        return m.stream_id, m.WhichOneof("body"), m.data.seq, m.data.payload

    benchmark(run)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", IMPLS)
def test_encode_data(benchmark, impl, size):
    benchmark.group = f"encode {size}"
    payload = SIZES[size]
    assert impl.encode_data(SID, 12, 5, 0, payload) == _pb_frame(payload)
    benchmark(impl.encode_data, SID, 12, 5, 0, payload)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", IMPLS)
def test_encode_frame(benchmark, impl, size):
    benchmark.group = f"encode {size}"
    frame = impl.Frame.data(SID, 12, SIZES[size], ack=5)
    benchmark(impl.encode, frame)


@pytest.mark.parametrize("size", list(SIZES))
def test_encode_upb(benchmark, size):
    benchmark.group = f"encode {size}"
    payload = SIZES[size]

    def run():
        m = pb.RelayMessageFrame(version=1, stream_id=SID, ack=5)
        d = m.data
        d.seq, d.segment_count, d.payload = 12, 1, payload
        return m.SerializeToString()

    benchmark(run)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("impl", IMPLS)
def test_peek_stream_id(benchmark, impl, size):
    benchmark.group = f"peek_stream_id {size}"
    wire = _pb_frame(SIZES[size])
    benchmark(impl.peek_stream_id, wire)
