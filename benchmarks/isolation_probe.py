"""Where the isolation scenario's added p99 comes from (docs/benchmarks.md §Isolation: where
the time goes).

Runs ``trivial s8 w1`` alone and beside ONE bulk stream (``--big``), interleaved, against our
executor started under :mod:`execrelay.bench.isotrace` (timestamps of every small frame read
and written, the bytes waiting in its transport buffer and kernel send queue at each write,
its loop's lateness) and, in the same run, against the Rust 0.131.0 executor (driver-side
figures only).  The driver (this process, playing the rendezvous as in ``execrelay bench``)
records per small request when it was sent, when the read batch holding the reply began
(the latency ``execrelay bench`` reports) and when the reply was dispatched, and how long it
spent on every frame it took over 0.3 ms to handle.

Each small request's latency splits into (one clock, CLOCK_MONOTONIC, in both processes):

* ``to_exec``: driver send -> executor read (the driver's flush, the wire, the executor's
  loop getting to it);
* ``in_exec``: executor read -> executor write of the reply;
* ``back``: executor write -> the driver's read batch that holds it (bytes ahead of it in the
  executor's transport buffer and in both kernels' queues, and the driver still busy with
  earlier frames).

Printed: medians over all requests and over the slowest 1 % (what p99 is made of), per
variant and run; ``--json`` keeps everything.

    python benchmarks/isolation_probe.py --big reliable64m --reps 3 [--pin auto] [--json out.json]
                                         [--via-rendezvous] [--pyspy DIR]

``--via-rendezvous``: the executor registered with ``execrelay rendezvous``, the driver one harness
websocket of it, the bulk stream a harness process of its own (:mod:`execrelay.bench.rdv_bulk`);
``back`` then includes the rendezvous' hop.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict

from execrelay.bench import executors, load, pinning
from execrelay.bench.fakerdv import Rendezvous
from execrelay.bench.processes import ExecutorProcess, ExecutorSpec, RendezvousProcess
from execrelay.bench.rdv import ViaRendezvous
from execrelay.bench.rdv_bulk import BulkHarness
from execrelay.bench.scenarios import scenarios

_driver: list = []      # (sid, t_sent, t_batch, t_dispatch) per measured small reply
_slow: list = []        # (t_start, seconds, CPU seconds, frame bytes): frames the driver took > 0.3 ms on
_issued: dict = {}      # (sid, t_sent) -> when the driver queued that request
_flushes: list = []     # when the driver wrote its queued frames to the socket


def _patch_driver() -> None:
    """Record every measured small reply and every slow frame in the driver (this process)."""
    on_data = load.ExecutorConn._on_data
    on_frame = load.ExecutorConn.on_ws_frame
    request = load.ExecutorConn._request
    flush = load.ExecutorConn.flush
    perf = time.perf_counter
    cpu = time.thread_time

    def traced_request(self: load.ExecutorConn, st: load.BenchStream) -> None:
        request(self, st)
        if st.rec and self.measuring:
            _issued[(st.sid, st.sent[-1])] = perf()

    def traced_flush(self: load.ExecutorConn) -> None:
        if self.out and self.measuring:
            _flushes.append(perf())
        flush(self)

    def traced_on_data(self: load.ExecutorConn, st: load.BenchStream, p: bytes) -> None:
        if st.rec and st.ready and st.sent and self.measuring and st.sent[0] >= self.measure_t0:
            _driver.append((st.sid, st.sent[0], self.now, perf()))
        on_data(self, st, p)

    def traced_on_frame(self: load.ExecutorConn, transport, frame) -> None:  # type: ignore[no-untyped-def]
        t, c = perf(), cpu()
        on_frame(self, transport, frame)
        d = perf() - t
        if d > 0.0003:
            _slow.append((t, d, cpu() - c, frame.payload_size))

    load.ExecutorConn._on_data = traced_on_data  # type: ignore[method-assign]
    load.ExecutorConn.on_ws_frame = traced_on_frame  # type: ignore[method-assign]
    load.ExecutorConn._request = traced_request  # type: ignore[method-assign]
    load.ExecutorConn.flush = traced_flush  # type: ignore[method-assign]


def _read_trace(path: str) -> list:
    out: list = []
    try:
        with open(path) as fh:
            for line in fh:
                out.extend(json.loads(line))
    except FileNotFoundError:
        pass
    return out


async def _collect(path: str) -> list:
    """Ask the traced executor for its records (module isotrace) and read them."""
    open(path + ".dump", "w").close()
    for _ in range(100):
        await asyncio.sleep(0.1)
        if not os.path.exists(path + ".dump"):
            break
    recs = _read_trace(path)
    if os.path.exists(path):
        os.unlink(path)
    return recs


def _median(xs: list) -> float:
    return statistics.median(xs) if xs else float("nan")


def _split(reqs: list, trace: list) -> dict:
    """Per request: latency and its parts (module docstring), from the driver's records and the
    executor's trace; medians over all and over the slowest 1 %."""
    ins: dict = defaultdict(list)
    outs: dict = defaultdict(list)
    ahead: dict = defaultdict(list)
    lag = []
    bulk = []
    paused: list = []  # (start, end) intervals the executor's transport was paused
    p_start = None
    for r in trace:
        if r[0] == "in":
            ins[r[2]].append(r[1])
        elif r[0] == "out":
            for sid in r[6]:
                outs[sid].append(r[1])
                ahead[sid].append((r[4], r[5], r[3]))
        elif r[0] == "lag":
            lag.append((r[1], r[2], r[3], r[4], r[5]))
        elif r[0] == "bulk":
            bulk.append(r[1])
        elif r[0] == "pause":
            if r[2] and p_start is None:
                p_start = r[1]
            elif not r[2] and p_start is not None:
                paused.append((p_start, r[1]))
                p_start = None
    p_ends = [e for _, e in paused]
    rows = []
    for sid, t_sent, t_batch, t_disp in reqs:
        i_list, o_list = ins.get(sid, []), outs.get(sid, [])
        i = bisect.bisect_right(i_list, t_sent)
        if i >= len(i_list):
            continue
        t_in = i_list[i]
        j = bisect.bisect_left(o_list, t_in)
        if j >= len(o_list) or o_list[j] > t_batch + 0.001:
            continue
        wbuf, outq, nbytes = ahead[sid][j]
        t_issue = _issued.get((sid, t_sent), t_sent)
        k = bisect.bisect_left(_flushes, t_issue)
        t_flush = _flushes[k] if k < len(_flushes) and _flushes[k] <= t_in else t_sent
        # the reply waited for the transport to drain: it was read while the link was paused
        q = bisect.bisect_left(p_ends, t_in)
        held = q < len(paused) and paused[q][0] <= t_in
        rows.append({"held": held, "lat": t_batch - t_sent, "to_exec": t_in - t_sent, "drv_out": t_flush - t_sent,
                     "wire_in": t_in - t_flush, "in_exec": o_list[j] - t_in,
                     "back": t_batch - o_list[j], "dispatch": t_disp - t_batch,
                     "wbuf": wbuf, "outq": outq, "write_bytes": nbytes, "t": t_sent})
    if not rows:
        return {"matched": 0, "requests": len(reqs)}
    rows.sort(key=lambda r: r["lat"])
    tail = rows[int(len(rows) * 0.99):]
    t0, t1 = min(r["t"] for r in rows), max(r["t"] for r in rows)
    lags = [(x, c, w, i) for t, x, c, w, i in lag if t0 <= t <= t1]
    slow = [(t, d, c) for t, d, c, _ in _slow if t0 <= t <= t1]
    keys = ("lat", "to_exec", "drv_out", "wire_in", "in_exec", "back", "dispatch")
    out = {"requests": len(reqs), "matched": len(rows),
           "p99_ms": rows[int(len(rows) * 0.99)]["lat"] * 1e3,
           "all_ms": {k: _median([r[k] for r in rows]) * 1e3 for k in keys},
           "tail_ms": {k: _median([r[k] for r in tail]) * 1e3 for k in keys},
           "tail_mean_ms": {k: sum(r[k] for r in tail) / len(tail) * 1e3 for k in keys},
           "held_by_paused_transport": {"all": sum(r["held"] for r in rows) / len(rows),
                                        "tail": sum(r["held"] for r in tail) / len(tail)},
           "paused_s": sum(e - b for b, e in paused if t0 <= b <= t1),
           "tail_bytes_ahead_at_write": {"transport_median": _median([r["wbuf"] for r in tail]),
                                         "kernel_median": _median([r["outq"] for r in tail]),
                                         "batch_bytes_median": _median([r["write_bytes"] for r in tail])},
           # the loop's late ticks: the intervals they end (1 ms timer + lateness), the loop
           # thread's CPU and its wait for a core in them; blocked = what neither explains beyond
           # the 1 ms the loop may have slept in epoll (a lower bound of the wait for the GIL)
           "exec_loop_lag": {"count_over_0.5ms": len(lags), "max_ms": max((x for x, _, _, _ in lags), default=0) * 1e3,
                             "late_sum_ms": sum(x for x, _, _, _ in lags) * 1e3,
                             "cpu_sum_ms": sum(c for _, c, _, _ in lags) * 1e3,
                             "runqueue_sum_ms": sum(w for _, _, w, _ in lags) * 1e3,
                             "blocked_min_sum_ms": sum(max(0.0, i - c - w - 0.001) for _, c, w, i in lags) * 1e3},
           "driver_slow_frames": {"count": len(slow), "max_ms": max((d for _, d, _ in slow), default=0) * 1e3,
                                  "sum_ms": sum(d for _, d, _ in slow) * 1e3,
                                  "cpu_sum_ms": sum(c for _, _, c in slow) * 1e3},
           "bulk_replies": sum(1 for t in bulk if t0 <= t <= t1)}
    return out


