"""The compiled per-frame entry (``_rdvfast_c``) against its pure twin (``_rdvfast_py``).

Two fake rendezvous (``execrelay.bench.rdvroute.Rig``), one per twin, get the same random
sequence of frames in the same loop: bound and unbound streams, Resume and Data with and
without acks, Resets both ways, frames for another socket's stream, non-canonical layouts,
garbage, oversize frames, fragments, text, an executor that stops draining (congestion: the
harness budget and held frames) and a harness that stops reading (its queue overflows).  Every
byte written to every socket, every transport event, the close frames, the whole metrics
exposition and the stream count must be equal.  Skipped under EXECRELAY_PURE (and when the
compiled twin is not built; a failure under EXECRELAY_REQUIRE_EXT), like the other twin tests.
"""
from __future__ import annotations

import asyncio
import random
from typing import Any, Callable

import aiohttp
import pytest
from picows import WSMsgType

from execrelay import _accel
from execrelay.bench.rdvroute import FakeFrame, Rig
from execrelay.wire import RESET, RESUME, encode_control, encode_data

pytestmark = pytest.mark.skipif(_accel.FORCE_PURE, reason="EXECRELAY_PURE: the compiled twin is not compared")

MAX_FRAME = 40_000
CONFIG = dict(max_frame_bytes=MAX_FRAME, max_message_bytes=120_000, executor_high_water=6_000,
              harness_queue_bytes=30_000, harness_queue_hard_bytes=60_000, harness_slow_after=0.0,
              heartbeat=None)
#: each harness mostly speaks for its own streams (sometimes for another's: stream_in_use)
OWN = [["h0-a", "h0-stream-0123456789"], ["h1-é-unicode", "h1-b"], ["h2-a", "h2-b"]]
SIDS = [sid for own in OWN for sid in own] + ["nobody"]
SIZES = [1, 2, 20, 100, 119, 125, 126, 200, 5_000, 65_600, MAX_FRAME + 10]


def _frame(rng: random.Random, own: list[str] | None = None) -> bytes:
    sid = rng.choice(own if own is not None and rng.random() < 0.9 else SIDS)
    r = rng.random()
    if r < 0.7:
        seq = rng.choice([0, 0, 1, 2, 300])
        ack = rng.choice([0, 0, 5, 1 << 20, (1 << 32) - 1])
        bits = rng.choice([0, 0, 3, 1 << 31])
        return encode_data(sid, seq, ack, bits, rng.randbytes(rng.choice(SIZES[:-2])))
    if r < 0.65:
        return encode_control(RESUME, sid, next_seq=rng.choice([0, 1, 7]))
    if r < 0.72:
        return encode_control(RESET, sid, reason=rng.choice(["bye", "x" * 256]))
    if r < 0.78:  # canonical prefix, a field after the body (the Python path must take it)
        return encode_data(sid, 1, 0, 0, b"p" * rng.choice([3, 130])) + b"\x18\x05"
    if r < 0.83:  # stream_id before the version: not canonical
        raw = encode_data(sid, 1, 0, 0, b"q" * 10)
        n = raw[3]
        return raw[2:4 + n] + raw[:2] + raw[4 + n:]
    if r < 0.87:  # garbage, or a frame cut short
        raw = encode_data(sid, 1, 0, 0, b"r" * 50)
        return raw[:rng.randrange(1, len(raw))] if rng.random() < 0.5 else rng.randbytes(rng.randrange(1, 40))
    if r < 0.9:  # over the frame limit
        return encode_data(sid, 1, 0, 0, b"o" * (MAX_FRAME + 10))
    if r < 0.93:  # a long id: its length takes two bytes, not canonical
        return encode_data("L" * 128, 1, 0, 0, b"l")
    return encode_data(sid, rng.choice([0, 1]), 0, 0, b"d" * rng.choice([10, 126, 70]))


