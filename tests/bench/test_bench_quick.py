"""`execrelay bench` works end to end in a TINY configuration (seconds; our executor only).

Never asserts speed (CI machines are shared): only that the suite runs and that the report,
the JSON with every figure and --compare are produced with sane content.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(180)


def test_bench_tiny_writes_report_and_json(tmp_path):
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "execrelay", "bench", "--tiny", "--executors", "fast", "--out", str(out),
           "--configs", "trivial:2:4,getMetadata:2:1", "--duration", "0.3", "--warmup", "0.1",
           "--idle-streams", "50", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads((out / "results.json").read_text())
    assert data["mode"] == "tiny"
    assert set(data["micro"]["ns_per_op"]) >= {"decode+access", "encode", "peek_stream_id"}
    cfgs = data["executors_bench"]["configs"]
    assert set(cfgs) == {"trivial s2 w4", "getMetadata s2 w1"}
    for cfg in cfgs.values():
        s = cfg["by_executor"]["fast"]["summary"]
        assert s["failed_runs"] == 0
        assert s["runs"] == 1
        run = cfg["by_executor"]["fast"]["runs"][0]
        assert run["requests"] > 0 and run["exec_cpu_us"] > 0 and run["driver_cpu_us"] > 0
    assert cfgs["getMetadata s2 w1"]["by_executor"]["fast"]["summary"]["errors"] == 0
    mem = data["executors_bench"]["memory"]["fast"]
    assert mem["streams"] == 50 and mem["rssN_kib"] > 0
    noise = data["noise"]
    assert noise["handshake"]["harness_ms"] > 0 and noise["handshake"]["executor_ms"] > 0
    assert noise["records"]["request_us"] > 0 and noise["records"]["request_batched_us"] > 0
    assert noise["records"]["bulk_seal_GBps"] > 0 and noise["records"]["bulk_open_GBps"] > 0
    e2e = noise["end_to_end"]
    assert "failed" not in e2e, e2e
    assert e2e["plain"]["request_cpu_us"] > 0 and e2e["noise"]["request_cpu_us"] > 0
    md = (out / "report.md").read_text()
    assert "## Targets (docs/benchmarks.md)" in md and "trivial s2 w4" in md
    assert "## Noise relay (issue 14)" in md and "Noise record layer, bulk per core" in md

    cmp = subprocess.run([sys.executable, "-m", "execrelay", "bench", "--compare", str(out / "results.json"),
                          "--against", str(out / "results.json")], capture_output=True, text=True, timeout=60)
    assert cmp.returncode == 0, cmp.stderr
    assert "0 figure(s) changed" in cmp.stdout
