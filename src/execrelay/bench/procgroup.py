"""Killing a child's whole process group: the benchmarks' children and the interop tests'
servers are started with ``start_new_session`` and must never outlive their run.  Standard
library only, so the tests can import it without the benchmark client's dependencies."""
from __future__ import annotations

import os
import signal
import subprocess


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass   # the group is gone already (or was never ours)


def kill_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session``), SIGKILL it
    after ``grace`` seconds, leftovers in the group included even when the leader already
    exited; reaps the leader.  Also used by the interop tests (tests/interop/procs.py)."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
