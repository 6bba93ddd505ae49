"""A/B of the isolation scenario (`trivial s8 w1` alone and `+1 stream reliable64m`) between
source trees, in one run, interleaved A B A B (docs/benchmarks.md §Isolation A/B).

Each variant is ``name=/path/to/src`` (a tree holding the ``execrelay`` package, built in place);
the executor under test runs with that tree first on ``PYTHONPATH``, the driver is this checkout.
Prints the p99 added by the bulk stream, the bulk stream's replies and CPU per request per run.

    python benchmarks/isolation_ab.py base=/tmp/base/src new=src --reps 3 [--pin auto] [--big readFile8m]
                                      [--via-rendezvous]

``--via-rendezvous``: the same pair through ``execrelay rendezvous`` with the bulk harness as its
own process (:mod:`execrelay.bench.rdv_bulk`) instead of the driver playing every part.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from execrelay.bench import executors, pinning, rdv
from execrelay.bench.processes import ExecutorSpec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", help="name=/path/to/src")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--big", default="reliable64m", help="the bulk scenario (default reliable64m)")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--pin", metavar="auto|D:M", help="driver on CPUs D, executors on M (as execrelay bench)")
    ap.add_argument("--via-rendezvous", action="store_true", help="through execrelay rendezvous, bulk harness apart")
    args = ap.parse_args()
    if args.pin:
        try:
            pinning.pin(*pinning.parse(args.pin))
        except ValueError as exc:
            ap.error(str(exc))
    paths = dict(v.split("=", 1) for v in args.variants)

    def specs(which: list[str], workdir: str) -> dict[str, ExecutorSpec]:
        py = [sys.executable, "-m", "execrelay", "exec-server", "--remote", "{remote}", "--executor-id", "{id}"]
        return {name: ExecutorSpec(name, py, {"EXECRELAY_PURE": "0", "PYTHONPATH": os.path.abspath(p)})
                for name, p in paths.items()}

    executors.executor_specs = specs  # the matrix runs our variants instead of fast/pure/rust
    if args.via_rendezvous:
        res = asyncio.run(rdv.run(list(paths), [], 0, args.warmup, args.duration, isolation_reps=args.reps,
                                  bulk=(args.big,)))["isolation"]
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(res, fh, indent=1)
        for name, e in res["by_executor"].items():
            alone, beside = e["runs"]["alone"], e["runs"][args.big]
            print(f"{name}: alone p99 {[round(r.get('p99_ms', -1), 2) for r in alone]} ms; "
                  f"beside {args.big} p99 {[round(r.get('p99_ms', -1), 2) for r in beside]} ms, "
                  f"bulk replies {[r.get('bulk', {}).get('replies') for r in beside]}, "
                  f"others' cores {[round(r.get('others_cores', 0), 2) for r in beside]}; "
                  f"p99 added (medians) {e['summary'][args.big].get('p99_added_ms', float('nan')):+.2f} ms")
        return
    configs = [executors.Config("trivial", 8, 1), executors.Config("trivial", 8, 1, big=args.big)]
    res = asyncio.run(executors.run_matrix(configs, list(paths), args.reps, args.warmup, args.duration, 0))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    base, big = (c.key for c in configs)
    for name in paths:
        alone = res["configs"][base]["by_executor"][name]
        beside = res["configs"][big]["by_executor"][name]
        print(f"{name}: alone p99 {[round(r.get('p99_ms', -1), 2) for r in alone['runs']]} ms; "
              f"beside {args.big} p99 {[round(r.get('p99_ms', -1), 2) for r in beside['runs']]} ms, "
              f"p50 {[round(r.get('p50_ms', -1), 2) for r in beside['runs']]} ms, "
              f"bulk replies {[r.get('big_requests') for r in beside['runs']]}, "
              f"others' cores {[round(r.get('others_cores', 0), 2) for r in beside['runs']]}; "
              f"p99 added (medians) {beside['summary'].get('p99_ms', float('nan')) - alone['summary'].get('p99_ms', float('nan')):+.2f} ms")


if __name__ == "__main__":
    main()
