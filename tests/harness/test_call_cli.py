"""``execrelay call`` against a local exec-server and through a rendezvous."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest


def call(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "execrelay", "call", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def local_exec_server():
    proc = subprocess.Popen([sys.executable, "-m", "execrelay", "exec-server", "--listen", "ws://127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:"), url
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_call_direct(local_exec_server, tmp_path):
    out = call(local_exec_server, "fs/getMetadata", json.dumps({"path": str(tmp_path)}))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["isDirectory"] is True
    bad = call(local_exec_server, "no/such")
    assert bad.returncode == 1 and "-32601" in bad.stderr and "no/such" in bad.stderr
    assert call(local_exec_server, "fs/getMetadata", "{oops").returncode == 2


async def test_call_through_rendezvous(tmp_path):
    from execrelay.executor import ExecServer
    from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig
    from execrelay.rendezvous import RendezvousServer

    async with RendezvousServer() as rdv:
        server = ExecServer()
        ex = RemoteExecutor(RemoteExecutorConfig.with_bearer_token(
            rdv.url, "cli-exec", rdv.mint_token("executor", "cli-exec")), server)
        task = asyncio.ensure_future(ex.run())
        try:
            await asyncio.wait_for(ex.connected.wait(), 10)
            out = await asyncio.to_thread(call, rdv.harness_url("cli-exec"), "fs/getMetadata",
                                          json.dumps({"path": str(tmp_path)}))
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["isDirectory"] is True
        finally:
            ex.close()
            await asyncio.wait_for(task, 10)
            await server.aclose()
