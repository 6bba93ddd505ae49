#!/usr/bin/env python3
"""End-to-end exec-server benchmark over local websockets (issue 4).

Starts the server under test as a child process (ours by default, or any ``--server-cmd`` that
prints its bound ``ws://IP:PORT`` as the first stdout line, e.g. the real ``codex exec-server``),
opens N websocket connections, initializes each, then keeps ``--window`` requests in flight per
connection.  The driver is picows on uvloop with pre-encoded (zero-mask) frames, and every reply
batch received in one read is answered with ONE socket write, so it costs far less CPU per
request than the server.  Reported per scenario: requests/s, p50/p99 latency (driver side,
write -> response), server CPU µs per request (utime+stime of the server's process tree from
/proc, sampled only around the measured phase), driver CPU µs per request and busy fraction;
a run whose driver was > 90% busy is flagged "driver-bound".

    python benchmarks/exec_server_e2e.py                       # ours, fast path
    EXECRELAY_PURE=1 python benchmarks/exec_server_e2e.py      # ours, pure path (server side)
    python benchmarks/exec_server_e2e.py --server-cmd "/path/to/codex exec-server --listen ws://127.0.0.1:0"
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from collections import deque
from typing import Any

import uvloop
from picows import WSListener, WSMsgType, ws_connect

from execrelay._wsframe import OP_TEXT, header
from execrelay.bench.procfs import all_stats

CLK = os.sysconf("SC_CLK_TCK")


def frame(payload: bytes) -> bytes:
    """A masked (all-zero key) text frame, so pre-encoded bytes can be written as-is."""
    return header(OP_TEXT, len(payload), masked=True) + payload


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of ``root`` and all its descendants (a launcher may exec a child)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, float] = {}
    for pid, fields in all_stats():
        children.setdefault(int(fields[1]), []).append(pid)
        stats[pid] = (int(fields[11]) + int(fields[12])) / CLK
    total = 0.0
    todo = [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, 0.0)
        todo.extend(children.get(pid, ()))
    return total


class Conn(WSListener):
    def __init__(self, bench: "Bench") -> None:
        self.bench = bench
        self.t: Any = None
        self.sent: deque[float] = deque()
        self.ready = asyncio.get_running_loop().create_future()
        self.handshake = True

    def on_ws_connected(self, transport: Any) -> None:
        self.t = transport
        self.raw = transport.underlying_transport

    def on_ws_frame(self, transport: Any, fr: Any) -> None:
        if fr.msg_type is not WSMsgType.TEXT:
            return
        if self.handshake:
            if not self.ready.done():
                self.ready.set_result(fr.get_payload_as_bytes())
            return
        now = time.perf_counter()
        b = self.bench
        sent = self.sent.popleft()
        if b.measuring:
            b.lat.append(now - sent)
            b.count += 1
        b.pending += 1
        if fr.last_in_buffer:
            k = b.pending
            b.pending = 0
            if b.running:
                self.raw.write(b.req_frame * k)
                t = time.perf_counter()
                self.sent.extend([t] * k)


class Bench:
    def __init__(self, req: bytes) -> None:
        self.req_frame = frame(req)
        self.lat: list[float] = []
        self.count = 0
        self.pending = 0
        self.measuring = False
        self.running = True


async def open_clients(url: str, bench: Bench, conns: int) -> list[Conn]:
    """``conns`` websocket connections to ``url``, each initialized (and ``initialized`` sent)."""
    clients: list[Conn] = []
    for _ in range(conns):
        _, c = await ws_connect(lambda: Conn(bench), url, max_frame_size=1 << 26)
        c.t.send(WSMsgType.TEXT, b'{"id":0,"method":"initialize","params":{"clientName":"bench"}}')
        await asyncio.wait_for(c.ready, 10)
        c.t.send(WSMsgType.TEXT, b'{"method":"initialized","params":{}}')
        c.handshake = False
        clients.append(c)
    return clients


def start_load(clients: list[Conn], bench: Bench, window: int) -> None:
    """Put ``window`` requests in flight on every connection; each answer sends the next one
    while ``bench.running``."""
    bench.running = True
    for c in clients:
        c.raw.write(bench.req_frame * window)
        t = time.perf_counter()
        c.sent.extend([t] * window)


async def run_scenario(url: str, server_pid: int, req: bytes, conns: int, window: int, warmup: float,
                       duration: float) -> dict:
    bench = Bench(req)
    clients = await open_clients(url, bench, conns)
    start_load(clients, bench, window)
    await asyncio.sleep(warmup)
    cpu0 = tree_cpu_seconds(server_pid)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    bench.measuring = True
    await asyncio.sleep(duration)
    bench.measuring = False
    t1 = time.perf_counter()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu1 = tree_cpu_seconds(server_pid)
    bench.running = False
    await asyncio.sleep(0.1)
    for c in clients:
        c.t.disconnect()
    wall = t1 - t0
    n = max(bench.count, 1)
    lat = sorted(bench.lat)
    driver_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {
        "requests": bench.count,
        "rps": bench.count / wall,
        "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None,
        "server_cpu_us_per_req": (cpu1 - cpu0) / n * 1e6,
        "driver_cpu_us_per_req": driver_cpu / n * 1e6,
        "driver_busy": driver_cpu / wall,
        "driver_bound": driver_cpu / wall > 0.9,
    }


def start_server(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    line = p.stdout.readline().decode().strip()  # type: ignore[union-attr]
    if not line.startswith("ws://"):
        p.kill()
        raise SystemExit(f"server did not print its URL: {line!r}")
    return p, line


READ_FILE = f"/tmp/execrelay-bench-64k-{os.getuid()}"
SCENARIOS = {
    "unknown": b'{"id":1,"method":"bench/unknown","params":{}}',
    "getMetadata": b'{"id":1,"method":"fs/getMetadata","params":{"path":"/tmp","sandbox":null}}',
    # the 0.171 dialect (a URI; --compat auto or 0.171): compare with getMetadata
    "getMetadataUri": b'{"id":1,"method":"fs/getMetadata","params":{"path":"file:///tmp","sandbox":null}}',
    "readFile64k": b'{"id":1,"method":"fs/readFile","params":{"path":"' + READ_FILE.encode() + b'","sandbox":null}}',
}
DEFAULT_SCENARIOS = ["unknown", "getMetadata"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server-cmd", default=None, help="command that starts the server and prints its ws URL")
    ap.add_argument("--pure", action="store_true", help="run our server with EXECRELAY_PURE=1")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--window", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--scenario", nargs="+", default=DEFAULT_SCENARIOS, choices=list(SCENARIOS))
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--json", default=None, help="write results as JSON here")
    args = ap.parse_args(argv)

    if "readFile64k" in args.scenario:
        with open(READ_FILE, "wb") as f:
            f.write(os.urandom(65536))
    env = dict(os.environ)
    if args.server_cmd:
        cmd = shlex.split(args.server_cmd)
        label = os.path.basename(cmd[0])
    else:
        cmd = [sys.executable, "-m", "execrelay", "exec-server", "--listen", "ws://127.0.0.1:0"]
        env["EXECRELAY_PURE"] = "1" if args.pure else env.get("EXECRELAY_PURE", "0")
        label = "execrelay-pure" if env["EXECRELAY_PURE"] not in ("", "0") else "execrelay-fast"
    proc, url = start_server(cmd, env)
    results = []
    try:
        for scen in args.scenario:
            for window in args.window:
                r = uvloop.run(run_scenario(url, proc.pid, SCENARIOS[scen], args.connections, window,
                                            args.warmup, args.duration))
                r.update(server=label, scenario=scen, connections=args.connections, window=window)
                results.append(r)
                flag = "  DRIVER-BOUND" if r["driver_bound"] else ""
                print(f"{label:16s} {scen:12s} conns={args.connections:<3d} window={window:<3d} "
                      f"{r['rps']:>9.0f} req/s  p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
                      f"server {r['server_cpu_us_per_req']:.2f} µs/req  driver {r['driver_cpu_us_per_req']:.2f} µs/req "
                      f"busy {r['driver_busy']:.0%}{flag}", flush=True)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
