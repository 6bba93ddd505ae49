"""URI parsing cost on the ``fs/getMetadata`` path (docs/dialects.md §Paths and URIs).

    python benchmarks/bench_fileuri.py [--compat auto]

Two measurements, each interleaved (A, B, A, B, ...) and best-of-N so machine noise hits both
alike, in thread CPU time (other processes on the shared machine do not count):

* **request**: whole ``fs/getMetadata`` requests fed to one in-process connection (parse,
  dispatch, handler, encode), a native path vs the same path as a ``file://`` URI.  The URI
  answer has 0.171's extra ``size`` member, so this ratio includes building and encoding it;
* **request, same result**: the same with the native request also answered in 0.171's form
  (the result builder swapped for this run only), which leaves the URI handling alone;
* **parse**: ``os.stat(to_path(uri))`` vs ``os.stat(path)`` -- the URI parsing alone.

The URI fast path has no cache, so every call below pays the full parse.  Target: both ratios
<= 1.10.  Also prints the slow path (percent-escapes, dot segments) and :func:`to_uri`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Callable

import orjson

from execrelay.executor import ExecServer, ExecServerConfig, RpcConnection, fileuri, fs


def _cpu(fn: Callable[[], object], n: int) -> float:
    """Thread CPU seconds per call of ``fn`` over ``n`` calls."""
    t0 = time.thread_time_ns()
    for _ in range(n):
        fn()
    return (time.thread_time_ns() - t0) / n / 1e9


def interleaved(a: Callable[[], object], b: Callable[[], object], n: int, rounds: int) -> tuple[float, float]:
    best_a = best_b = float("inf")
    for _ in range(rounds):
        best_a = min(best_a, _cpu(a, n))
        best_b = min(best_b, _cpu(b, n))
    return best_a, best_b


def _connection(compat: str) -> RpcConnection:
    sent: list[bytes] = []
    conn = RpcConnection(ExecServer(ExecServerConfig(compat=compat)), sent.append)
    conn.feed(b'{"id":0,"method":"initialize","params":{"clientName":"bench"}}')
    conn.feed(b'{"method":"initialized","params":{}}')
    assert b'"sessionId"' in sent[0], sent
    return conn


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--compat", default="auto", choices=["auto"])  # the mode that serves both forms
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("-n", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        native = os.path.join(d, "project", "src", "module.py")
        os.makedirs(os.path.dirname(native))
        open(native, "w").close()
        uri = fileuri.to_uri(native)
        slow_uri = uri.replace("/src/", "/src/./").replace("module", "mod%75le")
        assert fileuri.to_path(uri) == native and os.path.samefile(fileuri.to_path(slow_uri), native)

        conn_native, conn_uri = _connection(args.compat), _connection(args.compat)
        msg_native = orjson.dumps({"id": 1, "method": "fs/getMetadata", "params": {"path": native}})
        msg_uri = orjson.dumps({"id": 1, "method": "fs/getMetadata", "params": {"path": uri}})
        req_n, req_u = interleaved(lambda: conn_native.feed(msg_native), lambda: conn_uri.feed(msg_uri),
                                   args.n, args.rounds)
        builder = fs._metadata
        fs._metadata = fs._metadata_171
        try:
            same_n, same_u = interleaved(lambda: conn_native.feed(msg_native), lambda: conn_uri.feed(msg_uri),
                                         args.n, args.rounds)
        finally:
            fs._metadata = builder

        stat, to_path = os.stat, fileuri.to_path
        st_n, st_u = interleaved(lambda: stat(native), lambda: stat(to_path(uri)), args.n * 2, args.rounds)
        parse = min(_cpu(lambda: to_path(uri), args.n * 4) for _ in range(args.rounds))
        slow = min(_cpu(lambda: (fileuri._memo.clear(), to_path(slow_uri)), args.n // 5)
                   for _ in range(args.rounds // 5 + 1))
        out = min(_cpu(lambda: fileuri.to_uri(native), args.n * 4) for _ in range(args.rounds // 5 + 1))

    print(f"uri                               {uri}")
    print(f"request fs/getMetadata native     {req_n * 1e9:8.0f} ns")
    print(f"request fs/getMetadata uri        {req_u * 1e9:8.0f} ns   ratio {req_u / req_n:.3f}")
    print(f"same result: native               {same_n * 1e9:8.0f} ns")
    print(f"same result: uri                  {same_u * 1e9:8.0f} ns   ratio {same_u / same_n:.3f}")
    print(f"os.stat(native)                   {st_n * 1e9:8.0f} ns")
    print(f"os.stat(to_path(uri)), no cache   {st_u * 1e9:8.0f} ns   ratio {st_u / st_n:.3f}")
    print(f"to_path fast path alone           {parse * 1e9:8.0f} ns")
    print(f"to_path slow path (memo cleared)  {slow * 1e9:8.0f} ns   ({slow_uri})")
    print(f"to_uri                            {out * 1e9:8.0f} ns")
    return 0 if same_u / same_n <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
