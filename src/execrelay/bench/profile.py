"""``execrelay bench --profile``: py-spy (native frames) on our executor under the bench load.

For each configuration the fast executor is driven exactly as in the executor step while
``py-spy record --native --format raw`` samples it; the report gets the top frames by self
time and by inclusive time (percent of samples), so every claim about where the per-request
cost goes comes with the profile that shows it.  Skipped with a note when py-spy is missing
(``pip install py-spy``) or not permitted (ptrace).
"""
from __future__ import annotations

import asyncio
import collections
import os
import shutil
import subprocess
import tempfile

from .fakerdv import Rendezvous
from .load import BenchStream
from .processes import ExecutorProcess
from .scenarios import scenarios
from .executors import Config, executor_specs

DEFAULT = [Config("trivial", 8, 1), Config("trivial", 8, 16), Config("getMetadata", 8, 16),
           Config("readFile64k", 8, 1), Config("trivial", 8, 1, big="readFile8m")]


def summarize(raw_path: str, top: int = 15) -> dict:
    self_c: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = 0
    with open(raw_path) as fh:
        for line in fh:
            stack, _, n = line.rstrip().rpartition(" ")
            if not stack or not n.isdigit():
                continue
            k = int(n)
            total += k
            frames = stack.split(";")
            self_c[frames[-1]] += k
            for f in set(frames):
                incl[f] += k
    if not total:
        return {"samples": 0}
    # samples parked in the event loop's poll are idle time, not cost: percentages are of the rest
    idle = sum(n for f, n in self_c.items() if "epoll_pwait" in f or "epoll_wait" in f)
    busy = max(total - idle, 1)
    for f in [f for f in self_c if "epoll_pwait" in f or "epoll_wait" in f]:
        del self_c[f]
    # inclusive: only frames of our code and the I/O boundary are informative
    keep = ("execrelay/", "write", "read", "epoll", "stat", "b2a_base64", "orjson", "picows")
    keep_inc = [(f, n) for f, n in incl.most_common() if any(x in f for x in keep) and "epoll" not in f]
    inc = [(f, n / busy) for f, n in keep_inc if n / busy < 0.995]
    return {"samples": total, "idle_fraction": idle / total,
            "self": [(f[:140], n / busy) for f, n in self_c.most_common(top)],
            "inclusive": [(f[:140], p) for f, p in inc[:top]]}


async def run(configs: list[Config], seconds: float = 5.0, progress=None) -> dict:
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        return {"skipped": "py-spy is not installed (pip install py-spy)"}
    workdir = tempfile.mkdtemp(prefix="execrelay-bench-prof-")
    rdv = Rendezvous()
    await rdv.start()
    spec = executor_specs(["fast"], workdir)["fast"]
    scen = scenarios(workdir)
    out: dict = {"seconds": seconds, "configs": {}}
    try:
        for i, cfg in enumerate(configs):
            ex = ExecutorProcess(spec, rdv, f"prof-{i}", workdir)
            try:
                conn = await ex.start()
                special = ([BenchStream(f"p{i}-big", scen=scen[cfg.big], rec=False, window=1)]
                           if cfg.big else None)
                await conn.open_streams(f"p{i}", cfg.streams, timeout=30, special=special)
                conn.start_load(scen[cfg.scenario], cfg.window)
                await asyncio.sleep(0.5)
                raw = os.path.join(workdir, f"prof-{i}.txt")
                proc = await asyncio.create_subprocess_exec(
                    pyspy, "record", "--native", "-r", "250", "-d", str(int(seconds)), "-f", "raw", "-o", raw,
                    "-p", str(ex.pid), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                _, err = await asyncio.wait_for(proc.communicate(), seconds + 30)
                if proc.returncode != 0 or not os.path.exists(raw):
                    out["configs"][cfg.key] = {"failed": err.decode(errors="replace")[-300:]}
                else:
                    out["configs"][cfg.key] = summarize(raw)
                await conn.stop_load(3)
            except Exception as exc:  # noqa: BLE001
                out["configs"][cfg.key] = {"failed": f"{type(exc).__name__}: {exc}"}
            finally:
                ex.stop()
            if progress is not None:
                progress.step(cfg.key)
    finally:
        rdv.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def markdown(prof: dict) -> list[str]:
    if not prof:
        return []
    lines = ["", "## Profile of our executor (py-spy --native, fast path, under the bench load)", ""]
    if "skipped" in prof:
        return lines + [f"Skipped: {prof['skipped']}"]
    for key, p in prof.get("configs", {}).items():
        lines += [f"### {key} ({p.get('samples', 0)} samples, {p.get('idle_fraction', 0)*100:.0f}% idle in "
                  "epoll; percentages below are of the busy samples)", ""]
        if "failed" in p:
            lines += [f"failed: {p['failed']}", ""]
            continue
        lines += ["| self % | frame |", "|---|---|"] + [f"| {v*100:.1f} | `{f}` |" for f, v in p.get("self", [])]
        lines += ["", "| inclusive % | frame |", "|---|---|"] + \
            [f"| {v*100:.1f} | `{f}` |" for f, v in p.get("inclusive", [])] + [""]
    return lines
