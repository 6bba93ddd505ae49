"""Instructions per request of OUR executor's relay path, counted by callgrind (not timed).

The executor runs under ``valgrind --tool=callgrind`` (a child process, as in ``execrelay
bench``) and the bench driver sends a FIXED number of requests; the counters are zeroed after
the warm-up and dumped after the measured requests, so start-up, registration and stream
opening do not count.  Instruction counts do not depend on how loaded the shared machine is,
so an A/B of a change in the request path is readable where wall-clock figures are not.
The write/read syscalls themselves run in the kernel and are not counted: the figure is the
user-space cost (the callback chain, decode, dispatch, encode, the transport's framing).

    python benchmarks/callgrind_executor.py [--streams 8] [--window 1] [--requests 4000]
        [--scenario trivial] [--pythonpath DIR] [--keep OUT.callgrind]

``--pythonpath`` runs another checkout's ``src`` (e.g. a baseline) with the same driver.
Prints instructions per request, and with ``--keep`` leaves the dump for callgrind_annotate.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile

from execrelay.bench.fakerdv import Rendezvous
from execrelay.bench.processes import ExecutorProcess, ExecutorSpec
from execrelay.bench.scenarios import scenarios


async def _run_phase(conn, scen, window: int, n: int, timeout: float) -> None:
    conn.stats.requests = 0
    conn.measure_t0 = 0.0
    conn.measuring = True
    conn.start_load(scen, window)
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while conn.stats.requests < n:
        if loop.time() > end:
            raise TimeoutError(f"only {conn.stats.requests} of {n} requests answered")
        await asyncio.sleep(0.05)
    await conn.stop_load(timeout)


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=60)


async def main(args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    workdir = tempfile.mkdtemp(prefix="execrelay-cg-")
    out = os.path.join(workdir, "cg.out")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m", "execrelay",
            "exec-server", "--remote", "{remote}", "--executor-id", "{id}"]
    env = {"EXECRELAY_PURE": "0"}
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    rdv = Rendezvous()
    await rdv.start()
    ex = ExecutorProcess(ExecutorSpec("ours under callgrind", argv, env), rdv, "cg", workdir)
    try:
        conn = await ex.start(timeout=300)
        scen = scenarios(workdir)[args.scenario]
        await conn.open_streams("cg", args.streams, timeout=300)
        await _run_phase(conn, scen, args.window, max(200, args.requests // 10), 600)  # warm-up
        _control(ex.proc.pid, "-z")
        await _run_phase(conn, scen, args.window, args.requests, 1200)
        n = conn.stats.requests
        _control(ex.proc.pid, "-d")
        dumps = sorted(f for f in os.listdir(workdir) if f.startswith("cg.out"))
        text = open(os.path.join(workdir, dumps[-1])).read()
        total = int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))
        print(f"{args.scenario} s{args.streams} w{args.window}: {n} requests, "
              f"{total / n:,.0f} instructions per request (user space of the executor)")
        if args.keep:
            shutil.copy(os.path.join(workdir, dumps[-1]), args.keep)
    finally:
        ex.stop()
        rdv.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--scenario", default="trivial")
    p.add_argument("--pythonpath", default=None)
    p.add_argument("--keep", default=None)
    import uvloop

    uvloop.run(main(p.parse_args()))