async def _run(args: argparse.Namespace) -> dict:
    workdir = tempfile.mkdtemp(prefix="execrelay-isoprobe-")
    rdv = Rendezvous()
    await rdv.start()
    scen = scenarios(workdir)
    trace = os.path.join(workdir, "trace.jsonl")
    specs = {"ours": ExecutorSpec("ours fast (traced)", [sys.executable, "-m", "execrelay.bench.isotrace", trace,
                                                        "exec-server", "--remote", "{remote}", "--executor-id", "{id}"],
                                  {"EXECRELAY_PURE": "0"})}
    if not args.no_rust and not scen[args.big].reliable:
        specs.update(executors.executor_specs(["rust"], workdir))
    procs: dict[str, ExecutorProcess] = {}
    rp = RendezvousProcess(workdir) if args.via_rendezvous else None
    out: dict = {"big": args.big, "pinned": bool(args.pin), "via_rendezvous": rp is not None, "runs": []}
    try:
        if rp is not None:
            await rp.start()
        for k, spec in specs.items():
            procs[k] = (ViaRendezvous(spec, rp, f"probe-{k}", workdir) if rp is not None
                        else ExecutorProcess(spec, rdv, f"probe-{k}", workdir))
            await procs[k].start()
        n = 0
        for rep in range(args.reps):
            for label in ("alone", "beside"):
                for k, ex in procs.items():
                    n += 1
                    _driver.clear()
                    _issued.clear()
                    _flushes.clear()
                    _slow.clear()
                    spy = None
                    if args.pyspy and k == "ours" and label == "beside":
                        spy = asyncio.create_task(_pyspy(ex.pid, args, f"{args.pyspy}/{args.big}-rep{rep}.txt"))
                    bulk = None
                    if rp is not None and label == "beside":  # the bulk harness: a process of its own
                        bulk = BulkHarness(rp.harness_url(ex.executor_id), args.big, workdir, f"bk{n}")
                        await bulk.start()
                    try:
                        res = await asyncio.wait_for(
                            load.measure(ex, scen["trivial"], 8, 1, args.warmup, args.duration, f"p{n}",
                                         big=scen[args.big] if label == "beside" and rp is None else None),
                            timeout=args.warmup + args.duration + 90)
                        if bulk is not None:
                            res["big_requests"] = (await bulk.stop()).get("replies")
                    finally:
                        if bulk is not None:
                            bulk.kill()
                    if spy is not None:
                        await spy
                    res.pop("cdf_ms", None)
                    entry = {"executor": k, "label": label, "rep": rep, "bench": res}
                    if k == "ours":
                        entry["split"] = _split(list(_driver), await _collect(trace))
                    out["runs"].append(entry)
                    _print(entry)
    finally:
        for ex in procs.values():
            ex.stop()
        if rp is not None:
            rp.stop()
        rdv.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


