"""Real codex binaries through the cluster (issue 15): the harness on n2, the executor on n1,
every frame across NATS (docs/rendezvous.md §Several nodes).

* the real 0.131.0 ``codex exec`` (relay harness) -> n2 -> NATS -> n1 -> the real 0.131.0
  ``codex exec-server --remote`` (legacy streams both ways);
* the real 0.171.0 ``codex exec`` in relay-harness mode -> n2 -> NATS -> n1 -> our
  ``execrelay exec-server --remote`` (the 0.171.0 executor cannot serve a relay harness: it
  speaks Noise, see tests/interop/test_codex171_relay.py; the 0.171.0 Noise pair through the
  cluster is in test_cluster_registry.py).

The recipes and helpers are tests/interop's (``run_tool_call``, ``real_remote_executor_argv``,
the ``codex_bin`` / ``codex171_bin`` / ``process_factory`` fixtures).
"""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import nats
import orjson
import pytest
from nats.js.errors import KeyNotFoundError

from execrelay.rendezvous.cluster import subjects
from interop.conftest import codex171_bin, codex_bin, process_factory  # noqa: F401 - fixtures
from interop.harness import run_tool_call
from interop.procs import REMOTE_TOKEN_ENV, ours_remote_executor_argv, real_remote_executor_argv
from nodes import Cluster, Node

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]

TAG_ENV = "EXECRELAY_TEST_EXECUTOR_TAG"


async def _wait_owned(cluster: Cluster, node: Node, eid: str, executor: Any, timeout: float = 30.0) -> None:
    """Until the ``rdv_owner`` bucket says ``node`` owns ``eid`` (the executor connected there)."""
    nc = await nats.connect(cluster.nats.url, connect_timeout=5, max_reconnect_attempts=2)
    try:
        kv = await nc.jetstream().key_value("rdv_owner")
        deadline = time.monotonic() + timeout
        while True:
            try:
                entry = await kv.get(subjects.owner_key(eid))
                if orjson.loads(entry.value or b"{}").get("node") == node.node_id:
                    return
            except KeyNotFoundError:
                pass
            if time.monotonic() > deadline or (executor.proc is not None and executor.proc.poll() is not None):
                raise AssertionError(f"{eid} not owned by {node.node_id}:\n{executor.stderr_text()[-3000:]}"
                                     f"\nnode log:\n{node.log()[-2000:]}")
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def _tool_call_across(cluster: Cluster, harness_bin: Path, executor_argv: Callable[[str], list[str]],
                            eid: str, tag: str, tmp_path: Path, process_factory: Any) -> None:
    n1, n2 = cluster.node("n1"), cluster.node("n2")
    executor = process_factory(executor_argv(n1.url), {REMOTE_TOKEN_ENV: cluster.executor_token(eid), TAG_ENV: tag},
                               wait_url=False, name=f"executor-{eid}")
    await _wait_owned(cluster, n1, eid, executor)
    before, owned_before = await n2.metrics(), (await n1.metrics())["cluster_executors_owned"]
    token, diag, model = await run_tool_call(harness_bin, tmp_path, cluster.harness_url(eid, n2), timeout=90)
    outputs = model.tool_outputs()
    diag += f"\nexecutor stderr:\n{executor.stderr_text()[-2000:]}\nn1:\n{n1.log()[-1500:]}\nn2:\n{n2.log()[-1500:]}"
    assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
    after, owner = await n2.metrics(), await n1.metrics()
    # the session crossed NATS both ways; the executor never moved
    assert after['cluster_frames_total{direction="out"}'] > before['cluster_frames_total{direction="out"}'], diag
    assert after['cluster_frames_total{direction="in"}'] > before['cluster_frames_total{direction="in"}'], diag
    # the executor never moved: n1 still owns it (as many as when the session started)
    assert owner["cluster_executors_owned"] == owned_before, diag
    assert executor.proc is not None and executor.proc.poll() is None, diag


async def test_real_131_harness_on_n2_drives_real_131_executor_on_n1(
        shared_cluster: Cluster, codex_bin: Path, tmp_path: Path, process_factory) -> None:  # noqa: F811
    eid = f"real131-{uuid.uuid4().hex[:8]}"
    await _tool_call_across(shared_cluster, codex_bin, lambda url: real_remote_executor_argv(url, eid, codex_bin),
                            eid, uuid.uuid4().hex, tmp_path, process_factory)


async def test_real_171_harness_on_n2_drives_our_executor_on_n1(
        shared_cluster: Cluster, codex171_bin: Path, tmp_path: Path, process_factory) -> None:  # noqa: F811
    eid = f"ours-{uuid.uuid4().hex[:8]}"
    await _tool_call_across(shared_cluster, codex171_bin, lambda url: ours_remote_executor_argv(url, eid),
                            eid, uuid.uuid4().hex, tmp_path, process_factory)
