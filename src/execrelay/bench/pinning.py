"""Optional CPU pinning for the benchmarks (``execrelay bench --pin``).

The driver and the measured processes (executors, our rendezvous) share two cores with each
other and with everything else on the machine; pinning them to separate cores keeps the
driver's work from preempting the executor it measures (and vice versa), which is what the
latency columns are sensitive to.  Off by default; the report states it when on
(docs/benchmarks.md §Running).
"""
from __future__ import annotations

import os
from typing import Callable

_children: frozenset[int] | None = None
_driver: frozenset[int] | None = None


def parse(spec: str) -> tuple[frozenset[int], frozenset[int]]:
    """``"auto"`` (driver on the first CPU this process may use, the measured processes on the
    rest) or ``"D:M"`` with comma lists of CPU numbers, e.g. ``"0:1"``, ``"0:1,2"``."""
    allowed = sorted(os.sched_getaffinity(0))
    if spec == "auto":
        if len(allowed) < 2:
            raise ValueError(f"--pin auto needs two CPUs, this process may use {allowed}")
        return frozenset(allowed[:1]), frozenset(allowed[1:])
    try:
        d, m = spec.split(":")
        driver = frozenset(int(x) for x in d.split(","))
        measured = frozenset(int(x) for x in m.split(","))
    except ValueError:
        raise ValueError(f"--pin wants 'auto' or DRIVER:MEASURED CPU lists like '0:1', got {spec!r}") from None
    if driver & measured:
        raise ValueError(f"--pin {spec}: the driver and the measured processes must not share a CPU")
    if not (driver | measured) <= set(allowed):
        raise ValueError(f"--pin {spec}: this process may only use CPUs {allowed}")
    return driver, measured


def pin(driver: frozenset[int], measured: frozenset[int]) -> None:
    """Pin this process (call before it starts threads: they inherit it) and remember where
    the children go."""
    global _children, _driver
    os.sched_setaffinity(0, driver)
    _driver, _children = driver, measured


def child_preexec() -> Callable[[], None] | None:
    """``preexec_fn`` for a measured child process (None when not pinning)."""
    cpus = _children
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def describe() -> dict | None:
    """For the report: where the driver and the measured processes ran (None: not pinned)."""
    if _children is None or _driver is None:
        return None
    return {"driver_cpus": sorted(_driver), "measured_cpus": sorted(_children)}


__all__ = ["parse", "pin", "child_preexec", "describe"]