async def _pyspy(pid: int, args: argparse.Namespace, out: str) -> None:
    """Sample the executor (every thread, without stopping it) over the measured phase."""
    await asyncio.sleep(args.warmup)
    proc = await asyncio.create_subprocess_exec(
        os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "-p", str(pid), "-r", "500",
        "-d", str(int(args.duration)), "-f", "raw", "--threads", "--nonblocking", "-o", out,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    await asyncio.wait_for(proc.wait(), args.duration + 30)


def _print(e: dict) -> None:
    b = e["bench"]
    line = (f"{e['executor']:5s} {e['label']:6s} rep {e['rep']}: p50 {b['p50_ms']:.2f} p99 {b['p99_ms']:.2f} ms, "
            f"bulk {b['big_requests']}, others' cores {b['others_cores']:.2f}")
    s = e.get("split")
    if s and s.get("matched"):
        t = s["tail_mean_ms"]
        g = s["exec_loop_lag"]
        f = s["driver_slow_frames"]
        line += (f"\n      slowest 1% (mean ms): lat {t['lat']:.2f} = to_exec {t['to_exec']:.2f} (driver flush "
                 f"{t['drv_out']:.2f} + to executor loop {t['wire_in']:.2f}) + in_exec "
                 f"{t['in_exec']:.2f} + back {t['back']:.2f} (dispatch +{t['dispatch']:.2f}); "
                 f"bytes ahead at write: transport {s['tail_bytes_ahead_at_write']['transport_median']:.0f}, "
                 f"kernel {s['tail_bytes_ahead_at_write']['kernel_median']:.0f}; read while the executor's "
                 f"transport was paused: {s['held_by_paused_transport']['tail']:.0%} of the tail, "
                 f"{s['held_by_paused_transport']['all']:.1%} of all (paused {s['paused_s']:.2f} s)\n      exec loop lag >0.5ms: "
                 f"{g['count_over_0.5ms']} (max {g['max_ms']:.1f} ms, sum {g['late_sum_ms']:.0f} ms; in them own CPU "
                 f"{g['cpu_sum_ms']:.0f}, waiting for a core {g['runqueue_sum_ms']:.0f}, blocked (GIL) >= "
                 f"{g['blocked_min_sum_ms']:.0f} ms); driver frames >0.3ms: {f['count']} (max {f['max_ms']:.1f} ms, "
                 f"sum {f['sum_ms']:.0f} ms, CPU {f['cpu_sum_ms']:.0f} ms); matched {s['matched']}/{s['requests']}")
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", default="reliable64m", help="reliable64m (default) or readFile8m")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--no-rust", action="store_true", help="leave out the Rust executor (readFile8m only)")
    ap.add_argument("--pin", metavar="auto|D:M")
    ap.add_argument("--via-rendezvous", action="store_true",
                    help="through execrelay rendezvous, the bulk harness a process of its own (rdv_bulk)")
    ap.add_argument("--json")
    ap.add_argument("--pyspy", metavar="DIR", help="py-spy the executor in the runs beside the bulk stream")
    args = ap.parse_args()
    if args.pin:
        pinning.pin(*pinning.parse(args.pin))
    _patch_driver()
    res = asyncio.run(_run(args))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
