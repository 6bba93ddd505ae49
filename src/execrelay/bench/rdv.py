"""Rendezvous routing: what our rendezvous adds between a harness and an executor.

For each executor, two copies run side by side: one registered with the driver playing the
rendezvous (direct), one registered with ``execrelay rendezvous`` (a child process, so its CPU
is read from /proc apart from everything else) to which the driver connects as a HARNESS
(masked client frames with a zero mask key, still one write per read).  Runs alternate
direct / via-rendezvous per executor; the report gives the latency the hop adds and the
rendezvous CPU per routed frame (each request and each reply is one routed frame), hence
frames/s per core of rendezvous CPU.
"""
from __future__ import annotations

import asyncio
import statistics
import time

import picows

from .._wsframe import OP_BINARY, header
from . import rdv_bulk
from .fakerdv import MAX_FRAME, Rendezvous
from .load import ExecutorConn, measure
from .processes import ExecutorProcess, ExecutorSpec, RendezvousProcess
from .scenarios import Scenario, scenarios


class HarnessConn(ExecutorConn):
    """The driver as a harness: identical stream logic, client-side (masked) framing."""

    @staticmethod
    def _header(n: int) -> bytes:
        return header(OP_BINARY, n, masked=True)


class ViaRendezvous(ExecutorProcess):
    """An executor registered with our rendezvous; the driver connects to it as a harness."""

    def __init__(self, spec: ExecutorSpec, rp: RendezvousProcess, executor_id: str, logdir: str) -> None:
        super().__init__(spec, None, executor_id, logdir)  # type: ignore[arg-type]
        self.rp = rp

    async def start(self, timeout: float = 30.0) -> ExecutorConn:
        self._spawn(self.rp.url, self.rp.token("executor", self.executor_id))
        fut = asyncio.get_running_loop().create_future()
        conn = HarnessConn(self.executor_id, fut)
        await picows.ws_connect(lambda: conn, self.rp.harness_url(self.executor_id),
                                max_frame_size=MAX_FRAME, read_buffer_init_size=256 * 1024)
        await asyncio.wait_for(fut, timeout)
        # frames wait at the rendezvous until the executor is there: one initialized stream proves it
        await conn.open_streams("warm", 1, timeout=timeout)
        conn.reset_all()
        self.conn = conn
        return conn


async def _staller(rp: RendezvousProcess, executor_id: str, scen: Scenario, window: int) -> HarnessConn:
    """A second harness of the same executor that asks for ``window`` bulk replies at a time,
    then stops reading its socket (its replies pile up at the rendezvous)."""
    fut = asyncio.get_running_loop().create_future()
    conn = HarnessConn(executor_id + "-staller", fut)
    await picows.ws_connect(lambda: conn, rp.harness_url(executor_id), max_frame_size=MAX_FRAME,
                            read_buffer_init_size=256 * 1024)
    await asyncio.wait_for(fut, 10.0)
    await conn.open_streams("stall", 1, timeout=30.0)
    conn.start_load(scen, window)
    conn.raw.pause_reading()  # type: ignore[attr-defined]
    return conn


async def stalled(rp: RendezvousProcess, via: ExecutorProcess, scen: dict[str, Scenario], reps: int,
                  warmup: float, duration: float) -> dict:
    """Other harnesses' p99 while one harness of the same executor stops reading.

    Interleaved: trivial, 8 streams, window 1 through ``execrelay rendezvous`` alone, then the
    same with a second harness that requested 8 MiB reads (window 4) and stopped reading; the
    report gives the medians and the p99 added (docs/benchmarks.md §Scenarios)."""
    runs: dict[str, list] = {"alone": [], "stalled": []}
    for rep in range(reps):
        for label in ("alone", "stalled"):
            staller = None
            try:
                if label == "stalled":
                    staller = await _staller(rp, via.executor_id, scen["readFile8m"], 4)
                    await asyncio.sleep(0.3)  # its replies reach the rendezvous and back up
                res = await measure(via, scen["trivial"], 8, 1, warmup, duration, f"st{rep}{label}")
            except Exception as exc:  # noqa: BLE001 - recorded
                res = {"failed": f"{type(exc).__name__}: {exc}"}
            finally:
                if staller is not None and staller.transport is not None:
                    staller.transport.disconnect(graceful=False)
            res.pop("cdf_ms", None)
            runs[label].append(res)
    out: dict = {"runs": runs}
    for label, rs in runs.items():
        good = [r for r in rs if "p99_ms" in r and not r.get("driver_bound")]
        if good:
            out[label] = {m: statistics.median(r[m] for r in good) for m in ("rps", "p50_ms", "p99_ms")}
    if "alone" in out and "stalled" in out:
        out["p99_added_ms"] = out["stalled"]["p99_ms"] - out["alone"]["p99_ms"]
    return out


