"""``execrelay bench``: micro benchmarks + executor over one relay websocket, report + plots + JSON.

    execrelay bench --quick --out benchmarks/results/run1      # < 2 minutes
    execrelay bench --out DIR                                  # the full matrix (~15 minutes)
    execrelay bench --quick --compare OLD.json                 # run, then print what changed
    execrelay bench --compare OLD.json --against NEW.json      # compare two files, no run
    execrelay bench --only cluster [--quick]                   # 3 rendezvous nodes over NATS

Runs only on Linux (/proc); the Rust column needs npm (codex 0.131.0 is installed on first use).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from ._ops import add_log_args, setup_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="benchmark execrelay against codex 0.131.0 (report, plots, JSON)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a small subset, finishes in under 2 minutes")
    p.add_argument("--tiny", action="store_true", help="seconds-long smoke configuration (tests, CI)")
    p.add_argument("--out", metavar="DIR", default=None, help="write report.md, results.json and PNG plots here")
    p.add_argument("--compare", metavar="OLD.json", default=None, help="print what changed against OLD.json")
    p.add_argument("--against", metavar="NEW.json", default=None,
                   help="with --compare: compare these two files without running anything")
    p.add_argument("--render", metavar="RESULTS.json", default=None,
                   help="re-render report.md and plots from a results.json (into --out, default its folder)")
    p.add_argument("--executors", default="fast,pure,rust",
                   help="comma list from fast,pure,rust (default: all three)")
    p.add_argument("--only", choices=("micro", "executor", "rendezvous", "noise", "cluster", "all"), default="all",
                   help="one section; 'cluster' (3 rendezvous nodes over NATS) runs only when asked for")
    p.add_argument("--no-rendezvous", action="store_true", help="skip the rendezvous-routing step")
    p.add_argument("--reps", type=int, default=None, help="interleaved repetitions per configuration")
    p.add_argument("--duration", type=float, default=None, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds per run")
    p.add_argument("--idle-streams", type=int, default=None,
                   help="streams for the idle-memory measurement (0 skips it; default 10000, quick 2000)")
    p.add_argument("--configs", default=None,
                   help="override the matrix: 'trivial:8:16,getMetadata:8:1,trivial:8:1:readFile8m' "
                        "(scenario:streams:window[:scenario of one extra bulk stream])")
    p.add_argument("--profile", action="store_true",
                   help="also profile our fast executor with py-spy --native under the load (adds ~30 s)")
    p.add_argument("--pin", metavar="auto|D:M", default=None,
                   help="pin the driver to CPUs D and the measured processes (executors, rendezvous) "
                        "to CPUs M, e.g. '0:1'; 'auto': the first CPU for the driver, the rest for them")
    p.add_argument("--no-progress", action="store_true")
    add_log_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    from ..bench import report

    if args.render:
        with open(args.render) as fh:
            results = json.load(fh)
        paths = report.write_all(results, args.out or os.path.dirname(os.path.abspath(args.render)))
        print(f"report: {paths['markdown']}\nplots: {paths['plots'] or '(none)'}")
        return 0
    if args.against:
        if not args.compare:
            print("error: --against needs --compare OLD.json", file=sys.stderr)
            return 2
        with open(args.compare) as a, open(args.against) as b:
            print(report.compare(json.load(a), json.load(b)))
        return 0
    if args.pin:
        from ..bench import pinning

        try:
            pinning.pin(*pinning.parse(args.pin))
        except (ValueError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        uvloop = None
    results = _run_all(args, uvloop)
    if args.out:
        paths = report.write_all(results, args.out)
        print(f"report: {paths['markdown']}\njson: {paths['json']}\nplots: {paths['plots'] or '(none)'}")
    else:
        print(report.markdown(results, []))
    if args.compare:
        with open(args.compare) as fh:
            print(report.compare(json.load(fh), results))
    return 0


def _run_all(args: argparse.Namespace, uvloop) -> dict:
    from ..bench import executors, micro, procfs
    from ..bench.progress import Progress

    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    enabled = not args.no_progress
    t0 = time.monotonic()
    results: dict = {"mode": mode, "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                     "machine": procfs.machine()}
    from ..bench import pinning

    results["machine"]["pinning"] = pinning.describe()
    if args.only in ("micro", "all"):
        prog = Progress(7, "micro", enabled)
        results["micro"] = micro.run(quick=mode != "full", progress=prog)
    if args.only in ("noise", "all"):
        from ..bench import noise

        # issue 14: handshake, record layer, and plain vs Noise end to end through the rendezvous
        results["noise"] = noise.run(mode, progress=Progress(3, "noise", enabled))
    if args.only in ("executor", "all"):
        if args.configs:
            configs = []
            for item in args.configs.split(","):
                s, n, w, *big = item.split(":")
                configs.append(executors.Config(s, int(n), int(w), big[0] if big else None))
        else:
            configs = {"tiny": executors.TINY, "quick": executors.QUICK, "full": executors.FULL}[mode]
        reps = args.reps or {"tiny": 1, "quick": 1, "full": 3}[mode]
        duration = args.duration or {"tiny": 0.5, "quick": 1.5, "full": 3.0}[mode]
        warmup = args.warmup if args.warmup is not None else {"tiny": 0.2, "quick": 0.4, "full": 1.0}[mode]
        idle = args.idle_streams if args.idle_streams is not None else {"tiny": 0, "quick": 2000,
                                                                         "full": 10000}[mode]
        which = [w.strip() for w in args.executors.split(",") if w.strip()]
        coro = executors.run_matrix(configs, which, reps, warmup, duration, idle,
                                    progress_factory=lambda total, label: Progress(total, label, enabled))
        results["executors_bench"] = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    if args.only == "rendezvous" or (args.only == "all" and not args.no_rendezvous and mode != "tiny"):
        from ..bench import rdv

        # issue 5: end to end through the rendezvous for 1, 8, 64 and 1,000 streams
        cfgs = ([executors.Config("trivial", 1, 1), executors.Config("trivial", 8, 1),
                 executors.Config("trivial", 8, 16), executors.Config("trivial", 64, 16),
                 executors.Config("trivial", 1000, 1)] if mode == "full"
                else [executors.Config("trivial", 8, 1)])
        which = [w.strip() for w in args.executors.split(",") if w.strip()]
        if mode != "full":
            which = [w for w in which if w != "pure"]
        coro = rdv.run(which, cfgs, 1 if mode != "full" else 2,
                       0.4 if mode != "full" else 1.0, 1.5 if mode != "full" else 3.0,
                       progress_factory=lambda total, label: Progress(total, label, enabled),
                       stalled_reps=1 if mode != "full" else 3,
                       isolation_reps=1 if mode != "full" else 3)
        results["rendezvous"] = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
        if mode == "full":
            results["rendezvous_e2e"] = _rendezvous_e2e()
    if args.only == "cluster":
        from ..bench import cluster

        coro = cluster.run(mode, progress=Progress(3, "cluster", enabled))
        results["cluster"] = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    if args.profile:
        from ..bench import profile

        prog = Progress(len(profile.DEFAULT), "profile", enabled)
        coro = profile.run(profile.DEFAULT, seconds=4.0 if mode != "full" else 6.0, progress=prog)
        results["profile"] = uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
    results["elapsed_s"] = time.monotonic() - t0
    try:
        results["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return results


def _rendezvous_e2e() -> str | None:
    """Output of the rendezvous helper's benchmarks/rendezvous_e2e.py (checkouts only)."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[3] / "benchmarks" / "rendezvous_e2e.py"
    if not script.is_file():
        return None
    try:
        proc = subprocess.run([sys.executable, str(script), "--builds", "fast", "--seconds", "3", "--rounds", "2"],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "rendezvous_e2e.py timed out"
    return proc.stdout[-4000:] or proc.stderr[-2000:]
