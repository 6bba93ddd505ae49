"""Design note case 7 (docs/rendezvous.md §Several nodes): a reconnect herd.

500 executors on n3; n3 is SIGKILLed; each executor reconnects after 0.2-2 s of jitter to n1
or n2 (what a consistent-hash balancer would pick).  Every one must be re-owned (a new
``own.<id>`` entry in the ``rdv_owner`` bucket naming a survivor) within a generous bound; the
re-homing time itself is a benchmark figure (``execrelay bench --only cluster``,
docs/benchmarks.md §Cluster), not asserted here.
"""
from __future__ import annotations

import time

import pytest

from execrelay.bench.cluster_herd import HerdNode, run_herd
from nodes import Cluster

pytestmark = pytest.mark.timeout(90)

#: generous: the jitter alone is up to 2 s; this machine is shared and loaded
BOUND_S = 30.0


async def test_500_executors_on_a_killed_node_are_all_reowned(cluster: Cluster) -> None:
    victim = cluster.node("n3")
    survivors = [HerdNode(n.node_id, n.url) for n in (cluster.node("n1"), cluster.node("n2"))]

    def kill() -> float:
        t = time.monotonic()
        victim.kill()
        return t

    result = await run_herd(cluster.nats.url, HerdNode(victim.node_id, victim.url), survivors, kill,
                            cluster.executor_token, n=500, timeout=BOUND_S)
    summary = result.summary()
    logs = "\n".join(f"{n.node_id}:\n{n.log()[-1500:]}" for n in cluster.nodes)
    assert result.all_reowned and not result.timed_out, (summary, logs)
    assert summary["reowned_max_s"] < BOUND_S, summary
    print(f"\nherd of 500: {summary}")
    # the survivors hold them all now, split by the hash
    assert set(result.by_node) == {"n1", "n2"} and sum(result.by_node.values()) == 500, summary
