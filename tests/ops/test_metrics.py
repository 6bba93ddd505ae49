"""Executor metrics: exact values after a known sequence of requests, the text format, /readyz.

The requests go through RpcConnection directly (tests/executor's Client), so every count is
known; the HTTP side (OpsServer) is checked on loopback.
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from executor.conftest import Client

from execrelay.executor import ExecServer
from execrelay.executor.metrics import LATENCY_BOUNDS_NS
from execrelay.executor.opshttp import DRAINING, READY, STARTING, OpsServer

SAMPLE = re.compile(r'(execrelay_(?:executor_\w+|build_info))(\{[a-z_]+="[^"]*"(?:,[a-z_]+="[^"]*")*\})? (\S+)')


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value of every sample line; asserts the line format on the way."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) execrelay_(executor_\w+|build_info) .+", line), line
            continue
        m = SAMPLE.fullmatch(line)
        assert m, line
        value = m.group(3)
        out[m.group(1) + (m.group(2) or "")] = float("inf") if value == "+Inf" else float(value)
    return out


async def test_exact_counts_after_known_requests(tmp_path: Path) -> None:
    server = ExecServer()
    c = Client(server)
    await c.handshake()
    f = tmp_path / "f"
    f.write_text("x")
    for _ in range(3):
        await c.result("fs/getMetadata", {"path": str(f)})
    await c.error("fs/getMetadata", {"path": str(tmp_path / "missing")})
    await c.error("fs/getMetadata", {})  # invalid params
    await c.error("no/such", {})
    await c.error("nor/this", {})
    c.send(b"{not json")
    await c.wait_for(lambda m: m.get("id") == -1)
    s = samples(server.metrics.render())
    assert s['execrelay_executor_requests_total{method="initialize",outcome="ok"}'] == 1
    assert s['execrelay_executor_requests_total{method="fs/getMetadata",outcome="ok"}'] == 3
    assert s['execrelay_executor_requests_total{method="fs/getMetadata",outcome="error"}'] == 2
    assert s['execrelay_executor_requests_total{method="unknown",outcome="error"}'] == 2
    assert s['execrelay_executor_requests_total{method="process/start",outcome="ok"}'] == 0
    # histogram: cumulative buckets ending in +Inf == _count == requests of that method
    assert s['execrelay_executor_request_duration_seconds_count{method="fs/getMetadata"}'] == 5
    inf = s['execrelay_executor_request_duration_seconds_bucket{method="fs/getMetadata",le="+Inf"}']
    assert inf == 5
    buckets = [v for k, v in s.items() if k.startswith(
        'execrelay_executor_request_duration_seconds_bucket{method="fs/getMetadata"')]
    assert len(buckets) == len(LATENCY_BOUNDS_NS) + 1 and buckets == sorted(buckets)
    assert 0 < s['execrelay_executor_request_duration_seconds_sum{method="fs/getMetadata"}'] < 5
    # bytes: everything the client sent and received, split between requests and the rest
    sent = sum(len(r) for r in c.raw)
    assert s['execrelay_executor_bytes_total{direction="out"}'] == sent
    assert s["execrelay_executor_connections"] == 1
    assert s["execrelay_executor_connections_opened_total"] == 1
    assert s['execrelay_executor_sessions{state="attached"}'] == 1
    assert s["execrelay_executor_processes"] == 0
    assert s["execrelay_executor_requests_in_flight"] == 0
    c.conn.close()
    s = samples(server.metrics.render())
    assert s["execrelay_executor_connections"] == 0
    assert s['execrelay_executor_sessions{state="detached"}'] == 1
    await server.aclose()


async def test_bytes_in_counts_every_message() -> None:
    server = ExecServer()
    c = Client(server)
    messages = [b'{"id":1,"method":"initialize","params":{"clientName":"t"}}',
                b'{"method":"initialized","params":{}}', b'{"id":2,"method":"x/y"}', b"junk"]
    for m in messages:
        c.send(m)
    await c.wait_for(lambda m: m.get("id") == -1)
    s = samples(server.metrics.render())
    assert s['execrelay_executor_bytes_total{direction="in"}'] == sum(map(len, messages))
    await server.aclose()


async def test_processes_and_async_outcomes() -> None:
    server = ExecServer()
    c = Client(server)
    await c.handshake()
    await c.result("process/start", {"processId": "p", "argv": ["/bin/sleep", "30"], "cwd": "/",
                                     "env": {}, "tty": False})
    s = samples(server.metrics.render())
    assert s["execrelay_executor_processes"] == 1
    # a long poll is an async request: in flight until it ends
    c.send({"id": 77, "method": "process/read", "params": {"processId": "p", "waitMs": 20000}})
    await asyncio.sleep(0.05)
    s = samples(server.metrics.render())
    assert s["execrelay_executor_requests_in_flight"] == 1
    c.conn.close()  # the connection goes: the running request is cancelled
    await asyncio.sleep(0.05)
    s = samples(server.metrics.render())
    assert s['execrelay_executor_requests_total{method="process/read",outcome="cancelled"}'] == 1
    assert s["execrelay_executor_requests_in_flight"] == 0
    await server.aclose()
    assert samples(server.metrics.render())["execrelay_executor_processes"] == 0


async def test_handler_added_at_run_time_is_counted() -> None:
    server = ExecServer()
    server.handlers["test/echo"] = lambda conn, params: {"echo": params}
    c = Client(server)
    assert (await c.call("test/echo", {"a": 1}))["result"] == {"echo": {"a": 1}}
    s = samples(server.metrics.render())
    assert s['execrelay_executor_requests_total{method="test/echo",outcome="ok"}'] == 1
    del server.handlers["test/echo"]
    assert "error" in await c.call("test/echo", {})
    s = samples(server.metrics.render())
    assert s['execrelay_executor_requests_total{method="unknown",outcome="error"}'] == 1
    await server.aclose()


async def test_ops_server_metrics_and_readyz() -> None:
    server = ExecServer()
    state = [STARTING]
    ops = OpsServer(server.metrics, lambda: state[0])
    url = await ops.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/readyz") as r:
                assert (r.status, await r.text()) == (503, "starting\n")
            state[0] = READY
            async with http.get(f"{url}/readyz") as r:
                assert (r.status, await r.text()) == (200, "ready\n")
            state[0] = DRAINING
            async with http.get(f"{url}/readyz") as r:
                assert (r.status, await r.text()) == (503, "draining\n")
            async with http.get(f"{url}/metrics") as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = await r.text()
        assert samples(text)["execrelay_executor_connections"] == 0
    finally:
        await ops.aclose()
        await server.aclose()


def test_rendezvous_and_executor_share_the_writer() -> None:
    """One text-format writer: the rendezvous renders through execrelay.promtext too."""
    from execrelay.promtext import Exposition
    from execrelay.rendezvous.metrics import Metrics

    exp = Exposition("p")
    exp.histogram("h", "help", (0.5, 1.0), [('m="a"', [1, 0, 2], 3.25)])
    assert exp.render().splitlines()[2:] == [
        'p_h_bucket{m="a",le="0.5"} 1', 'p_h_bucket{m="a",le="1"} 1', 'p_h_bucket{m="a",le="+Inf"} 3',
        'p_h_sum{m="a"} 3.25', 'p_h_count{m="a"} 3']
    assert "execrelay_rendezvous_registrations_total 0" in Metrics().render()


@pytest.mark.parametrize("bad", ["1.2.3.4", "host:", ":99999", "h:p"])
def test_metrics_listen_is_validated(bad: str) -> None:
    from execrelay.cli._ops import parse_hostport

    with pytest.raises(ValueError, match="--metrics-listen wants HOST:PORT"):
        parse_hostport(bad, "--metrics-listen")


async def test_compat_131_lists_only_its_methods() -> None:
    from execrelay.executor import ExecServerConfig
    from execrelay.executor.methods import NEW_IN_171

    server = ExecServer(ExecServerConfig(compat="0.131"))
    text = server.metrics.render()
    for name in NEW_IN_171:
        assert f'method="{name}"' not in text
    assert 'execrelay_executor_requests_total{method="fs/getMetadata",outcome="ok"} 0' in text
    await server.aclose()
