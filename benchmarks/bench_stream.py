"""Stream-layer micro-benchmarks, Cython vs pure in one run.

    python -m pytest benchmarks/bench_stream.py --benchmark-only --benchmark-group-by=group

What is compared: ONLY the Cython twins against the pure-Python twins (``cython`` / ``pure``:
the receive and send windows, which are one source file compiled or not, and the frame codec).
``EXECRELAY_PURE`` also switches the websocket transport (picows -> websockets) and the event
loop (uvloop -> asyncio); nothing here runs a transport or a loop, so those are not measured
(``benchmarks/exec_server_e2e.py`` and ``rendezvous_e2e.py`` measure the whole switch).

Each benchmark runs a fixed batch of operations per round, so the per-operation figure is
``median / BATCH`` (printed in ``extra_info`` as ``ns_per_op`` / ``GB_s`` / ``msgs_s`` /
``MB_s``).  The end-to-end benchmarks build two complete stacks (codec + hot path + engine +
multiplexer): one compiled, one pure (imported a second time with the pure twins forced).
"""
from __future__ import annotations

import ctypes

import pytest

from execrelay import _accel
from execrelay.bench.stacks import fresh_stack

HOT = {
    "window": ("execrelay.stream._window_c", "execrelay.stream._window_py"),
    "sendwin": ("execrelay.stream._sendwin_c", "execrelay.stream._sendwin_py"),
    "reasm": ("execrelay.stream._reasm_c", "execrelay.stream._reasm_py"),
}


def _impls(name):
    fast, pure = _accel.load_both(*HOT[name])
    out = [pytest.param(pure, id="pure")]
    if fast is not None:
        out.insert(0, pytest.param(fast, id="cython"))
    return out


def _per_op(benchmark, n, nbytes=0):
    def finish():
        mean = benchmark.stats.stats.median   # median: these machines are shared and noisy
        benchmark.extra_info["ns_per_op"] = round(mean / n * 1e9, 2)
        if nbytes:
            benchmark.extra_info["GB_s"] = round(nbytes / mean / 1e9, 3)
    return finish


# ----------------------------------------------------------------------- receive window
BATCH = 10_000


@pytest.mark.parametrize("m", _impls("window"))
def test_window_update_c_loop(benchmark, m):
    """In-order offer + ack_bits per segment, loop inside the module (the engine-free cost)."""
    benchmark.group = "receive-window update per segment (inner loop)"
    w = m.RecvWindow()
    benchmark(w.bench_inorder, BATCH)
    _per_op(benchmark, BATCH)()


@pytest.mark.parametrize("m", _impls("window"))
def test_window_update_py_call(benchmark, m):
    """The same, called from Python per segment as the engine does (includes call overhead)."""
    benchmark.group = "receive-window update per segment (Python call)"
    w = m.RecvWindow()
    offer = w.offer

    def run():
        for _ in range(1000):
            offer(w.ack + 1, None, 100)
            w.ack_bits

    benchmark(run)
    _per_op(benchmark, 1000)()


@pytest.mark.parametrize("m", _impls("window"))
def test_window_reorder(benchmark, m):
    """32-segment bursts arriving reversed: 31 buffered + 1 in order + 31 drained."""
    benchmark.group = "receive-window reorder (per segment)"
    w = m.RecvWindow()

    def run():
        for _ in range(30):
            base = w.ack
            for s in range(base + 32, base, -1):
                if w.offer(s, s, 100) == 0:
                    while w.pop_next() is not None:
                        pass

    benchmark(run)
    _per_op(benchmark, 30 * 32)()


# ----------------------------------------------------------------------- ack processing
@pytest.mark.parametrize("m", _impls("sendwin"))
def test_ack_processing_cumulative(benchmark, m):
    """push 16 segments, one cumulative ack releasing them (per ack)."""
    benchmark.group = "ack processing (cumulative, 16 released)"
    s = m.SendWindow()

    def run():
        for _ in range(200):
            for _ in range(16):
                s.push(None, 200, 1.0)
            s.on_ack(s.next_seq - 1, 0, 1.001)

    benchmark(run)
    _per_op(benchmark, 200)()


