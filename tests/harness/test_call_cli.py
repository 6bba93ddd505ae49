"""``execrelay call`` against a local exec-server and through a rendezvous; ``--paths`` against
servers of both dialects (``_harness_servers.py``)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

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


def _assert_directory(url: str, path: str) -> None:
    """``execrelay call URL fs/getMetadata`` succeeds and says ``path`` is a directory."""
    out = call(url, "fs/getMetadata", json.dumps({"path": path}))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["isDirectory"] is True


def test_call_direct(local_exec_server, tmp_path):
    _assert_directory(local_exec_server, str(tmp_path))
    bad = call(local_exec_server, "no/such")
    assert bad.returncode == 1 and "-32601" in bad.stderr and "no/such" in bad.stderr
    assert call(local_exec_server, "fs/getMetadata", "{oops").returncode == 2


async def test_call_through_rendezvous(tmp_path):
    from execrelay.rendezvous import RendezvousServer
    from interop.our_executor import remote_executor

    async with RendezvousServer() as rdv, remote_executor(rdv, "cli-exec"):
        await asyncio.to_thread(_assert_directory, rdv.harness_url("cli-exec"), str(tmp_path))


# ---------------------------------------------------------------------------- --paths (0.171)
ODD = "d ü #%41"


def _odd_dir(start_server, impl: str, tmp_path: Path) -> tuple[str, Path]:
    """A server of ``impl`` and a directory named ``ODD`` (space, non-ASCII letter, URI-special
    characters), which the server reports as a directory when asked with its native path
    (--paths auto): ``(url, the directory)``."""
    url = start_server(impl).url
    odd = tmp_path / ODD
    odd.mkdir()
    _assert_directory(url, str(odd))
    return url, odd


@pytest.mark.interop
@pytest.mark.timeout(90)
@pytest.mark.parametrize("impl", ["real171", "ours-0.171"])
def test_call_paths_auto_converts_for_171(impl, start_server, tmp_path):
    from execrelay.fileuri import to_uri

    url, odd = _odd_dir(start_server, impl, tmp_path)
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
@pytest.mark.parametrize("impl", ["real131", "ours-0.131"])
def test_call_paths_auto_keeps_native_for_131(impl, start_server, tmp_path):
    url, odd = _odd_dir(start_server, impl, tmp_path)
    forced = call(url, "fs/getMetadata", json.dumps({"path": str(odd)}), "--paths", "uri")
    assert forced.returncode == 1 and "error" in forced.stderr  # 0.131 takes no URI


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_call_sends_the_given_traceparent(tmp_path):
    """``--traceparent`` reaches the executor with the call: its access log (JSON) shows it on
    the request; a malformed one is refused before connecting."""
    proc = subprocess.Popen([sys.executable, "-m", "execrelay", "exec-server", "--listen", "ws://127.0.0.1:0",
                             "--access-log", "--log-format", "json", "--log-level", "info"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:"), url
        out = call(url, "fs/getMetadata", json.dumps({"path": str(tmp_path)}), "--traceparent", TRACEPARENT)
        assert out.returncode == 0, out.stderr
        bad = call(url, "fs/getMetadata", "{}", "--traceparent", TRACEPARENT.upper())
        assert bad.returncode == 2 and "--traceparent" in bad.stderr and not bad.stdout
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    requests = [e for e in (json.loads(line) for line in err.splitlines() if line.startswith("{"))
                if e["msg"] == "request"]
    assert [e["method"] for e in requests] == ["initialize", "fs/getMetadata"]
    assert requests[1]["traceparent"] == TRACEPARENT
    # initialize keeps the session's own trace context, with another trace id
    assert requests[0]["traceparent"].split("-")[1] != TRACEPARENT.split("-")[1]
