"""Isolation through ``execrelay rendezvous`` with the bulk harness in its own process
(:mod:`execrelay.bench.rdv_bulk`; docs/benchmarks.md §Isolation through the rendezvous), for our
executor and the Rust 0.131.0 one in the same run, interleaved.

    python benchmarks/isolation_rdv.py --reps 5 [--executors fast,rust] [--bulk readFile8m,reliable64m]
                                       [--pin auto] [--json out.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json

from execrelay.bench import pinning, rdv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--executors", default="fast,rust")
    ap.add_argument("--bulk", default=",".join(rdv.rdv_bulk.BULK))
    ap.add_argument("--pin", metavar="auto|D:M")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.pin:
        pinning.pin(*pinning.parse(args.pin))
    bulk = tuple(b for b in args.bulk.split(",") if b)
    res = asyncio.run(rdv.run(args.executors.split(","), [], 0, args.warmup, args.duration,
                              isolation_reps=args.reps, bulk=bulk))
    iso = res["isolation"]
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(iso, fh, indent=1)
    for k, e in iso["by_executor"].items():
        for label, runs in e["runs"].items():
            if not runs:
                continue  # rust beside a reliable stream: not run
            print(f"{k:5s} {label:12s} p99 {[round(r.get('p99_ms', -1), 2) for r in runs]} ms, "
                  f"p50 {[round(r.get('p50_ms', -1), 2) for r in runs]}, "
                  f"bulk replies {[r.get('bulk', {}).get('replies') for r in runs]}, "
                  f"others' cores {[round(r.get('others_cores', 0), 2) for r in runs]}"
                  + "".join(f"; FAILED {r['failed'][:120]}" for r in runs if r.get("failed"))
                  + "".join(f"; bulk {r['bulk']}" for r in runs if r.get("bulk", {}).get("failed")))
        s = e["summary"]
        print(f"{k:5s} p99 added (medians): " + ", ".join(
            f"{b} {s[b]['p99_added_ms']:+.2f} ms" for b in bulk if "p99_added_ms" in s.get(b, {})))


if __name__ == "__main__":
    main()
