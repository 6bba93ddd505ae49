"""The benchmark driver's RELIABLE bulk stream (the 64 MiB isolation scenario's plumbing).

A small reliable scenario instead of the 63 MiB one, so it takes seconds: the driver opens the
stream through its own opener-side Multiplexer, the executor answers on it (segmented when
large), and the measured legacy streams run beside it.  Never asserts speed.
"""
from __future__ import annotations

import asyncio
import os

import pytest

from execrelay.bench.executors import executor_specs
from execrelay.bench.fakerdv import Rendezvous
from execrelay.bench.load import measure
from execrelay.bench.processes import ExecutorProcess
from execrelay.bench.scenarios import Scenario, scenarios

pytestmark = pytest.mark.timeout(90)


async def test_reliable_bulk_stream_runs_beside_legacy_streams(tmp_path) -> None:
    workdir = str(tmp_path)
    scen = scenarios(workdir)
    path = os.path.join(workdir, "file300k.bin")
    with open(path, "wb") as fh:
        fh.write(os.urandom(300 * 1024))  # a 400 KiB reply: 7 segments
    bulk = Scenario("reliable300k", b'{"id":', b',"method":"fs/readFile","params":{"path":"%s","sandbox":null}}'
                    % path.encode(), reliable=True)
    rdv = Rendezvous()
    await rdv.start()
    ex = ExecutorProcess(executor_specs(["fast"], workdir)["fast"], rdv, "bench-reliable", workdir)
    try:
        await ex.start()
        res = await asyncio.wait_for(measure(ex, scen["trivial"], 2, 1, 0.2, 0.5, "t", big=bulk), 60)
        assert res["requests"] > 0 and res["resets"] == 0
        assert res["big_requests"] > 0  # whole replies reassembled from segments
        assert ex.conn is not None and not ex.conn.reliable  # the ticker stopped with the stream
    finally:
        ex.stop()
        rdv.close()