def _ops(seed: int, n: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    ops: list[tuple[Any, ...]] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.5:
            i = rng.randrange(3)
            ops.append(("harness", i, _frame(rng, OWN[i])))
        elif r < 0.8:
            ops.append(("executor", _frame(rng)))
        elif r < 0.84:
            data = _frame(rng)
            cut = rng.randrange(0, len(data) + 1)
            ops.append(("fragments", rng.randrange(3), data[:cut], data[cut:]))
        elif r < 0.86:
            ops.append(("text", rng.randrange(3)))
        elif r < 0.89:
            ops.append(("stall_executor", rng.random() < 0.5))
        elif r < 0.91:
            ops.append(("stall_harness", rng.randrange(3), rng.random() < 0.6))
        else:
            ops.append(("tick",))
    return ops


def _apply(rig: Rig, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "harness":
        rig.from_harness(op[1], FakeFrame(op[2]))
    elif kind == "executor":
        rig.from_executor(FakeFrame(op[1]))
    elif kind == "fragments":
        rig.from_harness(op[1], FakeFrame(op[2], WSMsgType.BINARY, False))
        rig.from_harness(op[1], FakeFrame(op[3], WSMsgType.CONTINUATION, True))
    elif kind == "text":
        rig.from_harness(op[1], FakeFrame(b"{}", WSMsgType.TEXT))
    elif kind == "stall_executor":
        t = rig.executor_ws.underlying_transport
        t.stalled = op[1]
        if op[1]:
            rig.executor.pause_writing()
        else:
            t.buffered = 0
            rig.executor.resume_writing()
    elif kind == "stall_harness":
        t = rig.harness_ws[op[1]].underlying_transport
        t.stalled = op[2]
        if not op[2]:
            t.buffered = 0


async def _run_pair(ops: list[tuple[Any, ...]], make: Callable[[Any], Rig], fast: Any, pure: Any) -> None:
    rigs = [make(fast), make(pure)]
    for i, op in enumerate(ops):
        for rig in rigs:
            _apply(rig, op)
        if op[0] == "tick" or i % 7 == 6:
            await asyncio.sleep(0)
        a, b = (rig.outcome() for rig in rigs)
        assert a == b, f"after op {i} {op[:2]}"
    for rig in rigs:  # everything drains: held frames are released
        for ws in [rig.executor_ws, *rig.harness_ws]:
            ws.underlying_transport.stalled = False
            ws.underlying_transport.buffered = 0
        rig.executor.resume_writing()
    for _ in range(10):
        await asyncio.sleep(0)
    a, b = (rig.outcome() for rig in rigs)
    assert a == b
    for rig in rigs:
        rig.router.close()
        for task in list(rig.server._tasks):  # noqa: SLF001
            task.cancel()
    await asyncio.sleep(0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", range(12))
async def test_twins_route_alike(twin_pair: Callable[[str], tuple[Any, Any]], seed: int) -> None:
    fast, pure = twin_pair("rdvfast")
    assert fast.COMPILED and not pure.COMPILED
    await asyncio.wait_for(_run_pair(_ops(seed, 600), lambda base: Rig(base, 3, **CONFIG), fast, pure), 100)


@pytest.mark.timeout(60)
async def test_bound_stream_takes_the_compiled_path(twin_pair: Callable[[str], tuple[Any, Any]]) -> None:
    """A bound stream's frames both ways never reach the router's Python functions."""
    fast, _ = twin_pair("rdvfast")
    rig = Rig(fast, 1, heartbeat=None)
    calls: list[str] = []
    router = rig.router
    h, e = rig.harnesses[0], rig.executor
    h.route = lambda link, data: (calls.append("h"), router.from_harness(link, data))
    e.route = lambda link, data: (calls.append("e"), router.from_executor(link, data))
    rig.from_harness(0, FakeFrame(encode_data("s1", 0, 0, 0, b"open")))   # binds: Python
    assert calls == ["h"]
    for i in range(50):
        rig.from_harness(0, FakeFrame(encode_data("s1", 0, 0, 0, b"x" * (i + 1))))
        rig.from_executor(FakeFrame(encode_data("s1", 0, i, 0, b"y" * (i * 3 + 1))))
    assert calls == ["h"]
    assert rig.metrics.frames_to_executor == 51 and rig.metrics.frames_to_harness == 50
    rig.from_executor(FakeFrame(encode_control(RESET, "s1", reason="done")))  # Reset: Python
    assert calls == ["h", "e"] and router.stream_count() == 0
    rig.from_executor(FakeFrame(encode_data("s1", 0, 0, 0, b"late")))          # unbound: Python
    assert calls == ["h", "e", "e"] and rig.metrics.dropped["no_route"] == 1
    await asyncio.sleep(0)
    rig.router.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fast_frames", [True, False])
async def test_sockets_take_the_compiled_path_unless_told(twin_pair: Callable[[str], tuple[Any, Any]],
                                                          make_server: Any, fast_frames: bool) -> None:
    """Over real picows sockets: with the compiled build only a stream's first frame reaches
    ``Router.from_harness``; with ``fast_frames=False`` every frame does.  Same bytes either way."""
    from _rdv_helpers import connect_executor, connect_harness, data, recv_raw

    twin_pair("rdvfast")  # skips (or fails under EXECRELAY_REQUIRE_EXT) when not built
    server = await make_server(fast_frames=fast_frames)
    calls = {"harness": 0, "executor": 0}
    router = server.router
    for side in ("harness", "executor"):
        original = getattr(router, f"from_{side}")

        def tap(link: Any, frame: bytes, _original: Any = original, _side: str = side) -> None:
            calls[_side] += 1
            _original(link, frame)
        setattr(router, f"from_{side}", tap)
    # a fresh connection per request: a websocket upgraded on the registration's keep-alive
    # connection is aiohttp's (the first request line chose the server side), not picows's
    fresh = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    ex = await connect_executor(fresh, server, "e")
    h = await connect_harness(fresh, server, "e")
    frames = [data("s", 0, f'{{"id":{i}}}') for i in range(20)]
    for f in frames:
        await h.send_bytes(f)
    assert [await asyncio.wait_for(recv_raw(ex), 5) for _ in frames] == frames
    for f in frames:
        await ex.send_bytes(f)
    assert [await asyncio.wait_for(recv_raw(h), 5) for _ in frames] == frames
    expected = {"harness": 1, "executor": 0} if fast_frames else {"harness": 20, "executor": 20}
    assert calls == expected
    assert server.metrics.frames_to_executor == 20 and server.metrics.frames_to_harness == 20
    await ex.close()
    await h.close()
    await fresh.close()