async def run(which: list[str], configs: list, reps: int, warmup: float, duration: float,
              progress_factory=None, stalled_reps: int = 0, isolation_reps: int = 0,
              bulk: tuple[str, ...] = rdv_bulk.BULK) -> dict:
    """Latency added and routing CPU for ``configs`` (direct vs via the rendezvous), then the
    stalled-harness pair (``stalled_reps``) and the bulk harnesses of ``bulk`` beside small
    streams (``isolation_reps``, :mod:`.rdv_bulk`).  Without configs no direct executor runs."""
    import shutil
    import tempfile

    from .executors import executor_specs

    workdir = tempfile.mkdtemp(prefix="execrelay-bench-rdv-")
    rdv = Rendezvous()
    await rdv.start()
    rp = RendezvousProcess(workdir)
    specs = executor_specs(which, workdir)
    scen = scenarios(workdir)
    procs: list[ExecutorProcess] = []
    out: dict = {"executors": {k: s.label for k, s in specs.items()}, "configs": {}}
    total = (len(configs) * reps * len(specs) * 2 + (1 if stalled_reps else 0)
             + isolation_reps * (1 + len(bulk)) * len(specs))
    prog = progress_factory(total, "rendezvous runs") if progress_factory else None
    try:
        await rp.start()
        pairs = {}
        for k, spec in specs.items():
            direct = ExecutorProcess(spec, rdv, f"rdvbench-{k}-direct", workdir)
            via = ViaRendezvous(spec, rp, f"rdvbench-{k}-via", workdir)
            procs += [direct, via]
            if configs:
                await direct.start()
            await via.start()
            pairs[k] = (direct, via)
        n = 0
        for cfg in configs:
            entry: dict = {}
            for rep in range(reps):
                for k, (direct, via) in pairs.items():
                    for label, ex in (("direct", direct), ("via_rendezvous", via)):
                        n += 1
                        r0 = rp.cpu()
                        t0 = time.perf_counter()
                        try:
                            res = await measure(ex, scen[cfg.scenario], cfg.streams, cfg.window, warmup,
                                                    duration, f"q{n}")
                        except Exception as exc:  # noqa: BLE001
                            res = {"failed": f"{type(exc).__name__}: {exc}"}
                        # rendezvous CPU over the whole run (warm-up included): per routed frame
                        res["rdv_cpu_s"] = rp.cpu() - r0
                        res["run_wall_s"] = time.perf_counter() - t0
                        res.pop("cdf_ms", None)
                        entry.setdefault(k, {}).setdefault(label, []).append(res)
                        if prog:
                            prog.step(f"{cfg.key} {k} {label}")
            summary: dict = {}
            for k, sides in entry.items():
                s: dict = {}
                for label, runs in sides.items():
                    good = [r for r in runs if "p99_ms" in r and not r.get("driver_bound")]
                    if good:
                        s[label] = {m: statistics.median(r[m] for r in good)
                                    for m in ("rps", "p50_ms", "p99_ms", "exec_cpu_us", "driver_busy")}
                if "direct" in s and "via_rendezvous" in s:
                    s["added_p50_ms"] = s["via_rendezvous"]["p50_ms"] - s["direct"]["p50_ms"]
                    s["added_p99_ms"] = s["via_rendezvous"]["p99_ms"] - s["direct"]["p99_ms"]
                via_runs = [r for r in sides.get("via_rendezvous", []) if r.get("requests")]
                if via_runs:
                    # frames routed during the whole run ~ 2 per request at the measured rate
                    per = [r["rdv_cpu_s"] / (2 * r["rps"] * r["run_wall_s"]) for r in via_runs if r["rps"]]
                    if per:
                        s["rdv_cpu_us_per_frame"] = statistics.median(per) * 1e6
                        s["rdv_frames_per_core_s"] = 1 / statistics.median(per)
                summary[k] = s
            out["configs"][cfg.key] = {"runs": entry, "summary": summary}
        if stalled_reps:
            out["stalled"] = {k: await stalled(rp, via, scen, stalled_reps, warmup, duration)
                              for k, (_, via) in pairs.items()}
            if prog:
                prog.step("stalled harness")
        if isolation_reps:
            out["isolation"] = {"bulk": list(bulk), "reps": isolation_reps, "by_executor": await rdv_bulk.bulk_beside(
                rp, {k: via for k, (_, via) in pairs.items()}, scen, bulk, isolation_reps, warmup, duration,
                workdir, prog)}
    finally:
        for ex in procs:
            ex.stop()
        rp.stop()
        rdv.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return out
