"""Executor benchmarks: the scenario matrix, A B C interleaving, medians and ratios to Rust.

Each executor under test (ours fast, ours pure, real codex 0.131.0) is one child process that
registers with the driver's registry and connects its ONE relay websocket; it stays up for the
whole matrix (restarted only if it dies), and every run opens fresh streams and Resets them at
the end.  For every configuration the executors take turns: A B C, A B C, ...
"""
from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .fakerdv import Rendezvous
from .load import idle_memory, measure
from .processes import ExecutorProcess, ExecutorSpec
from .scenarios import scenarios

CODEX_VERSION = "0.131.0"


@dataclass(frozen=True)
class Config:
    scenario: str
    streams: int
    window: int
    big: str | None = None  # isolation: one more stream doing this back to back

    @property
    def key(self) -> str:
        base = f"{self.scenario} s{self.streams} w{self.window}"
        return base + (f" +1 stream {self.big}" if self.big else "")


FULL = [Config("trivial", s, w) for s in (1, 8, 64, 1000) for w in (1, 16)] + [
    Config("getMetadata", 8, 1), Config("getMetadata", 8, 16),
    Config("readFile64k", 8, 1), Config("readFile64k", 8, 16),
    Config("readFile16m", 1, 1), Config("processTrue", 8, 1),
    Config("trivial", 8, 1, big="readFile8m"), Config("trivial", 8, 1, big="reliable64m"),
]
QUICK = [Config("trivial", 1, 1), Config("trivial", 8, 1), Config("trivial", 8, 16),
         Config("getMetadata", 8, 16), Config("readFile64k", 8, 1), Config("trivial", 8, 1, big="readFile8m"),
         Config("trivial", 8, 1, big="reliable64m")]
TINY = [Config("trivial", 8, 16)]


