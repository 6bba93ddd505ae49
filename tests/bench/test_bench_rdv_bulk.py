"""The isolation scenario through ``execrelay rendezvous`` with the bulk harness in its own
process (:mod:`execrelay.bench.rdv_bulk`): its plumbing, briefly.  Never asserts speed."""
from __future__ import annotations

import asyncio

import pytest

from execrelay.bench import rdv

pytestmark = pytest.mark.timeout(120)


async def test_bulk_harness_process_runs_beside_small_streams() -> None:
    res = await asyncio.wait_for(rdv.run(["fast"], [], 0, 0.2, 0.6, isolation_reps=1, bulk=("readFile8m",)), 100)
    iso = res["isolation"]["by_executor"]["fast"]
    beside = iso["runs"]["readFile8m"][0]
    assert "failed" not in beside, beside.get("failed")
    assert beside["requests"] > 0 and beside["resets"] == 0
    assert beside["bulk"]["replies"] > 0 and beside["bulk"]["resets"] == 0  # 11 MB frames arrived whole
    assert "p99_added_ms" in iso["summary"]["readFile8m"]
