"""The one in-process timing loop of the benchmarks (docs/benchmarks.md §Measurement rules).

A case is a zero-argument callable; the best of several rounds is the figure, because on a
machine shared with other processes the least disturbed round is the closest to the cost of
the code itself.  The clock is the caller's choice: wall time for the micro benchmarks, thread
CPU time for the Noise record layer.
"""
from __future__ import annotations

import time
from typing import Callable


def best_per_call(fn: Callable[[], object], calls: int, rounds: int,
                  clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per call of ``fn`` (by ``clock``): the best of ``rounds`` rounds of ``calls``."""
    best = float("inf")
    for _ in range(rounds):
        t0 = clock()
        for _ in range(calls):
            fn()
        best = min(best, (clock() - t0) / calls)
    return best
