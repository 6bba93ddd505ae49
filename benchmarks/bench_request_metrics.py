"""Cost of the per-request metrics on the request path (docs/operations.md §Cost on the request path).

    python benchmarks/bench_request_metrics.py [--baseline REV] [--n N] [--rounds R]
    valgrind --tool=callgrind python benchmarks/bench_request_metrics.py --only new|old --n N

The instrumented :class:`RpcConnection` is compared with the same module as it was before the
metrics (``git show REV:src/execrelay/executor/connection.py``, loaded beside it as
``execrelay.executor._connection_baseline``), both driving the same server with the cheapest
request there is (a sync handler answering ``{}``), so the difference is the instrumentation:
one stats lookup (instead of the handler lookup), one ``monotonic_ns`` pair, one ``bisect``,
the byte and bucket increments.  Interleaved (A, B, A, B, ...) and best-of-R in thread CPU
time, so other processes on a shared machine do not count.  Target: <= 0.1 us per request.

``--only`` runs one side ``N`` times and nothing else, for instruction counts under callgrind
(the difference of the two totals divided by ``N`` is the per-request cost in instructions).
"""
from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

from execrelay.executor import ExecServer, RpcConnection

REQUEST = b'{"id":7,"method":"bench/noop","params":{}}'
ROOT = Path(__file__).resolve().parent.parent


def _baseline_module(rev: str) -> ModuleType:
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:src/execrelay/executor/connection.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "_connection_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("execrelay.executor._connection_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _feeder(conn_class: type) -> Callable[[], None]:
    server = ExecServer()
    server.handlers["bench/noop"] = lambda conn, params: {}
    sent: list[bytes] = []
    conn = conn_class(server, sent.append)
    feed = conn.feed
    clear = sent.clear

    def one() -> None:
        feed(REQUEST)
        clear()

    return one


def _cpu(fn: Callable[[], None], n: int) -> float:
    t0 = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - t0) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default="06d3fd8", help="git revision before the metrics (default 06d3fd8)")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", choices=("new", "old"), default=None)
    args = ap.parse_args()
    old = _baseline_module(args.baseline).RpcConnection
    if args.only is not None:
        fn = _feeder(RpcConnection if args.only == "new" else old)
        for _ in range(args.n):
            fn()
        return 0
    new_fn, old_fn = _feeder(RpcConnection), _feeder(old)
    best_new = best_old = float("inf")
    for _ in range(args.rounds):
        best_old = min(best_old, _cpu(old_fn, args.n))
        best_new = min(best_new, _cpu(new_fn, args.n))
    print(f"request without metrics : {best_old:8.1f} ns")
    print(f"request with metrics    : {best_new:8.1f} ns")
    print(f"instrumentation         : {best_new - best_old:8.1f} ns per request "
          f"({(best_new / best_old - 1) * 100:+.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
