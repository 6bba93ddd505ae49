"""`execrelay bench --pin`: parsing, and a child started with the preexec hook lands on its CPUs."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from execrelay.bench import pinning

pytestmark = pytest.mark.timeout(30)


def test_parse() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) >= 2:
        d, m = pinning.parse("auto")
        assert d == {allowed[0]} and m == set(allowed[1:])
        assert pinning.parse(f"{allowed[0]}:{allowed[1]}") == ({allowed[0]}, {allowed[1]})
    for bad in ("0:0", "x", "0-1", "0:99999"):
        with pytest.raises(ValueError):
            pinning.parse(bad)


def test_child_runs_on_the_measured_cpus(monkeypatch) -> None:
    assert pinning.child_preexec() is None and pinning.describe() is None
    cpu = sorted(os.sched_getaffinity(0))[-1]
    monkeypatch.setattr(pinning, "_children", frozenset({cpu}))
    monkeypatch.setattr(pinning, "_driver", frozenset({cpu}))
    out = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                         capture_output=True, text=True, timeout=20, preexec_fn=pinning.child_preexec())
    assert out.stdout.strip() == f"[{cpu}]"
    assert pinning.describe() == {"driver_cpus": [cpu], "measured_cpus": [cpu]}
