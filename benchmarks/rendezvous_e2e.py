#!/usr/bin/env python
"""Frames/s and MB/s through the rendezvous, small and 1 MiB frames.

Setup: the rendezvous runs as a subprocess (``execrelay rendezvous``, uvloop) so its CPU is
read from ``/proc/PID/stat`` apart from the driver's.  The driver (this process, uvloop) plays
one fake executor and N harness sockets:

- each harness socket owns one stream and keeps ``window`` frames in flight; its frames are
  pre-encoded (``execrelay.wire.encode_data``), wrapped in masked websocket frames (zero mask
  key, so the server still runs its unmask pass) and written in blobs: one write per blob;
- the executor is a byte echo after the websocket handshake: every server-to-client frame is
  written back as a masked client frame (zero key; the run's frames all have one size, so the
  echo re-frames by offset), so the fake executor costs little and every frame crosses the
  rendezvous twice.

Reported per run: frames routed per second (both directions), MB/s routed, rendezvous CPU
(cores and µs per routed frame) and the driver's own CPU (busy fraction; > 0.9 marks the run
"driver-bound", not a result), and frames/s per rendezvous core (frames/s over its cores).
Builds are interleaved A B A B.

    python benchmarks/rendezvous_e2e.py [--harnesses 8] [--seconds 3] [--rounds 2]
    BENCH_RDV_BASE_SRC=/tmp/base/src python benchmarks/rendezvous_e2e.py --builds base,fast,fastpy --cases small
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import resource
import statistics
import subprocess
import sys
import time

from execrelay._wsframe import OP_BINARY, header, header_size

SECRET = "bench-secret-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def masked_frame(payload: bytes) -> bytes:
    # zero mask key: XOR is the identity
    return header(OP_BINARY, len(payload), masked=True) + payload


_KEEP: list[asyncio.StreamWriter] = []


def server_wire_size(n: int) -> int:
    return n + header_size(n)


async def ws_handshake(host: str, port: int, path: str) -> asyncio.Transport:
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"upgrade refused: {head[:80]!r}")
    assert not reader._buffer, "server sent data before we did"  # noqa: SLF001
    _KEEP.append(writer)  # a collected StreamWriter closes its transport
    return writer.transport  # type: ignore[return-value]


class Echo(asyncio.Protocol):
    """The fake executor: every server frame (all ``frame_len`` bytes of payload, the run's
    fixed size) is written back as a masked client frame (zero key), one write per read.
    A picows server refuses unmasked client frames (RFC 6455 §5.1), so the echo re-frames."""

    def __init__(self, transport: asyncio.Transport, frame_len: int) -> None:
        self.transport = transport
        self.skip = header_size(frame_len)
        self.record = server_wire_size(frame_len)
        self.masked = header(OP_BINARY, frame_len, masked=True)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        rec, skip, mh = self.record, self.skip, self.masked
        n = len(buf) // rec
        self.transport.writelines([part for i in range(n)
                                   for part in (mh, buf[i * rec + skip:(i + 1) * rec])])
        self.buf = buf[n * rec:]

    def connection_lost(self, exc: Exception | None) -> None:
        pass


class Harness(asyncio.Protocol):
    """Keeps ``window`` frames in flight, written ``per_blob`` at a time."""

    def __init__(self, transport: asyncio.Transport, frame: bytes, per_blob: int, window: int,
                 reply_wire: int) -> None:
        self.transport = transport
        self.blob = masked_frame(frame) * per_blob
        self.per_blob = per_blob
        self.window = window
        self.reply_wire = reply_wire
        self.rx = 0
        self.frames = 0
        self.outstanding = 0
        self.running = True

    def pump(self) -> None:
        while self.running and self.outstanding + self.per_blob <= self.window:
            self.transport.write(self.blob)
            self.outstanding += self.per_blob

    def data_received(self, data: bytes) -> None:
        self.rx += len(data)
        done = self.rx // self.reply_wire
        new = done - self.frames
        if new:
            self.frames = done
            self.outstanding -= new
            self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.running = False


async def start_rendezvous(build: str) -> tuple[subprocess.Popen, int]:
    """``build``: fast, fastpy (this tree, its per-frame path in Python: ``--frames python``),
    base (the tree in ``$BENCH_RDV_BASE_SRC``, e.g. the commit before the compiled frame path,
    built in place), base2 (``$BENCH_RDV_BASE2_SRC``, a second reference tree), pure, or aiohttp (the fast build with its websockets on aiohttp)."""
    env = dict(os.environ, EXECRELAY_RENDEZVOUS_SECRET=SECRET, EXECRELAY_PURE="1" if build == "pure" else "0")
    ws = ["--websockets", "aiohttp"] if build == "aiohttp" else []
    if build == "fastpy":
        ws = ["--frames", "python"]
    if build in ("base", "base2"):
        var = "BENCH_RDV_BASE_SRC" if build == "base" else "BENCH_RDV_BASE2_SRC"
        base = os.environ.get(var)
        if not base:
            raise SystemExit(f"build {build!r} needs {var}=<src directory of that tree, built in place>")
        env["PYTHONPATH"] = base
    else:
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"),
             *filter(None, [os.environ.get("PYTHONPATH")])])
    prefix = os.environ.get("BENCH_RDV_PREFIX", "").split()  # e.g. "-m cProfile -o /tmp/rdv.prof"
    # BENCH_RDV_CALLGRIND=DIR: run it under callgrind; the measured window's instructions are
    # reported per routed frame (callgrind_control zeroes and dumps around the window)
    cg = os.environ.get("BENCH_RDV_CALLGRIND")
    wrap = (["valgrind", "--tool=callgrind", "--collect-atstart=yes",
             f"--callgrind-out-file={cg}/callgrind.%p"] if cg else [])
    proc = subprocess.Popen([*wrap, sys.executable, *prefix, "-m", "execrelay", "rendezvous", "--listen", "127.0.0.1:0", *ws],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = await asyncio.to_thread(proc.stdout.readline)  # type: ignore[union-attr]
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError(f"rendezvous did not start: {line!r}")
    return proc, int(m.group(1))


async def one_run(build: str, payload_bytes: int, harnesses: int, window: int, per_blob: int,
                  seconds: float) -> dict:
    from execrelay.rendezvous import tokens
    from execrelay.wire import encode_data

    proc, port = await start_rendezvous(build)
    transports: list[asyncio.Transport] = []
    try:
        secret = SECRET.encode()
        eid = "bench"
        reg = tokens.mint(secret, "executor", eid, 600)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"POST /cloud/executor/{eid}/register HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Authorization: Bearer {reg}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").encode())
        body = (await reader.read()).decode()
        writer.close()
        m = re.search(r'"url": ?"ws://[^/]+(/executor/[^"]+)"', body)
        assert m, body
        loop = asyncio.get_running_loop()
        t = await ws_handshake("127.0.0.1", port, m.group(1))
        frame_len = len(encode_data("stream-0000", 0, 0, 0, b"x" * payload_bytes))
        echo = Echo(t, frame_len)
        t.set_protocol(echo)
        transports.append(t)
        hs: list[Harness] = []
        for i in range(harnesses):
            tok = tokens.mint(secret, "harness", eid, 600)
            t = await ws_handshake("127.0.0.1", port, f"/harness?role=harness&executor_id={eid}&sig={tok}")
            frame = encode_data(f"stream-{i:04d}", 0, 0, 0, b"x" * payload_bytes)
            h = Harness(t, frame, per_blob, window, server_wire_size(len(frame)))
            t.set_protocol(h)
            transports.append(t)
            hs.append(h)
        frame_len = len(encode_data("stream-0000", 0, 0, 0, b"x" * payload_bytes))
        for h in hs:
            h.pump()
        await asyncio.sleep(min(1.0, seconds / 3))  # warm-up
        f0 = sum(h.frames for h in hs)
        cg = os.environ.get("BENCH_RDV_CALLGRIND")
        if cg:
            subprocess.run(["callgrind_control", "-z", str(proc.pid)], capture_output=True, check=True)
            f0 = sum(h.frames for h in hs)
        c0, d0, w0 = proc_cpu(proc.pid), self_cpu(), time.perf_counter()
        await asyncio.sleep(seconds)
        f1 = sum(h.frames for h in hs)
        if os.environ.get("BENCH_DEBUG"):
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            w2.write(f"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            print((await r2.read()).decode(), [(h.rx, h.frames, h.outstanding) for h in hs])
        c1, d1, w1 = proc_cpu(proc.pid), self_cpu(), time.perf_counter()
        ir = float("nan")
        if cg:
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], capture_output=True, check=True)
            f1 = sum(h.frames for h in hs)  # frames echoed until the dump (an upper bound)
            ir = callgrind_total(cg, proc.pid)
        for h in hs:
            h.running = False
        wall = w1 - w0
        echoed = f1 - f0
        routed = 2 * echoed
        rdv_cpu = c1 - c0
        drv_cpu = d1 - d0
        return {
            "build": build, "payload": payload_bytes, "frame": frame_len,
            "harnesses": harnesses, "window": window,
            "frames_per_s": routed / wall, "mb_per_s": routed * frame_len / wall / 1e6,
            "rdv_cores": rdv_cpu / wall, "rdv_us_per_frame": rdv_cpu / routed * 1e6 if routed else float("nan"),
            "ir_per_frame": ir / (2 * (f1 - f0)) if f1 > f0 else float("nan"),
            "driver_busy": drv_cpu / wall, "driver_us_per_frame": drv_cpu / routed * 1e6 if routed else float("nan"),
        }
    finally:
        for t in transports:
            t.abort()
        _KEEP.clear()
        proc.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), 10)
        except asyncio.TimeoutError:
            proc.kill()


def callgrind_total(directory: str, pid: int) -> float:
    """Instructions in the newest callgrind dump of ``pid`` (its ``summary:``/``totals:`` line)."""
    import glob

    dumps = sorted(glob.glob(f"{directory}/callgrind.{pid}.*"), key=os.path.getmtime)
    with open(dumps[-1]) as fh:
        for line in fh:
            if line.startswith(("summary:", "totals:")):
                return float(line.split()[1])
    return float("nan")


def fmt(r: dict) -> str:
    tag = " DRIVER-BOUND" if r["driver_busy"] > 0.9 else ""
    return (f"{r['build']:7s} payload={r['payload']:>8d}B harnesses={r['harnesses']:<3d} window={r['window']:<4d} "
            f"{r['frames_per_s'] / 1e3:8.1f} kframes/s {r['mb_per_s']:8.1f} MB/s | rendezvous "
            f"{r['rdv_cores']:.2f} cores {r['rdv_us_per_frame']:6.2f} us/frame "
            f"{1 / r['rdv_us_per_frame']:5.2f} Mframes/s/core | driver busy "
            f"{r['driver_busy']:.2f} ({r['driver_us_per_frame']:.2f} us/frame){tag}"
            + (f" | {r['ir_per_frame']:.0f} instr/frame" if r.get("ir_per_frame") == r.get("ir_per_frame") else ""))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harnesses", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--small", type=int, default=100, help="small payload bytes (default %(default)s)")
    ap.add_argument("--big", type=int, default=1 << 20, help="big payload bytes (default 1 MiB)")
    ap.add_argument("--builds", default="fast,pure",
                    help="fast, fastpy (per-frame path in Python), base ($BENCH_RDV_BASE_SRC), base2 "
                         "($BENCH_RDV_BASE2_SRC), pure, "
                         "aiohttp (fast build, websockets on aiohttp)")
    ap.add_argument("--cases", default="small,big")
    args = ap.parse_args()
    cases = [c for name, c in (("small", (args.small, 512, 128)), ("big", (args.big, 4, 1)))
             if name in args.cases.split(",")]
    results: list[dict] = []
    for _ in range(args.rounds):
        for payload, window, per_blob in cases:
            for build in args.builds.split(","):
                r = await one_run(build, payload, args.harnesses, window, per_blob, args.seconds)
                print(fmt(r), flush=True)
                results.append(r)
    print("\nmedians:")
    for payload, window, _ in cases:
        for build in args.builds.split(","):
            rs = [r for r in results if r["payload"] == payload and r["build"] == build]
            if not rs:
                continue
            med = {k: statistics.median(r[k] for r in rs) for k in
                   ("frames_per_s", "mb_per_s", "rdv_cores", "rdv_us_per_frame", "driver_busy", "driver_us_per_frame")} | {"ir_per_frame": statistics.median(r.get("ir_per_frame", float("nan")) for r in rs)}
            spread = (min(r["frames_per_s"] for r in rs) / 1e3, max(r["frames_per_s"] for r in rs) / 1e3)
            print(fmt({**rs[0], **med}) + f"  [kframes/s range {spread[0]:.1f}-{spread[1]:.1f}]")


if __name__ == "__main__":
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
