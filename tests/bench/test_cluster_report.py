"""The ``cluster`` section's report and targets (``execrelay bench --only cluster``,
docs/benchmarks.md §Cluster) from a results dict: what is MET, NOT MET or not measured, and
that a failed or skipped part is said, not hidden.  The measuring code itself runs in
tests/cluster/test_cluster_herd.py (re-homing) and in ``execrelay bench --only cluster``."""
from __future__ import annotations

from execrelay.bench import cluster_report, report


def _results(**cluster: object) -> dict:
    return {"mode": "tiny", "machine": {}, "cluster": cluster}


LATENCY = {"rate_rt_per_s": 1000.0, "payload": 1024, "seconds": 10.0,
           "paths": {"single": {"rtt_p50_ms": 1.0, "rtt_p99_ms": 5.0, "rtt_mean_ms": 1.2, "samples": 10,
                                "lost": 0, "resets": []}},
           "added_per_cross_frame_p50_ms": 0.4, "added_per_cross_frame_p99_ms": 3.5, "cpu_s_per_s": {"n1": 0.1}}
THROUGHPUT = {"payload": 1024, "window": 2048, "seconds": 3.0,
              "runs": {"cross_node_to_executor": {"frames_per_s": 25e3, "resets": []},
                       "cross_node_to_harness": {"frames_per_s": 19e3, "resets": ["queue_full"]}}}
REHOME = {"executors": 500, "reowned": 500, "reowned_p95_s": 2.5, "reowned_max_s": 5.5}


def test_targets_say_met_and_not_met() -> None:
    rows = {r[0]: r for r in cluster_report.targets(_results(latency=LATENCY, throughput=THROUGHPUT,
                                                              rehome=REHOME))}
    assert rows["cluster: latency added per cross-node frame, p50"][2:] == ("0.400 ms", "MET")
    assert rows["cluster: latency added per cross-node frame, p99"][2:] == ("3.500 ms", "NOT MET")
    # the lower of the two directions counts
    assert rows["cluster: cross-node frames/s per node per direction (lower direction)"][2:] == \
        ("19.0k frames/s", "NOT MET")
    assert rows["cluster: re-homing 500 executors, p95 / all"][2:] == ("2.50 s / 5.50 s", "NOT MET")


def test_incomplete_rehoming_is_not_measured_and_absent_section_adds_no_rows() -> None:
    rows = cluster_report.targets(_results(rehome={**REHOME, "reowned": 499}))
    assert [r[2:] for r in rows if "re-homing" in r[0]] == [("not measured", "-")]
    assert cluster_report.targets({"mode": "tiny"}) == []
    assert cluster_report.targets(_results(skipped="no nats-server binary")) == []


def test_markdown_shows_failures_and_skips() -> None:
    md = report.markdown(_results(latency={"failed": "RuntimeError: boom"}, throughput=THROUGHPUT), [])
    assert "Latency: RuntimeError: boom" in md
    assert "| cross_node_to_harness | 19.0k |" in md and "## Cluster" in md
    skipped = report.markdown(_results(skipped="no nats-server binary"), [])
    assert "Skipped: no nats-server binary." in skipped
