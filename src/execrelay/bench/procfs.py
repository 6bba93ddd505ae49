"""CPU and memory of a process from ``/proc`` (Linux only), for measured-phase sampling."""
from __future__ import annotations

import os
import platform
from typing import Iterator

CLK_TCK: int = os.sysconf("SC_CLK_TCK")


def all_stats() -> Iterator[tuple[int, list[str]]]:
    """``(pid, fields)`` of every process's ``/proc/<pid>/stat``, fields after the command name
    (``fields[0]`` is the state, ``[1]`` the parent, ``[2]`` the process group, ``[11:13]`` utime
    and stime in ticks); processes that exit meanwhile are skipped."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        yield int(entry), fields


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        data = fh.read()
    fields = data[data.rindex(b")") + 2:].split()
    # fields[0] is state (field 3); utime is field 14, stime 15 -> indexes 11, 12
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def self_cpu_seconds() -> float:
    """CPU of this (driver) process: user + system, every thread."""
    t = os.times()
    return t.user + t.system


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def machine() -> dict:
    """What the report says about the machine: cores, CPU model, load, kernel, Python."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {"nproc": os.cpu_count(), "cpu_model": model, "loadavg": [round(x, 2) for x in load],
            "kernel": platform.release(), "python": platform.python_version()}


def machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds of every core, wall-clock) from /proc/stat, for "other processes" load."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    busy = sum(vals[:8]) - idle
    return busy / CLK_TCK, 0.0
