#!/usr/bin/env python3
"""User / system CPU and system calls per request: our executor and the Rust one, over the relay.

Why this exists: at window 1 the CPU-per-request ratio to Rust moved from 0.41x (unpinned) to
1.03x (``--pin``: driver on CPU 0, executor on CPU 1) between two runs of the same tree on the
same machine (benchmarks/results/2026-12-02-round2b/report.md).  This script splits the figure
the bench reports into its user and system halves (``/proc/PID/task/*/stat``, every thread) and
counts the executor's system calls per request (``strace -c -f`` attached to every thread for a
second phase, whose timing is then not used), so the report can say where a pinned run's cost
goes instead of guessing.

    python benchmarks/syscalls_executor.py [--window 1] [--scenario trivial] [--pin]
        [--spin]   # with --pin: a nice-19 busy loop on the executor's CPU, so it never idles

The driver is the bench's fake rendezvous and load generator (``execrelay.bench``), 8 streams.
Needs ``strace`` and the Rust executor (npm), as ``execrelay bench`` does.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from callgrind_executor import _run_phase  # noqa: E402

from execrelay.bench.executors import executor_specs  # noqa: E402
from execrelay.bench.fakerdv import Rendezvous  # noqa: E402
from execrelay.bench.processes import ExecutorProcess, ExecutorSpec  # noqa: E402
from execrelay.bench.scenarios import scenarios  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def user_sys_seconds(pid: int) -> tuple[float, float]:
    """utime and stime of every thread of ``pid``, in seconds."""
    user = system = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        user += int(fields[11])
        system += int(fields[12])
    return user / CLK, system / CLK


async def one(args: argparse.Namespace, key: str, spec: ExecutorSpec, workdir: str) -> None:
    rdv = Rendezvous()
    await rdv.start()
    ex = ExecutorProcess(spec, rdv, key, workdir)
    spinner = None
    try:
        conn = await ex.start(timeout=120)
        scen = scenarios(workdir)[args.scenario]
        await conn.open_streams(key, 8, timeout=60)
        pid = ex.proc.pid
        if args.pin:
            os.sched_setaffinity(0, {0})
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(tid), {1})
            if args.spin:
                spinner = subprocess.Popen(["taskset", "-c", "1", "nice", "-n", "19", sys.executable,
                                            "-c", "while True: pass"])
        await _run_phase(conn, scen, args.window, 3000, 120)
        u0, s0 = user_sys_seconds(pid)
        t0 = time.perf_counter()
        n = await _run_phase(conn, scen, args.window, args.requests, 300)
        u1, s1 = user_sys_seconds(pid)
        wall = time.perf_counter() - t0
        print(f"{key}: {n} requests in {wall:.2f} s: user {1e6 * (u1 - u0) / n:.2f} µs/request, "
              f"system {1e6 * (s1 - s0) / n:.2f} µs/request")
        out = os.path.join(workdir, f"strace-{key}.txt")
        tids = os.listdir(f"/proc/{pid}/task")
        st = subprocess.Popen(["strace", "-c", "-f", "-o", out] + [a for t in tids for a in ("-p", t)],
                              stderr=subprocess.DEVNULL)
        await asyncio.sleep(1.0)  # strace attaches
        n = await _run_phase(conn, scen, args.window, 5000, 300)
        st.send_signal(signal.SIGINT)
        st.wait(30)
        print(f"{key}: system calls per request (strace, {n} requests):")
        with open(out) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 5 and parts[3].isdigit() and int(parts[3]) / n >= 0.02:
                    print(f"   {parts[-1]:16s} {int(parts[3]) / n:6.2f}")
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
        ex.stop()
        rdv.close()


async def main(args: argparse.Namespace) -> None:
    workdir = tempfile.mkdtemp(prefix="execrelay-syscalls-")
    specs = executor_specs(["fast", "rust"], workdir)
    for key in ("fast", "rust"):
        if key in specs:
            await asyncio.wait_for(one(args, key, specs[key], workdir), 900)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--scenario", default="trivial")
    ap.add_argument("--requests", type=int, default=40000)
    ap.add_argument("--pin", action="store_true", help="driver on CPU 0, executor on CPU 1")
    ap.add_argument("--spin", action="store_true", help="with --pin: keep the executor's CPU busy")
    asyncio.run(main(ap.parse_args()))
