"""The load generator: drives an executor's relay websocket and measures one run.

An executor under test connects to the fake rendezvous (:mod:`.fakerdv`); its websocket is an
:class:`ExecutorConn`, which drives N relay streams in LEGACY mode (Data seq 0, 1, 2, ...; what
0.131.0 speaks), so the same driver measures our fast path, our pure path and the real Rust
``codex exec-server``.  :func:`measure` runs one configuration and returns its figures.

Why it is built like this (the driver must not be what is measured):

* request frames are encoded with the Cython codec (``encode_data``: ~0.1 µs) and framed by hand
  (server->client websocket frames are unmasked: a 2..10 byte header);
* everything produced while handling one read goes out in ONE ``transport.write`` (flushed when
  picows says the frame was the last of its read buffer, or at the next loop turn);
* one clock read per read batch, not per reply;
* the driver's own CPU per request and busy fraction are measured next to the executor's, so a
  run where the driver saturates (> 90% busy) is flagged "driver-bound" and not reported.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from picows import WSFrame, WSListener, WSMsgType, WSTransport

from .._accel import load_both
from .._wsframe import binary_header
from . import procfs
from .scenarios import INITIALIZE, INITIALIZED, Scenario

if TYPE_CHECKING:
    from ..stream import Multiplexer
    from .processes import ExecutorProcess

_fast_codec, _pure_codec = load_both("execrelay.wire._codec_c", "execrelay.wire._codec_py")
_codec = _fast_codec or _pure_codec
encode_data = _codec.encode_data
encode_control = _codec.encode_control
decode = _codec.decode
DATA = _codec.DATA
RESET = _codec.RESET
DRIVER_BOUND_BUSY = 0.90


class BenchStream:
    __slots__ = ("sid", "seq", "sent", "ready", "dead", "next_id", "scen", "rec", "window", "mux")

    def __init__(self, sid: str, scen: "Scenario | None" = None, rec: bool = True, window: int = 0) -> None:
        self.sid = sid
        self.scen = scen      # None: the run's scenario; else this stream's own (isolation runs)
        self.rec = rec        # False: not counted in the run's figures (the "big" stream)
        self.window = window  # 0: the run's window
        self.seq = 0
        self.sent: deque = deque()
        self.ready = False
        self.dead = False
        self.next_id = 1
        #: a RELIABLE stream's own opener-side Multiplexer (acks, segments); None: legacy
        self.mux: "Multiplexer | None" = None


@dataclass
class RunStats:
    requests: int = 0
    errors: int = 0
    resets: int = 0
    other_requests: int = 0
    reset_reasons: dict = field(default_factory=dict)
    latencies: list = field(default_factory=list)


class ExecutorConn(WSListener):
    """The rendezvous side of one executor websocket: streams, window, measurement."""

    def __init__(self, executor_id: str, on_connect: asyncio.Future) -> None:
        super().__init__()
        self.executor_id = executor_id
        self.on_connect = on_connect
        self.transport: WSTransport | None = None
        self.raw = None
        self.out: list = []
        self.flush_armed = False
        self.loop = asyncio.get_running_loop()
        self.streams: dict[str, BenchStream] = {}
        self.scenario: Scenario | None = None
        self.window = 1
        self.sending = False
        self.measuring = False
        self.measure_t0 = 0.0
        self.stats = RunStats()
        self.now = 0.0
        self.have_now = False
        self.ready_count = 0
        self.ready_target = 0
        self.ready_fut: asyncio.Future | None = None
        self.drain_fut: asyncio.Future | None = None
        self.outstanding = 0
        self.closed = asyncio.Event()
        #: reliable streams (their Multiplexer needs ticks for delayed acks)
        self.reliable: list[BenchStream] = []
        self._ticker: asyncio.TimerHandle | None = None

    # -- picows callbacks
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.raw = transport.underlying_transport
        if not self.on_connect.done():
            self.on_connect.set_result(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != WSMsgType.BINARY:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            if frame.last_in_buffer:
                self.flush()
            return
        self._ensure_now()
        data = frame.get_payload_as_bytes()
        f = decode(data)
        st = self.streams.get(f.stream_id)
        if st is not None and st.mux is not None:
            st.mux.feed(data, self.now)  # its messages come back through _on_data
            self._pump(st.mux)
        elif st is not None:
            if f.kind == DATA:
                self._on_data(st, f.payload)
            elif f.kind == RESET:
                st.dead = True
                self.stats.resets += 1
                if not self.stats.reset_reasons.get(f.reason):
                    self.stats.reset_reasons[f.reason] = 0
                self.stats.reset_reasons[f.reason] += 1
                self.outstanding -= len(st.sent)
                st.sent.clear()
                self._check_drain()
        if frame.last_in_buffer:
            self.flush()

    # -- protocol
    #: Websocket header of an outgoing frame: unmasked, as a server sends (the fake
    #: rendezvous); a harness-side subclass masks.
    @staticmethod
    def _header(n: int) -> bytes:
        return binary_header(n)

    def _on_data(self, st: BenchStream, p: bytes) -> None:
        if not (p.startswith(b'{"id":') or b'"id":' in p[-32:]):
            return  # a notification (process/exited ...)
        if not st.ready:
            st.ready = True
            self._send(st, INITIALIZED)
            self.ready_count += 1
            if self.ready_fut is not None and self.ready_count >= self.ready_target \
                    and not self.ready_fut.done():
                self.ready_fut.set_result(None)
            if self.sending:
                for _ in range(st.window or self.window):
                    self._request(st)
            return
        t_sent = st.sent.popleft()
        self.outstanding -= 1
        if not st.rec:
            self.stats.other_requests += 1
        elif self.measuring and t_sent >= self.measure_t0:
            stats = self.stats
            stats.requests += 1
            stats.latencies.append(self.now - t_sent)
            if b'"error"' in p[:24]:
                stats.errors += 1
        if self.sending:
            self._request(st)
        else:
            self._check_drain()

    def _check_drain(self) -> None:
        if self.outstanding <= 0 and self.drain_fut is not None and not self.drain_fut.done():
            self.drain_fut.set_result(None)

    def _request(self, st: BenchStream) -> None:
        rid = st.next_id
        st.next_id = rid + 1
        self._send(st, (st.scen or self.scenario).payload(rid))
        st.sent.append(self.now)
        self.outstanding += 1

    def _send(self, st: BenchStream, payload: bytes) -> None:
        if st.mux is not None:
            st.mux.send(st.sid, payload)
            self._pump(st.mux)
            return
        body = encode_data(st.sid, st.seq, 0, 0, payload)
        st.seq += 1
        out = self.out
        out.append(self._header(len(body)))
        out.append(body)

    def _pump(self, mux: "Multiplexer") -> None:
        out = self.out
        for frame in mux.poll_output(self.now):
            out.append(self._header(len(frame)))
            out.append(frame)

    def _open_reliable(self, st: BenchStream) -> None:
        """``st`` as a RELIABLE stream (segmented, acked) driven by its own Multiplexer."""
        from ..stream import OPENER, RELIABLE, Multiplexer

        def closed(sid: str, reason: str | None, by_peer: bool) -> None:
            st.dead = True
            self.stats.resets += 1
            self.outstanding -= len(st.sent)
            st.sent.clear()
            self._check_drain()

        st.mux = Multiplexer(OPENER, on_message=lambda sid, p: self._on_data(st, p), on_close=closed)
        st.mux.open_stream(st.sid, self.now, RELIABLE)
        self.reliable.append(st)
        if self._ticker is None:
            self._ticker = self.loop.call_later(0.002, self._tick)

    def _tick(self) -> None:
        """Every 2 ms while reliable streams live: their delayed acks and retransmissions."""
        self._ticker = None
        self.reliable = [st for st in self.reliable if not st.dead and st.sid in self.streams]
        if not self.reliable:
            return
        self._ensure_now()
        for st in self.reliable:
            st.mux.tick(self.now)  # type: ignore[union-attr]
            self._pump(st.mux)  # type: ignore[arg-type]
        self._ticker = self.loop.call_later(0.002, self._tick)

    def flush(self) -> None:
        self.flush_armed = False
        self.have_now = False
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            self.raw.write(data)

    def _ensure_now(self) -> None:
        if not self.have_now:
            self.now = time.perf_counter()
            self.have_now = True
            if not self.flush_armed:
                self.flush_armed = True
                self.loop.call_soon(self.flush)

    # -- control (called from coroutines)
    async def open_streams(self, prefix: str, n: int, timeout: float,
                           special: "list[BenchStream] | None" = None) -> None:
        """Open ``n`` new streams (+ ``special`` ones); wait until every one is initialized."""
        self.ready_count = 0
        self.ready_target = n + len(special or ())
        for st in special or ():
            self.streams[st.sid] = st
            self._ensure_now()
            if st.scen is not None and st.scen.reliable:
                self._open_reliable(st)
            self._send(st, INITIALIZE)
        self.ready_fut = self.loop.create_future()
        batch = 500
        for start in range(0, n, batch):
            self._ensure_now()
            for i in range(start, min(n, start + batch)):
                st = BenchStream(f"{prefix}-{i}")
                self.streams[st.sid] = st
                self._send(st, INITIALIZE)
            self.flush()
            await asyncio.sleep(0)
        await asyncio.wait_for(self.ready_fut, timeout)

    def start_load(self, scenario: Scenario, window: int) -> None:
        self.scenario = scenario
        self.window = window
        self.sending = True
        self._ensure_now()
        for st in self.streams.values():
            if st.ready and not st.dead:
                for _ in range(st.window or window):
                    self._request(st)
        self.flush()

    async def stop_load(self, timeout: float) -> None:
        self.sending = False
        self.measuring = False
        self.drain_fut = self.loop.create_future()
        self._check_drain()
        try:
            await asyncio.wait_for(self.drain_fut, timeout)
        except asyncio.TimeoutError:
            pass

    def reset_all(self) -> None:
        """End every stream of the run (Reset), so the executor frees its sessions."""
        self._ensure_now()
        for st in self.streams.values():
            if not st.dead:
                body = encode_control(RESET, st.sid, reason="bench_done")
                self.out.append(self._header(len(body)))
                self.out.append(body)
        self.flush()
        self.streams.clear()
        self.outstanding = 0


def percentile(sorted_vals: list, q: float) -> float:
    if not sorted_vals:
        return float("nan")
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


async def measure(ex: ExecutorProcess, scenario: Scenario, streams: int, window: int,
                  warmup: float, duration: float, run_tag: str, big: Scenario | None = None) -> dict:
    """Open ``streams`` fresh streams, load them, measure, drain, reset; return the figures.

    With ``big``, one more stream runs ``big`` back to back (window 1) during the run and is left
    out of the figures: the isolation test (what a bulk transfer does to the other streams).
    """
    conn = ex.conn
    assert conn is not None
    special = [BenchStream(f"{run_tag}-big", scen=big, rec=False, window=1)] if big is not None else None
    await conn.open_streams(run_tag, streams, timeout=60.0, special=special)
    conn.stats = RunStats()
    conn.start_load(scenario, window)
    await asyncio.sleep(warmup)
    t0 = time.perf_counter()
    conn.measure_t0 = t0
    conn.measuring = True
    c0, d0, m0 = ex.cpu(), procfs.self_cpu_seconds(), procfs.machine_busy_seconds()[0]
    await asyncio.sleep(duration)
    c1, d1, m1 = ex.cpu(), procfs.self_cpu_seconds(), procfs.machine_busy_seconds()[0]
    t1 = time.perf_counter()
    conn.measuring = False
    stats = conn.stats
    await conn.stop_load(timeout=max(5.0, duration))
    conn.reset_all()
    await asyncio.sleep(0.05)
    wall = t1 - t0
    n = stats.requests
    lat = sorted(stats.latencies)
    busy = (d1 - d0) / wall if wall > 0 else 0.0
    res = {
        "requests": n, "wall_s": wall, "rps": n / wall if wall > 0 else 0.0,
        "p50_ms": percentile(lat, 0.50) * 1e3, "p99_ms": percentile(lat, 0.99) * 1e3,
        "exec_cpu_us": (c1 - c0) / n * 1e6 if n else float("nan"),
        "exec_busy": (c1 - c0) / wall if wall > 0 else 0.0,
        "driver_cpu_us": (d1 - d0) / n * 1e6 if n else float("nan"),
        "driver_busy": busy, "driver_bound": busy > DRIVER_BOUND_BUSY,
        "errors": stats.errors, "resets": stats.resets, "big_requests": stats.other_requests,
        "reset_reasons": dict(stats.reset_reasons),
        # cores used by everything else on the machine (other agents' jobs) during the phase
        "others_cores": max(0.0, ((m1 - m0) - (c1 - c0) - (d1 - d0)) / wall) if wall > 0 else 0.0,
    }
    if len(lat) > 200:  # a thinned CDF for plots
        step = len(lat) / 200
        res["cdf_ms"] = [lat[int(i * step)] * 1e3 for i in range(200)] + [lat[-1] * 1e3]
    else:
        res["cdf_ms"] = [x * 1e3 for x in lat]
    return res


async def idle_memory(ex: ExecutorProcess, n: int, settle: float = 1.0) -> dict:
    """RSS with 1 initialized idle stream and with ``n``; KiB per extra stream."""
    conn = ex.conn
    assert conn is not None
    await conn.open_streams("idle1", 1, timeout=30.0)
    await asyncio.sleep(settle)
    r1 = ex.rss_kib()
    await conn.open_streams("idleN", n - 1, timeout=120.0)
    await asyncio.sleep(settle)
    rn = ex.rss_kib()
    conn.reset_all()
    return {"streams": n, "rss1_kib": r1, "rssN_kib": rn, "kib_per_stream": (rn - r1) / max(n - 1, 1)}
