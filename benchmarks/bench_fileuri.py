"""URI parsing cost on the fs/getMetadata path: ``os.stat(native)`` vs ``os.stat(to_path(uri))``.

    python benchmarks/bench_fileuri.py

The target (docs/dialects.md §Paths and URIs) is parse + stat <= 1.10 x stat for the common
URI (``file:///`` + plain ASCII) once seen (memo hit); a first sight (memo miss, regex fast
path) is printed too.  Both loops are timed alternately, best of several repeats,
so machine noise hits both alike.  Also prints the slow path (percent-escapes, dot segments)
and :func:`to_uri` for reference.
"""
from __future__ import annotations

import os
import sys
import tempfile
import timeit

from execrelay.executor import fileuri


def _best(stmt, number: int, repeat: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        native = os.path.join(d, "project", "src", "module.py")
        os.makedirs(os.path.dirname(native))
        open(native, "w").close()
        uri = fileuri.to_uri(native)
        slow_uri = uri.replace("/src/", "/src/./").replace("module", "mod%75le")
        assert fileuri.to_path(uri) == native and os.path.samefile(fileuri.to_path(slow_uri), native)
        stat, to_path = os.stat, fileuri.to_path
        n, r = 20_000, 25
        base = []
        parsed = []
        for _ in range(r):  # alternate, so drift affects both
            base.append(_best(lambda: stat(native), n, 1))
            parsed.append(_best(lambda: stat(to_path(uri)), n, 1))
        b, p = min(base), min(parsed)
        parse_only = _best(lambda: to_path(uri), n, r)
        fast_miss = _best(lambda: fileuri._FAST.fullmatch(uri).group(1), n, r)
        miss = []
        for _ in range(r):  # memo miss every call: the regex fast path + stat
            miss.append(_best(lambda: (fileuri._memo.clear(), stat(to_path(uri))), n, 1))
        clear_cost = _best(fileuri._memo.clear, n, r)
        m = min(miss) - clear_cost
        slow = _best(lambda: (fileuri._memo.clear(), to_path(slow_uri)), n // 10, r) - clear_cost
        out = _best(lambda: fileuri.to_uri(native), n, r)
        print(f"uri                      {uri}")
        print(f"os.stat(native)          {b * 1e9:8.0f} ns")
        print(f"os.stat(to_path(uri))    {p * 1e9:8.0f} ns   ratio {p / b:.3f}")
        print(f"to_path (memo hit)       {parse_only * 1e9:8.0f} ns")
        print(f"os.stat(to_path(uri)), memo miss {m * 1e9:8.0f} ns   ratio {m / b:.3f}")
        print(f"fast-path regex alone    {fast_miss * 1e9:8.0f} ns")
        print(f"to_path slow path        {slow * 1e9:8.0f} ns   ({slow_uri})")
        print(f"to_uri                   {out * 1e9:8.0f} ns")
        return 0 if p / b <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
