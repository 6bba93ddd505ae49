#!/usr/bin/env python
"""Local-websocket exec-server throughput: ours (fast, pure) vs the real codex 0.131.0, one run.

For each server and scenario: requests/s, p50/p99 latency and the server's CPU µs per request
(``/proc/PID/stat`` utime+stime, sampled around the measured phase only).

Driver (this process, uvloop when available): ``--connections`` raw websocket connections, each
does ``initialize``/``initialized`` and then keeps ``window`` requests in flight, closed loop:
the ``window`` pre-encoded masked frames (zero mask key) go out in ONE write, then the driver
reads until all ``window`` responses are in (0.131.0 answers one connection's requests in
order). Latency = response read time - batch write time. The driver reports its own CPU
busy fraction; > 0.9 marks a run "driver-bound" (not a result). Servers are interleaved
A B C A B C.

    python benchmarks/codex_exec_server_e2e.py [--seconds 3] [--rounds 2] [--connections 8]
        [--impls real,ours-fast,ours-pure] [--windows 1,16] [--quickack]

Finding: with window > 1 the real 0.131.0 server stalls ~40 ms per batch (2.9k requests/s):
it writes each response separately and does not set TCP_NODELAY on accepted sockets, so
Nagle holds the second response until the client's delayed ACK. ``--quickack`` makes the
driver ACK every read at once, which removes that stall and shows the server's own speed.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from execrelay._wsframe import OP_TEXT, header  # noqa: E402
from interop.codex import ensure_codex  # noqa: E402
from interop.procs import ServerProcess, isolated_env  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
QUICKACK = False  # --quickack: re-arm TCP_QUICKACK after every read (see module docstring)
REQUESTS = {
    "unknown": b'{"id":1,"method":"bench/unknown"}',
    "getMetadata": b'{"id":1,"method":"fs/getMetadata","params":{"path":"/tmp"}}',
}


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def client_frame(payload: bytes) -> bytes:
    """A masked text frame with a zero mask key (payload unchanged, server still unmasks)."""
    return header(OP_TEXT, len(payload), masked=True) + payload


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.buf = reader, writer, bytearray()
        self.sock = writer.get_extra_info("socket")

    @classmethod
    async def open(cls, host: str, port: int) -> "Conn":
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"websocket upgrade failed: {head[:200]!r}")
        conn = cls(reader, writer)
        conn.writer.write(client_frame(b'{"id":0,"method":"initialize","params":{"clientName":"bench"}}')
                          + client_frame(b'{"method":"initialized","params":{}}'))
        await conn.read_messages(1)
        return conn

    async def read_messages(self, count: int) -> list[float]:
        """Read ``count`` server messages; return the arrival time of each."""
        times: list[float] = []
        buf = self.buf
        while len(times) < count:
            # parse as many complete frames as the buffer holds
            while len(times) < count and len(buf) >= 2:
                b0, b1 = buf[0], buf[1]
                n, off = b1 & 0x7F, 2
                if n == 126:
                    if len(buf) < 4:
                        break
                    n, off = struct.unpack_from("!H", buf, 2)[0], 4
                elif n == 127:
                    if len(buf) < 10:
                        break
                    n, off = struct.unpack_from("!Q", buf, 2)[0], 10
                if len(buf) < off + n:
                    break
                opcode = b0 & 0x0F
                del buf[:off + n]
                if opcode == 0x8:
                    raise RuntimeError("server closed the connection")
                if opcode in (0x1, 0x2):
                    times.append(time.perf_counter())
            if len(times) >= count:
                break
            data = await self.reader.read(1 << 20)
            if not data:
                raise RuntimeError("server dropped the connection")
            if QUICKACK:
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            buf += data
        return times

    def close(self) -> None:
        self.writer.close()


async def measure(url: str, pid: int, request: bytes, connections: int, window: int, seconds: float) -> dict:
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    conns = [await Conn.open(host, int(port)) for _ in range(connections)]
    batch = client_frame(request) * window
    latencies: list[float] = []
    done = 0
    stop_at = 0.0

    async def worker(c: Conn) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            c.writer.write(batch)
            for t in await c.read_messages(window):
                latencies.append(t - t0)
            done += window

    # warm-up
    stop_at = time.perf_counter() + 0.3
    await asyncio.gather(*(worker(c) for c in conns))
    latencies.clear()
    done = 0
    cpu0, drv0, t0 = proc_cpu(pid), time.process_time(), time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - t0
    cpu, drv = proc_cpu(pid) - cpu0, time.process_time() - drv0
    for c in conns:
        c.close()
    latencies.sort()
    return {
        "rps": done / wall,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "cpu_us": 1e6 * cpu / max(done, 1),
        "driver_busy": drv / wall,
    }


def start(impl: str, tmp: Path) -> ServerProcess:
    extra: dict[str, str] = {}
    if impl == "real":
        argv = [str(ensure_codex()), "exec-server", "--listen", "ws://127.0.0.1:0"]
    else:
        argv = [sys.executable, "-m", "execrelay", "exec-server", "--listen", "ws://127.0.0.1:0"]
        if impl == "ours-pure":
            extra["EXECRELAY_PURE"] = "1"
    env = isolated_env(tmp / f"{impl}-home", extra)
    if impl == "ours-fast":
        env.pop("EXECRELAY_PURE", None)
    return ServerProcess(argv, env=env, log_dir=tmp, name=impl).start()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--impls", default="real,ours-fast,ours-pure")
    ap.add_argument("--windows", default="1,16")
    ap.add_argument("--methods", default="unknown,getMetadata")
    ap.add_argument("--quickack", action="store_true",
                    help="ack every read at once (hides the real server's Nagle stall at window > 1)")
    args = ap.parse_args()
    global QUICKACK
    QUICKACK = args.quickack
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="codex-bench-"))
    impls = args.impls.split(",")
    servers = {impl: start(impl, tmp) for impl in impls}
    results: dict[tuple[str, str, int], list[dict]] = {}
    try:
        for method in args.methods.split(","):
            for window in (int(w) for w in args.windows.split(",")):
                for _ in range(args.rounds):
                    for impl in impls:  # interleaved A B C A B C
                        srv = servers[impl]
                        assert srv.url and srv.proc
                        r = asyncio.run(measure(srv.url, srv.proc.pid, REQUESTS[method], args.connections,
                                                window, args.seconds))
                        results.setdefault((method, impl, window), []).append(r)
    finally:
        for srv in servers.values():
            srv.stop()
    print(f"\n{args.connections} connections, {args.seconds:.0f} s x {args.rounds} rounds, medians "
          f"(spread = min..max requests/s), quickack={'on' if QUICKACK else 'off'}\n")
    print("| method | window | server | requests/s | spread | p50 ms | p99 ms | server CPU µs/req | driver busy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (method, impl, window), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        spread = f"{min(r['rps'] for r in runs)/1000:.1f}k..{max(r['rps'] for r in runs)/1000:.1f}k"
        flag = " (driver-bound)" if med["driver_busy"] > 0.9 else ""
        print(f"| {method} | {window} | {impl} | {med['rps']/1000:.1f}k | {spread} | {med['p50_ms']:.3f} | "
              f"{med['p99_ms']:.3f} | {med['cpu_us']:.1f} | {med['driver_busy']:.2f}{flag} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
