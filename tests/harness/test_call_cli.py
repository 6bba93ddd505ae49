"""``execrelay call`` against a local exec-server and through a rendezvous; ``--paths`` against
servers of both dialects (``_harness_servers.py``)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from _harness_servers import impls


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


# ---------------------------------------------------------------------------- --paths (0.171)
ODD = "d ü #%41"


@pytest.mark.interop
@pytest.mark.timeout(90)
@pytest.mark.parametrize("impl", impls("real171", "ours-0.171"))
def test_call_paths_auto_converts_for_171(impl, start_server, tmp_path):
    from execrelay.fileuri import to_uri

    url = start_server(impl).url
    odd = tmp_path / ODD
    odd.mkdir()
    out = call(url, "fs/getMetadata", json.dumps({"path": str(odd)}))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["isDirectory"] is True
    (odd / "link").symlink_to(odd)
    out = call(url, "fs/canonicalize", json.dumps({"path": str(odd / "link")}), "--paths", "uri")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"path": to_uri(str(odd))}  # the answer is printed as sent
    out = call(url, "fs/getMetadata", json.dumps({"path": str(odd)}), "--paths", "native")
    assert out.returncode == 1 and "-32602" in out.stderr and "relative URL without a base" in out.stderr
    # a URI written by hand passes through auto unchanged
    out = call(url, "fs/getMetadata", json.dumps({"path": to_uri(str(odd))}))
    assert out.returncode == 0, out.stderr


@pytest.mark.interop
@pytest.mark.timeout(90)
@pytest.mark.parametrize("impl", impls("real131", "ours-0.131"))
def test_call_paths_auto_keeps_native_for_131(impl, start_server, tmp_path):
    url = start_server(impl).url
    odd = tmp_path / ODD
    odd.mkdir()
    out = call(url, "fs/getMetadata", json.dumps({"path": str(odd)}))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["isDirectory"] is True
    forced = call(url, "fs/getMetadata", json.dumps({"path": str(odd)}), "--paths", "uri")
    assert forced.returncode == 1 and "error" in forced.stderr  # 0.131 takes no URI