def find_codex() -> str | None:
    """The native codex 0.131.0 binary (EXECRELAY_CODEX_BIN, the npm cache, or install it)."""
    explicit = os.environ.get("EXECRELAY_CODEX_BIN")
    if explicit and os.access(explicit, os.X_OK):
        return explicit
    prefix = Path(os.environ.get("EXECRELAY_CODEX_CACHE")
                  or Path.home() / ".cache" / "execrelay" / f"codex-{CODEX_VERSION}")
    rel = "vendor/x86_64-unknown-linux-musl/codex/codex"
    cands = [prefix / "node_modules/@openai/codex-linux-x64" / rel, prefix / "node_modules/@openai/codex" / rel]
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    npm = shutil.which("npm")
    if npm is None:
        return None
    import subprocess

    prefix.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([npm, "install", "--prefix", str(prefix), f"@openai/codex@{CODEX_VERSION}",
                        "--no-audit", "--no-fund"], capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for c in cands:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    return None


def executor_specs(which: list[str], workdir: str) -> dict[str, ExecutorSpec]:
    """``which`` from ("fast", "pure", "rust"); rust is dropped (with a note) if unavailable."""
    py = [sys.executable, "-m", "execrelay", "exec-server", "--remote", "{remote}", "--executor-id", "{id}"]
    specs: dict[str, ExecutorSpec] = {}
    for w in which:
        if w == "fast":
            specs["fast"] = ExecutorSpec("ours fast", py, {"EXECRELAY_PURE": "0"})
        elif w == "pure":
            specs["pure"] = ExecutorSpec("ours pure", py, {"EXECRELAY_PURE": "1"})
        elif w == "rust":
            codex = find_codex()
            if codex is None:
                print("note: codex 0.131.0 unavailable (no npm?); Rust column skipped", file=sys.stderr)
                continue
            home = os.path.join(workdir, "codex-home")
            os.makedirs(home, exist_ok=True)
            specs["rust"] = ExecutorSpec("rust 0.131.0", [codex, "exec-server", "--remote", "{remote}",
                                                               "--executor-id", "{id}"], {"CODEX_HOME": home})
    return specs


def _summary(runs: list[dict]) -> dict:
    good = [r for r in runs if not r.get("driver_bound") and not r.get("failed")]
    out: dict = {"runs": len(runs), "valid_runs": len(good),
                 "driver_bound_runs": sum(1 for r in runs if r.get("driver_bound")),
                 "failed_runs": sum(1 for r in runs if r.get("failed"))}
    for k in ("rps", "p50_ms", "p99_ms", "exec_cpu_us", "driver_cpu_us", "driver_busy", "exec_busy",
              "others_cores"):
        vals = [r[k] for r in good if isinstance(r.get(k), (int, float)) and r[k] == r[k]]
        if vals:
            out[k] = statistics.median(vals)
            out[k + "_min"], out[k + "_max"] = min(vals), max(vals)
    out["errors"] = sum(r.get("errors", 0) for r in runs)
    out["resets"] = sum(r.get("resets", 0) for r in runs)
    cdfs = [r["cdf_ms"] for r in good if r.get("cdf_ms")]
    if cdfs:
        out["cdf_ms"] = cdfs[len(cdfs) // 2]
    return out


async def run_matrix(configs: list[Config], which: list[str], reps: int, warmup: float, duration: float,
                     idle_streams: int, progress_factory=None) -> dict:
    """Run every config on every executor, interleaved; plus idle memory per stream."""
    workdir = tempfile.mkdtemp(prefix="execrelay-bench-")
    rdv = Rendezvous()
    await rdv.start()
    specs = executor_specs(which, workdir)
    scen = scenarios(workdir)
    procs: dict[str, ExecutorProcess] = {}
    raw: dict[str, dict[str, list]] = {c.key: {k: [] for k in specs} for c in configs}
    generation = {k: 0 for k in specs}
    memory: dict[str, dict] = {}
    total = len(configs) * reps * len(specs) + (len(specs) if idle_streams else 0)
    prog = progress_factory(total, "executor runs") if progress_factory else None

    async def ensure(k: str) -> ExecutorProcess:
        ex = procs.get(k)
        if ex is not None and ex.proc is not None and ex.proc.poll() is None and not ex.conn.closed.is_set():
            return ex
        if ex is not None:
            ex.stop()
        generation[k] += 1
        ex = ExecutorProcess(specs[k], rdv, f"bench-{k}-{generation[k]}", workdir)
        procs[k] = ex
        await ex.start()
        return ex

    try:
        n = 0
        for cfg in configs:
            for rep in range(reps):
                for k in specs:  # A B C, A B C
                    n += 1
                    if k == "rust" and cfg.big and scen[cfg.big].reliable:
                        if prog:
                            prog.step(f"{cfg.key} {k}: skipped (0.131.0 has no reliable mode)")
                        continue
                    try:
                        ex = await ensure(k)
                        res = await asyncio.wait_for(
                            measure(ex, scen[cfg.scenario], cfg.streams, cfg.window, warmup, duration,
                                        f"r{n}", big=scen[cfg.big] if cfg.big else None),
                            timeout=warmup + duration + 90)
                    except Exception as exc:  # noqa: BLE001 - recorded, executor restarted
                        ex = procs.get(k)
                        c = ex.conn if ex is not None else None
                        state = (f" [streams ready {c.ready_count}/{c.ready_target}, outstanding {c.outstanding}, "
                                 f"executor alive {ex.proc is not None and ex.proc.poll() is None}, "
                                 f"ws closed {c.closed.is_set()}]") if c is not None else ""
                        res = {"failed": f"{type(exc).__name__}: {exc}{state}"}
                        if k in procs:
                            procs[k].stop()
                    res["rep"] = rep
                    raw[cfg.key][k].append(res)
                    if prog:
                        note = (f"{cfg.key} {k}: " + (f"{res['rps']/1e3:.1f}k/s" if "rps" in res else "FAILED")
                                + (" DRIVER-BOUND" if res.get("driver_bound") else ""))
                        prog.step(note)
        if idle_streams:
            for k in specs:
                procs.pop(k).stop() if k in procs else None
                ex = ExecutorProcess(specs[k], rdv, f"bench-{k}-mem", workdir)
                procs[k] = ex
                try:
                    await ex.start()
                    memory[k] = await idle_memory(ex, idle_streams)
                except Exception as exc:  # noqa: BLE001
                    memory[k] = {"failed": f"{type(exc).__name__}: {exc}"}
                finally:
                    ex.stop()
                if prog:
                    prog.step(f"idle memory {k}")
    finally:
        for ex in procs.values():
            ex.stop()
        rdv.close()
        shutil.rmtree(workdir, ignore_errors=True)

    results: dict = {"executors": {k: s.label for k, s in specs.items()}, "configs": {}, "memory": memory,
                     "reps": reps, "warmup_s": warmup, "duration_s": duration}
    for cfg in configs:
        entry = {"scenario": cfg.scenario, "streams": cfg.streams, "window": cfg.window, "big": cfg.big,
                 "by_executor": {}}
        for k in specs:
            runs = raw[cfg.key][k]
            entry["by_executor"][k] = {"summary": _summary(runs),
                                       "runs": [{a: b for a, b in r.items() if a != "cdf_ms"} for r in runs]}
        rust = entry["by_executor"].get("rust", {}).get("summary", {})
        for k in specs:
            if k == "rust":
                continue
            s = entry["by_executor"][k]["summary"]
            ratios = {}
            for m in ("rps", "exec_cpu_us", "p99_ms", "p50_ms"):
                if m in s and rust.get(m):
                    ratios[m] = s[m] / rust[m]
            s["vs_rust"] = ratios
        f, p = entry["by_executor"].get("fast", {}).get("summary", {}), \
            entry["by_executor"].get("pure", {}).get("summary", {})
        if f.get("rps") and p.get("rps"):
            entry["fast_vs_pure_rps"] = f["rps"] / p["rps"]
        if f.get("exec_cpu_us") and p.get("exec_cpu_us"):
            entry["pure_vs_fast_cpu"] = p["exec_cpu_us"] / f["exec_cpu_us"]
        results["configs"][cfg.key] = entry
    for cfg in configs:  # isolation: p99 added to the small streams by the big one
        base_key = Config(cfg.scenario, cfg.streams, cfg.window).key
        if cfg.big and base_key in results["configs"]:
            entry = results["configs"][cfg.key]
            for k in specs:
                s_big = entry["by_executor"][k]["summary"]
                s_base = results["configs"][base_key]["by_executor"][k]["summary"]
                if "p99_ms" in s_big and "p99_ms" in s_base:
                    s_big["p99_added_ms"] = s_big["p99_ms"] - s_base["p99_ms"]
    return results
