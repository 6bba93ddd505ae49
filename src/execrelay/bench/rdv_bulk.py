"""Isolation where users feel it: other harnesses' p99 through ``execrelay rendezvous`` while a
bulk harness in ITS OWN PROCESS and on its own websocket moves large replies of the same
executor (docs/benchmarks.md §Isolation through the rendezvous).

In the ``+1 stream`` scenarios of the executor matrix the driver plays the rendezvous and every
harness on one socket and one loop, so a small reply can wait for the driver's own reassembly
of the bulk stream.  Here, as in production, the bulk harness is a separate process
(``python -m execrelay.bench.rdv_bulk URL SCENARIO WORKDIR TAG``: one stream of ``SCENARIO``
back to back, window 1; a reliable scenario opens a RELIABLE stream, which a 0.131.0 executor
answers in legacy mode), the small streams come from the driver's own harness websocket, and
the rendezvous routes between them.  Runs interleave alone / beside and the executors.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
from typing import TYPE_CHECKING

from . import pinning, procfs
from .procgroup import kill_group
from .scenarios import Scenario

if TYPE_CHECKING:
    from .processes import ExecutorProcess, RendezvousProcess

#: the bulk scenarios measured through the rendezvous (issue 16)
BULK = ("readFile8m", "reliable64m")


class BulkHarness:
    """The bulk harness child process: started ready (its stream initialized and loaded),
    stopped with SIGTERM, after which it reports the bulk replies it received."""

    def __init__(self, url: str, big: str, workdir: str, tag: str) -> None:
        self.argv = [sys.executable, "-m", "execrelay.bench.rdv_bulk", url, big, workdir, tag]
        self.proc: subprocess.Popen | None = None
        self.cpu0 = 0.0

    async def start(self, timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=pinning.child_preexec())
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(loop.run_in_executor(None, self.proc.stdout.readline), timeout)  # type: ignore[union-attr]
        if line.strip() != b"ready":
            self.kill()
            raise RuntimeError(f"bulk harness did not start: {line!r}")
        self.cpu0 = procfs.cpu_seconds(self.proc.pid)

    async def stop(self, timeout: float = 10.0) -> dict:
        """SIGTERM; the replies it received and its CPU seconds while it ran."""
        proc = self.proc
        assert proc is not None
        out: dict = {"cpu_s": procfs.cpu_seconds(proc.pid) - self.cpu0}
        proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        try:
            line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), timeout)  # type: ignore[union-attr]
            out.update(json.loads(line))
        except (asyncio.TimeoutError, ValueError) as exc:
            out["failed"] = f"{type(exc).__name__}: {exc}"
        self.kill()
        return out

    def kill(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, grace=2.0)
            self.proc = None


def _medians(runs: list[dict]) -> dict:
    good = [r for r in runs if "p99_ms" in r and not r.get("driver_bound")]
    out = {m: statistics.median(r[m] for r in good) for m in ("rps", "p50_ms", "p99_ms")} if good else {}
    bulk = [r["bulk"]["replies"] for r in good if "replies" in r.get("bulk", {})]
    if bulk:
        out["bulk_replies"] = statistics.median(bulk)
        out["bulk_harness_cpu_s"] = statistics.median(r["bulk"]["cpu_s"] for r in good if "bulk" in r)
    return out


async def bulk_beside(rp: "RendezvousProcess", pairs: dict[str, "ExecutorProcess"], scen: dict[str, Scenario],
                      bigs: tuple[str, ...], reps: int, warmup: float, duration: float, workdir: str,
                      progress=None) -> dict:
    """For every executor (``pairs``: key -> its :class:`~.rdv.ViaRendezvous`): trivial, 8 streams,
    window 1 from the driver's harness websocket, alone and beside the bulk harness of each
    scenario in ``bigs``; interleaved (rep: alone, big1, big2, ... each over every executor)."""
    from .load import measure

    runs: dict = {k: {label: [] for label in ("alone",) + bigs} for k in pairs}
    n = 0
    for rep in range(reps):
        for label in ("alone",) + bigs:
            for k, via in pairs.items():
                if k == "rust" and label != "alone" and scen[label].reliable:
                    continue  # 0.131.0 has no reliable mode (and 62.7 MiB legacy frames do not arrive)
                n += 1
                bulk = None
                r0 = rp.cpu()
                try:
                    if label != "alone":
                        bulk = BulkHarness(rp.harness_url(via.executor_id), label, workdir, f"bk{n}")
                        await bulk.start()
                    res = await measure(via, scen["trivial"], 8, 1, warmup, duration, f"iso{n}")
                    if bulk is not None:
                        res["bulk"] = await bulk.stop()
                except Exception as exc:  # noqa: BLE001 - recorded
                    res = {"failed": f"{type(exc).__name__}: {exc}"}
                finally:
                    if bulk is not None:
                        bulk.kill()
                res["rdv_cpu_s"] = rp.cpu() - r0
                res.pop("cdf_ms", None)
                runs[k][label].append(res)
                if progress:
                    progress.step(f"isolation via rendezvous {label} {k}")
    out: dict = {}
    for k, by_label in runs.items():
        s: dict = {label: _medians(rs) for label, rs in by_label.items() if rs}
        for big in bigs:
            if "p99_ms" in s.get("alone", {}) and "p99_ms" in s.get(big, {}):
                s[big]["p99_added_ms"] = s[big]["p99_ms"] - s["alone"]["p99_ms"]
        out[k] = {"summary": s, "runs": by_label}
    return out


async def _child(url: str, big: str, workdir: str, tag: str) -> None:
    """The bulk harness: one stream of ``big`` back to back until SIGTERM, then one JSON line."""
    import picows

    from .fakerdv import MAX_FRAME
    from .load import BenchStream
    from .rdv import HarnessConn
    from .scenarios import scenarios

    loop = asyncio.get_running_loop()
    scen = scenarios(workdir)[big]
    fut = loop.create_future()
    conn = HarnessConn(tag, fut)
    await picows.ws_connect(lambda: conn, url, max_frame_size=MAX_FRAME, read_buffer_init_size=256 * 1024)
    await asyncio.wait_for(fut, 10.0)
    st = BenchStream(f"{tag}-big", scen=scen, rec=False, window=1)
    await conn.open_streams(tag, 0, timeout=30.0, special=[st])
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    conn.start_load(scen, 1)
    print("ready", flush=True)
    await stop.wait()
    mux = st.mux
    eng = mux.stream(st.sid) if mux is not None else None
    print(json.dumps({"replies": conn.stats.other_requests, "resets": conn.stats.resets,
                      "reset_reasons": conn.stats.reset_reasons,
                      "mode": eng.mode if eng is not None else "legacy",
                      "bad_frames": mux.bad_frames if mux is not None else 0,
                      "last_bad_frame": mux.last_bad_frame if mux is not None else None}), flush=True)
    os._exit(0)  # the stream's reassembly buffers need no orderly teardown


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.run(_child(*sys.argv[1:5]))
    except ImportError:
        asyncio.run(_child(*sys.argv[1:5]))
