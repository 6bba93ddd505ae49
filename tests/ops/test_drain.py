"""Graceful drain with real processes running: local websocket, --remote, the rendezvous.

Process-level (signals to real commands), so these run in the compiled pass only.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from execrelay.harness import ConnectionLost, HarnessClient

from ._procs import (await_exit, execrelay, http_get, json_lines, start, wait_gone, wait_log,
                     wait_ready)

pytestmark = pytest.mark.skipif(os.environ.get("EXECRELAY_PURE") == "1",
                                reason="process-level: the compiled pass covers it (signals, real processes)")


async def _recv(ws: Any, pred: Any, timeout: float = 15.0) -> dict:
    async def loop() -> dict:
        while True:
            m = json.loads(await ws.recv())
            if pred(m):
                return m
    return await asyncio.wait_for(loop(), timeout)


async def _start_process(ws: Any, script: str) -> int:
    """initialize + a process printing its pid first; returns the pid."""
    await ws.send('{"id":1,"method":"initialize","params":{"clientName":"t"}}')
    await _recv(ws, lambda m: m.get("id") == 1)
    await ws.send('{"method":"initialized"}')
    await ws.send(json.dumps({"id": 2, "method": "process/start", "params": {
        "processId": "p", "argv": ["/bin/sh", "-c", f"echo $$; {script}"], "cwd": "/", "env": {}, "tty": False}}))
    out = await _recv(ws, lambda m: m.get("method") == "process/output")
    return int(base64.b64decode(out["params"]["chunk"]).split()[0])


async def test_local_drain_lets_a_running_process_finish(tmp_path: Path) -> None:
    p = start(execrelay("exec-server", "--listen", "ws://127.0.0.1:0", "--drain-timeout", "20",
                        "--metrics-listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "info"),
              tmp_path, "exec")
    try:
        metrics = (await wait_log(p, "metrics listening"))["url"]
        assert (await http_get(f"{metrics}/readyz"))[0] == 200
        status, text = await http_get(f"{metrics}/metrics")
        assert status == 200 and 'execrelay_executor_info{compat="auto",mode="websocket"} 1' in text
        async with websockets.connect(p.url) as ws, websockets.connect(p.url) as late:
            pid = await _start_process(ws, "sleep 1.5; echo done")
            t0 = time.monotonic()
            os.kill(p.proc.pid, signal.SIGTERM)
            await wait_log(p, "drain started")
            assert await http_get(f"{metrics}/readyz") == (503, "draining\n")
            # a connection that had no session yet cannot start one now
            await late.send('{"id":1,"method":"initialize","params":{"clientName":"t"}}')
            refused = await _recv(late, lambda m: m.get("id") == 1)
            assert "draining" in refused["error"]["message"]
            # the running process ends on its own and its notifications still arrive
            out = await _recv(ws, lambda m: m.get("method") == "process/output")
            assert base64.b64decode(out["params"]["chunk"]) == b"done\n"
            exited = await _recv(ws, lambda m: m.get("method") == "process/exited")
            assert exited["params"]["exitCode"] == 0
        rc = await await_exit(p.proc, 15)
        assert rc == 0 and time.monotonic() - t0 < 15
        assert await wait_gone(pid)
    finally:
        p.stop()
    done = [e for e in json_lines(p.stderr_text()) if e["msg"] == "drain finished"]
    assert done and done[0]["outcome"] == "drained" and done[0]["killed_processes"] == 0


async def test_local_drain_timeout_kills_the_group(tmp_path: Path) -> None:
    p = start(execrelay("exec-server", "--listen", "ws://127.0.0.1:0", "--drain-timeout", "0.5",
                        "--log-format", "json", "--log-level", "info"), tmp_path, "exec")
    try:
        async with websockets.connect(p.url) as ws:
            pid = await _start_process(ws, "sleep 100 & echo $!; wait")
            t0 = time.monotonic()
            os.kill(p.proc.pid, signal.SIGTERM)
            rc = await await_exit(p.proc, 15)
        assert rc == 0 and time.monotonic() - t0 >= 0.5
        assert await wait_gone(pid)
    finally:
        p.stop()
    done = [e for e in json_lines(p.stderr_text()) if e["msg"] == "drain finished"]
    assert done[0]["outcome"] == "timeout" and done[0]["killed_processes"] == 1


async def test_second_sigterm_exits_at_once(tmp_path: Path) -> None:
    p = start(execrelay("exec-server", "--listen", "ws://127.0.0.1:0", "--drain-timeout", "60",
                        "--log-format", "json", "--log-level", "info"), tmp_path, "exec")
    try:
        async with websockets.connect(p.url) as ws:
            pid = await _start_process(ws, "exec sleep 100")
            os.kill(p.proc.pid, signal.SIGTERM)
            await wait_log(p, "drain started")
            t0 = time.monotonic()
            os.kill(p.proc.pid, signal.SIGTERM)
            rc = await await_exit(p.proc, 15)
        assert rc == 1 and time.monotonic() - t0 < 10
        assert await wait_gone(pid)
    finally:
        p.stop()


async def test_remote_drain_resets_with_executor_draining(tmp_path: Path) -> None:
    """--remote: during the drain a new stream is Reset ``executor_draining``; the running
    process's session keeps working until its process ends; then its stream is Reset with the
    same reason and the executor exits 0."""
    from execrelay.rendezvous import RendezvousServer

    rdv = RendezvousServer(harness_grace=5.0, executor_grace=5.0, heartbeat=None)
    base = await rdv.start("127.0.0.1", 0)
    token = rdv.mint_token("executor", "drain-1")
    p = start(execrelay("exec-server", "--remote", base, "--environment-id", "drain-1", "--drain-timeout", "20",
                        "--metrics-listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "info"),
              tmp_path, "exec", wait_url=False, CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=token)
    try:
        metrics = (await wait_log(p, "metrics listening"))["url"]
        await wait_ready(metrics)
        async with HarnessClient(rdv.harness_url("drain-1")) as client:
            session = await client.open_session()
            started = await session.process_start("p", ["/bin/sh", "-c", "sleep 1.5; echo done"], "/")
            assert started["processId"] == "p"
            os.kill(p.proc.pid, signal.SIGTERM)
            await wait_log(p, "drain started")
            assert await http_get(f"{metrics}/readyz") == (503, "draining\n")
            with pytest.raises(ConnectionLost) as lost:
                await client.open_session(timeout=10)
            assert "executor_draining" in str(lost.value)
            status, text = await http_get(f"{metrics}/metrics")
            assert 'execrelay_executor_resets_total{reason="executor_draining",direction="sent"} 1' in text
            assert "execrelay_executor_processes 1" in text and "execrelay_executor_relay_streams 1" in text
            assert "execrelay_executor_registrations_total 1" in text
            result = await session.process_read("p", wait_ms=10000)
            while not result.get("exited"):
                result = await session.process_read("p", after_seq=result.get("nextSeq", 0) - 1, wait_ms=10000)
            assert result["exitCode"] == 0
            rc = await await_exit(p.proc, 15)
            assert rc == 0
            await asyncio.sleep(0.2)
            with pytest.raises(ConnectionLost) as lost:
                await session.fs_get_metadata("/")
            assert "executor_draining" in str(lost.value)
    finally:
        p.stop()
        await rdv.aclose()


async def test_rendezvous_drain_keeps_routing_and_refuses_new(tmp_path: Path) -> None:
    """The rendezvous: /readyz 503, new sockets 503, new streams Reset, open streams routed;
    the drain ends when the last stream does."""
    from execrelay.executor import ExecServer
    from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig
    from execrelay.rendezvous import RendezvousServer

    rdv = RendezvousServer(harness_grace=0.2, executor_grace=5.0, heartbeat=None)
    base = await rdv.start("127.0.0.1", 0)
    server = ExecServer()
    executor = RemoteExecutor(RemoteExecutorConfig.with_bearer_token(
        base, "r-1", rdv.mint_token("executor", "r-1")), server)
    task = asyncio.ensure_future(executor.run())
    try:
        await asyncio.wait_for(executor.connected.wait(), 10)
        async with HarnessClient(rdv.harness_url("r-1")) as client:
            session = await client.open_session()
            drain = asyncio.ensure_future(rdv.drain(30.0))
            await asyncio.sleep(0.1)
            assert await http_get(f"{base}/readyz") == (503, "draining\n")
            status, body = await http_get(f"{base}/cloud/executor/r-1/register")
            assert status in (503, 405)  # GET on a POST route: refused before routing anyway
            with pytest.raises(Exception):
                async with HarnessClient(rdv.harness_url("r-1")) as other:
                    await other.open_session(timeout=3)
            with pytest.raises(ConnectionLost) as lost:
                await client.open_session(timeout=5)
            assert "rendezvous_draining" in str(lost.value)
            assert (await session.fs_get_metadata("/"))["isDirectory"] is True  # still routed
            assert not drain.done()
            session.close()
        assert await asyncio.wait_for(drain, 10) == "drained"
    finally:
        executor.close()
        await asyncio.wait_for(task, 10)
        await server.aclose()
        await rdv.aclose()


async def test_rendezvous_cli_drain_flag(tmp_path: Path) -> None:
    """``execrelay rendezvous --drain-timeout``: SIGTERM with a stream open keeps it routed and
    /readyz at 503 until the stream ends, then exits 0; a second SIGTERM would end it at once."""
    from execrelay.executor import ExecServer
    from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig
    from execrelay.rendezvous.server import harness_url
    from execrelay.rendezvous.tokens import mint

    from ._procs import SECRET

    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    rdv = start(execrelay("rendezvous", "--listen", "127.0.0.1:0", "--secret-file", str(secret_file),
                          "--drain-timeout", "30", "--harness-grace", "0.2", "--log-format", "json",
                          "--log-level", "info"), tmp_path, "rdv")
    base = rdv.url.split()[-1]
    server = ExecServer()
    executor = RemoteExecutor(RemoteExecutorConfig.with_bearer_token(
        base, "c-1", mint(SECRET.encode(), "executor", "c-1", 600)), server)
    task = asyncio.ensure_future(executor.run())
    try:
        await asyncio.wait_for(executor.connected.wait(), 20)
        url = harness_url(base.replace("http://", "ws://"), "c-1", mint(SECRET.encode(), "harness", "c-1", 600))
        async with HarnessClient(url) as client:
            session = await client.open_session()
            os.kill(rdv.proc.pid, signal.SIGTERM)
            await wait_log(rdv, "drain started")
            assert await http_get(f"{base}/readyz") == (503, "draining\n")
            assert (await session.fs_get_metadata("/"))["isDirectory"] is True
            assert rdv.proc.poll() is None
            session.close()
            assert await await_exit(rdv.proc, 20) == 0
        done = [e for e in json_lines(rdv.stderr_text()) if e["msg"] == "drain finished"]
        assert done and done[0]["outcome"] == "drained"
    finally:
        executor.close()
        await asyncio.wait_for(task, 10)
        await server.aclose()
        rdv.stop()
