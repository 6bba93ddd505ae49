"""Instructions per request of OUR executor, counted by callgrind (not timed).

The executor runs under ``valgrind --tool=callgrind`` (a child process, as in ``execrelay
bench``) and the driver sends a FIXED number of requests; the counters are zeroed after the
warm-up and dumped after the measured requests, so start-up, registration and stream or
connection opening do not count.  Instruction counts do not depend on how loaded the shared
machine is, so an A/B of a change in the request path is readable where wall-clock figures are
not.  The write/read syscalls themselves run in the kernel and are not counted: the figure is
the user-space cost (the callback chain, decode, dispatch, encode, the transport's framing).

Two paths:

* the relay path (default): the bench's fake rendezvous (:mod:`execrelay.bench.fakerdv`) and
  load generator drive ``exec-server --remote``; ``--streams`` streams x ``--window``.
* ``--local-ws``: ``exec-server --listen ws://127.0.0.1:0`` driven by the client of
  ``benchmarks/exec_server_e2e.py`` (``--streams`` connections x ``--window``; ``--scenario``
  is one of that script's: ``unknown``, ``getMetadata``, ...), the issue-16 "local websocket"
  figure.

    python benchmarks/callgrind_executor.py [--local-ws] [--streams 8] [--window 1]
        [--requests 4000] [--scenario trivial] [--pythonpath DIR] [--keep OUT.callgrind]

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
from typing import Awaitable, Callable

from execrelay.bench.fakerdv import Rendezvous
from execrelay.bench.processes import ExecutorProcess, ExecutorSpec
from execrelay.bench.procgroup import kill_group
from execrelay.bench.scenarios import scenarios

#: a measured phase: ``phase(n)`` sends requests until ``n`` are answered and none is in
#: flight, and returns how many were answered
Phase = Callable[[int], Awaitable[int]]


async def _run_phase(conn, scen, window: int, n: int, timeout: float) -> int:
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
    return conn.stats.requests


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=60)


def _valgrind(workdir: str) -> list[str]:
    """The command prefix running the executor under callgrind, its dumps in ``workdir``."""
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={os.path.join(workdir, 'cg.out')}",
            sys.executable, "-m", "execrelay", "exec-server"]


async def _measure(args: argparse.Namespace, pid: int, workdir: str, phase: Phase) -> None:
    """Warm up, zero the counters, run ``args.requests`` requests, dump and print."""
    await phase(max(200, args.requests // 10))
    _control(pid, "-z")
    n = await phase(args.requests)
    _control(pid, "-d")
    dumps = sorted(f for f in os.listdir(workdir) if f.startswith("cg.out"))
    with open(os.path.join(workdir, dumps[-1])) as fh:
        text = fh.read()
    m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    assert m is not None, "no totals line in the callgrind dump"
    where = "local ws" if args.local_ws else "relay"
    print(f"{where} {args.scenario} s{args.streams} w{args.window}: {n} requests, "
          f"{int(m.group(1)) / n:,.0f} instructions per request (user space of the executor)")
    if args.keep:
        shutil.copy(os.path.join(workdir, dumps[-1]), args.keep)


async def _relay(args: argparse.Namespace, workdir: str, env: dict[str, str]) -> None:
    argv = _valgrind(workdir) + ["--remote", "{remote}", "--executor-id", "{id}"]
    rdv = Rendezvous()
    await rdv.start()
    ex = ExecutorProcess(ExecutorSpec("ours under callgrind", argv, env), rdv, "cg", workdir)
    try:
        conn = await ex.start(timeout=300)
        scen = scenarios(workdir)[args.scenario]
        await conn.open_streams("cg", args.streams, timeout=300)
        await _measure(args, ex.proc.pid, workdir,
                       lambda n: _run_phase(conn, scen, args.window, n, 1200))
    finally:
        ex.stop()
        rdv.close()


async def _local_ws(args: argparse.Namespace, workdir: str, env: dict[str, str]) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import exec_server_e2e as e2e

    proc, url = e2e.start_server(_valgrind(workdir) + ["--listen", "ws://127.0.0.1:0"], dict(os.environ, **env))
    try:
        bench = e2e.Bench(e2e.SCENARIOS[args.scenario])
        clients = await asyncio.wait_for(e2e.open_clients(url, bench, args.streams), 300)

        async def phase(n: int) -> int:
            bench.count = 0
            bench.measuring = True
            e2e.start_load(clients, bench, args.window)
            loop = asyncio.get_running_loop()
            end = loop.time() + 1200
            while bench.count < n or any(c.sent for c in clients):
                if bench.count >= n:
                    bench.running = False  # stop sending; wait for what is in flight
                if loop.time() > end:
                    raise TimeoutError(f"only {bench.count} of {n} requests answered")
                await asyncio.sleep(0.05)
            bench.measuring = False
            return bench.count

        await _measure(args, proc.pid, workdir, phase)
    finally:
        kill_group(proc)


async def main(args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    if args.local_ws and args.scenario == "trivial":
        args.scenario = "unknown"  # the same request under exec_server_e2e's name
    workdir = tempfile.mkdtemp(prefix="execrelay-cg-")
    env = {"EXECRELAY_PURE": "0"}
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    try:
        await (_local_ws if args.local_ws else _relay)(args, workdir, env)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--local-ws", action="store_true",
                   help="the local websocket exec-server (exec_server_e2e's client) instead of the relay")
    p.add_argument("--streams", type=int, default=8, help="relay streams, or local websocket connections")
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--scenario", default="trivial")
    p.add_argument("--pythonpath", default=None)
    p.add_argument("--keep", default=None)
    import uvloop

    uvloop.run(main(p.parse_args()))
