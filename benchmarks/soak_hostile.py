#!/usr/bin/env python
"""The hostile-client soak of issue 13: do well-behaved sessions notice an attack?

One ``execrelay rendezvous`` and one ``execrelay exec-server --remote`` run as child processes
on loopback.  ``--sessions`` well-behaved harness sessions do paced small requests
(``fs/getMetadata``, ``process/start`` + output of ``echo``), first alone (quiet), then while a
second child process runs the audit's hostile clients: a FIFO reader, a harness that never
acks a reliable stream whose process floods output, a Rapid-Reset stream flooder, slowloris
connections and a cookie setter (``execrelay.bench.hostile``).

The report gives p50/p99 quiet vs hostile and their difference (target: p99 within +1 ms),
lost requests (must be 0), the peak RSS of the executor and the rendezvous, the cookie and
FIFO outcomes and what each hostile client saw.  Exit status 1 when a functional outcome
fails (lost or wrong answers, a leaked cookie, an unanswered FIFO read); the latency target
is reported, not enforced (2 shared cores make it noisy).

    python benchmarks/soak_hostile.py [--seconds 20] [--sessions 4] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from execrelay.bench.soak import SoakConfig, format_report, run_soak


def functional_failures(result: dict) -> list[str]:
    """The outcomes that must hold whatever the machine's speed."""
    bad = []
    for phase in ("quiet", "hostile"):
        s = result.get(phase, {})
        if s.get("lost") or s.get("wrong") or s.get("duplicates"):
            bad.append(f"{phase}: lost {s.get('lost')}, wrong {s.get('wrong')}, duplicates {s.get('duplicates')}")
    clients = result.get("hostile_clients", {})
    if "cookie_setter" in clients and result.get("cookie", {}).get("leaked"):
        bad.append("cookie leaked across sessions")
    fifo = clients.get("fifo_reader")
    if fifo is not None and not (fifo.get("answered") and fifo.get("content_ok")):
        bad.append(f"FIFO read: {fifo}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    ap.add_argument("--sessions", type=int, default=4, help="well-behaved sessions")
    ap.add_argument("--interval", type=float, default=0.02, help="seconds between one session's requests")
    ap.add_argument("--slowloris", type=int, default=200, help="slowloris connections held at once")
    ap.add_argument("--request-timeout", type=float, default=5.0,
                    help="a well-behaved request unanswered after this many seconds is lost")
    ap.add_argument("--only", default="", metavar="A,B",
                    help="run only these hostile clients (fifo_reader, non_acking_harness, "
                         "stream_flooder, slowloris, cookie_setter); default all")
    ap.add_argument("--json", metavar="OUT", default=None, help="also write the raw result here")
    args = ap.parse_args()
    cfg = SoakConfig(seconds=args.seconds, sessions=args.sessions, interval=args.interval,
                     slowloris=args.slowloris, request_timeout=args.request_timeout,
                     hostile=tuple(x for x in args.only.split(",") if x))
    result = asyncio.run(run_soak(cfg))
    print(format_report(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    bad = functional_failures(result)
    for line in bad:
        print("FAIL: " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