@pytest.mark.parametrize("m", _impls("sendwin"))
def test_ack_processing_sack(benchmark, m):
    """32 in flight, a hole at the base, 31 selectively acked -> 1 fast retransmit, then the
    cumulative ack (two on_ack calls per round)."""
    benchmark.group = "ack processing (32 in flight, SACK + fast retransmit)"
    s = m.SendWindow()

    def run():
        for _ in range(100):
            base = s.next_seq
            for _ in range(32):
                s.push(None, 200, 1.0)
            s.on_ack(base - 1, 0xFFFFFFFE, 1.001)
            s.take_fast()
            s.on_ack(base + 31, 0, 1.002)

    benchmark(run)
    _per_op(benchmark, 200)()


# ----------------------------------------------------------------------- reassembly
MSG16 = bytes(range(256)) * (16 * 1024 * 1024 // 256)
SEG = 60 * 1024
SEGS = [MSG16[i:i + SEG] for i in range(0, len(MSG16), SEG)]


@pytest.mark.parametrize("m", _impls("reasm"))
def test_reassembly_16mib(benchmark, m):
    benchmark.group = "reassembly of 16 MiB from 60 KiB segments"
    r = m.Reassembler()
    n = len(SEGS)

    def run():
        out = None
        feed = r.feed
        for i, seg in enumerate(SEGS):
            out = feed(i, n, seg)
        return out

    assert run() == MSG16
    benchmark.pedantic(run, rounds=20, iterations=1, warmup_rounds=2)
    _per_op(benchmark, n, len(MSG16))()


def test_reassembly_memcpy_baseline(benchmark):
    """A plain memcpy of the same 16 MiB into a preallocated buffer (the bandwidth ceiling)."""
    benchmark.group = "reassembly of 16 MiB from 60 KiB segments"
    dst = ctypes.create_string_buffer(len(MSG16))
    src = ctypes.c_char_p(MSG16)

    def run():
        ctypes.memmove(dst, src, len(MSG16))

    benchmark.pedantic(run, rounds=20, iterations=1, warmup_rounds=2)
    _per_op(benchmark, 1, len(MSG16))()


# ----------------------------------------------------------------------- end to end
def _stack(pure: bool):
    """A fresh execrelay.wire + execrelay.stream, forced pure or not: (mux, engine, hot, wire)."""
    mux, engine, hot, wire = fresh_stack(pure)
    assert mux._decode is wire.decode
    assert wire.IMPLEMENTATION == hot.IMPLEMENTATION == ("pure" if pure else "cython"), \
        "compiled twins not built" if not pure else "pure stack not pure"
    return mux, engine, hot, wire


# the codec + windows twins, compiled or pure; the same engine and multiplexer code either way
STACKS = [pytest.param(False, id="cython"), pytest.param(True, id="pure")]


def _transfer(mux_mod, engine_mod, size: int, count: int) -> None:
    """Opener -> acceptor over a perfect in-memory link, acks flowing back, until delivered."""
    h = mux_mod.Multiplexer(engine_mod.OPENER)
    got = [0]

    def on_message(sid, payload):
        assert len(payload) == size
        got[0] += 1

    e = mux_mod.Multiplexer(engine_mod.ACCEPTOR, on_message=on_message,
                            on_open=lambda s, m: None)
    now = 0.0
    h.open_stream("s", now, engine_mod.RELIABLE)
    for f in h.poll_output(now):
        e.feed(f, now)
    for f in e.poll_output(now):
        h.feed(f, now)
    msg = b"m" * size
    send = h.send
    for _ in range(count):
        send("s", msg)
    while got[0] < count:
        now += 0.0001
        for f in h.poll_output(now):
            e.feed(f, now)
        e.tick(now)
        for f in e.poll_output(now):
            h.feed(f, now)
        h.tick(now)


@pytest.mark.parametrize("pure", STACKS)
def test_e2e_200b_messages(benchmark, pure):
    benchmark.group = "engine-to-engine, 200-byte messages (reliable)"
    mux_mod, engine_mod, hot, wire = _stack(pure)
    n = 5000
    benchmark.pedantic(_transfer, args=(mux_mod, engine_mod, 200, n), rounds=5, iterations=1)
    benchmark.extra_info["msgs_s"] = round(n / benchmark.stats.stats.median)
    benchmark.extra_info["stack"] = f"twins: wire={wire.IMPLEMENTATION} hot={hot.IMPLEMENTATION}"


@pytest.mark.parametrize("pure", STACKS)
def test_e2e_1mib_messages(benchmark, pure):
    benchmark.group = "engine-to-engine, 1 MiB messages (reliable)"
    mux_mod, engine_mod, hot, wire = _stack(pure)
    n = 64
    benchmark.pedantic(_transfer, args=(mux_mod, engine_mod, 1024 * 1024, n), rounds=5,
                       iterations=1)
    benchmark.extra_info["MB_s"] = round(n * 1024 * 1024 / benchmark.stats.stats.median / 1e6, 1)
    benchmark.extra_info["stack"] = f"twins: wire={wire.IMPLEMENTATION} hot={hot.IMPLEMENTATION}"


def _legacy_transfer(mux_mod, engine_mod, n: int) -> None:
    """Executor-side legacy request/reply path: feed a request frame, reply, poll output."""
    e = mux_mod.Multiplexer(engine_mod.ACCEPTOR, on_message=lambda s, p: e.send(s, REPLY),
                            on_open=lambda s, m: None)
    feed = e.feed
    poll = e.poll_output
    for i in range(n // 16):
        for f in LEGACY_REQS:
            feed(f, 0.0)
        poll(0.0)


REPLY = b'{"id":2,"error":{"code":-32601,"message":"exec-server stub does not implement x"}}'
LEGACY_REQS: list = []


@pytest.mark.parametrize("pure", STACKS)
def test_e2e_legacy_executor_request_path(benchmark, pure):
    """Per request on the executor: decode, route, deliver, send reply (encode), one poll per
    16 requests (window 16, 8 streams)."""
    benchmark.group = "executor legacy request path (per request)"
    mux_mod, engine_mod, hot, wire = _stack(pure)
    LEGACY_REQS[:] = [wire.encode_data(f"stream-{i % 8}", i // 8, 0, 0,
                                       b'{"id":%d,"method":"x/unknown","params":{}}' % i)
                      for i in range(16)]
    n = 16_000
    benchmark.pedantic(_legacy_transfer, args=(mux_mod, engine_mod, n), rounds=5, iterations=1)
    benchmark.extra_info["us_per_request"] = round(benchmark.stats.stats.median / n * 1e6, 3)


def _reliable_requests(wire, streams: int = 8, per_stream: int = 2000) -> list[list[bytes]]:
    """Batches of 16 request frames (2 per stream, seq ascending, acking earlier replies)."""
    batches = []
    for j in range(0, per_stream, 2):
        batch = []
        for k in (j, j + 1):
            for s in range(streams):
                body = b'{"id":%d,"method":"x/unknown","params":{}}' % k
                batch.append(wire.encode_data(f"stream-{s}", k + 1, max(0, k - 2), 0, body))
        batches.append(batch)
    return batches


def _reliable_executor(mux_mod, engine_mod, wire, batches) -> None:
    e = mux_mod.Multiplexer(engine_mod.ACCEPTOR, on_message=lambda s, p: e.send(s, REPLY),
                            on_open=lambda s, m: None)
    for s in range(8):
        e.feed(wire.encode_control(wire.RESUME, f"stream-{s}", next_seq=1), 0.0)
    e.poll_output(0.0)
    feed = e.feed
    poll = e.poll_output
    now = 0.0
    for batch in batches:
        now += 1e-5
        for f in batch:
            feed(f, now)
        poll(now)
        e.next_deadline()


@pytest.mark.parametrize("pure", STACKS)
def test_e2e_reliable_executor_request_path(benchmark, pure):
    """Per request on the executor, reliable mode: decode, ack processing, receive window,
    deliver, reply (segment + window + encode with piggybacked ack), one poll and one timer
    lookup per 16 requests."""
    benchmark.group = "executor reliable request path (per request)"
    mux_mod, engine_mod, hot, wire = _stack(pure)
    batches = _reliable_requests(wire)
    n = sum(len(b) for b in batches)
    benchmark.pedantic(_reliable_executor, args=(mux_mod, engine_mod, wire, batches), rounds=5,
                       iterations=1)
    benchmark.extra_info["us_per_request"] = round(benchmark.stats.stats.median / n * 1e6, 3)
