"""Executor hardening (issue 13): one client must not freeze, or read from, another."""
from __future__ import annotations

import asyncio
import base64
import os
import signal
import threading
import time
from typing import Any

import pytest
from aiohttp import web

from execrelay.executor import ExecServer, ExecServerConfig, connection as _connection
from execrelay.executor.envpolicy import build_env

from .conftest import Client, b64, serve_app, start_params

pytestmark = pytest.mark.timeout(30)


def _unblock_later(path: str, flags: int, delay: float, data: bytes = b"") -> dict:
    """Open the other end of FIFO ``path`` after ``delay`` s (releasing a blocked open) and note when."""
    done: dict = {}

    def run() -> None:
        time.sleep(delay)
        done["at"] = time.monotonic()
        fd = os.open(path, flags)
        try:
            if data:
                os.write(fd, data)
            elif flags & os.O_ACCMODE == os.O_RDONLY:
                while os.read(fd, 65536):
                    pass
        finally:
            os.close(fd)

    threading.Thread(target=run, daemon=True).start()
    return done


# --------------------------------------------------------------- item 1: FIFOs
@pytest.mark.parametrize("method", ["fs/readFile", "fs/writeFile"])
async def test_fifo_blocks_only_its_request(client: Client, new_client: Any, tmp_path, method: str) -> None:
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    if method == "fs/readFile":
        unblock = _unblock_later(fifo, os.O_WRONLY, 2.0, b"from-writer")
        params = {"path": fifo}
    else:
        unblock = _unblock_later(fifo, os.O_RDONLY, 2.0)
        params = {"path": fifo, "dataBase64": b64("x")}
    rid = 900
    client.send({"id": rid, "method": method, "params": params})
    other = new_client()
    await other.handshake()
    (tmp_path / "f").write_text("hi")
    await other.result("fs/getMetadata", {"path": str(tmp_path / "f")})
    answered = time.monotonic()
    assert "at" not in unblock or answered < unblock["at"], "another session waited for the FIFO"
    resp = await client.response(rid, timeout=10.0)
    if method == "fs/readFile":
        assert base64.b64decode(resp["result"]["dataBase64"]) == b"from-writer"
    else:
        assert resp["result"] == {}


# ------------------------------------------------------------- item 5: cookies
@pytest.fixture
async def cookie_url():
    seen: list = []

    async def setc(request: web.Request) -> web.Response:
        resp = web.Response(body=b"set")
        resp.set_cookie("sid", "session-a-secret")
        return resp

    async def show(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        return web.Response(body=b"ok")

    app = web.Application()
    app.router.add_get("/set", setc)
    app.router.add_get("/show", show)
    runner, port = await serve_app(app)
    # a host name: aiohttp's default jar ignores cookies from IP addresses
    yield f"http://localhost:{port}", seen
    await runner.cleanup()


async def test_cookies_do_not_cross_sessions(client: Client, new_client: Any, cookie_url) -> None:
    url, seen = cookie_url
    req = {"method": "GET", "headers": [], "timeoutMs": 5000}
    await client.result("http/request", {**req, "url": url + "/set", "requestId": "a"})
    other = new_client()
    await other.handshake()
    await other.result("http/request", {**req, "url": url + "/show", "requestId": "b"})
    await client.result("http/request", {**req, "url": url + "/show", "requestId": "c"})
    assert seen == [None, None]


# ------------------------------------------------------ item 6: process groups
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def _leader_exits_child_remains(client: Client, pid: str) -> int:
    await client.result("process/start", start_params(pid, ["/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"]))
    events = await client.wait_closed(pid)
    assert any(e.get("method") == "process/exited" for e in events)
    child = int(client.output(pid).decode().strip())
    assert _alive(child)
    return child


async def _gone(pid: int) -> bool:
    for _ in range(100):
        if not _alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_terminate_kills_group_after_leader_exit() -> None:
    server = ExecServer(ExecServerConfig(compat="0.131", exited_process_retention=30.0))
    client = Client(server)
    await client.handshake()
    child = await _leader_exits_child_remains(client, "g1")
    try:
        assert await client.result("process/terminate", {"processId": "g1"}) == {"running": False}
        assert await _gone(child)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)
        await server.aclose()


async def test_session_end_kills_group_after_leader_exit(client: Client, server) -> None:
    child = await _leader_exits_child_remains(client, "g2")
    try:
        for session in list(server.sessions.values()):
            session.kill_all()
        assert await _gone(child)
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


# ------------------------------------------------------------- item 7: sandbox
def _sb(*entries: tuple[Any, str]) -> dict:
    return {"permissions": {"type": "managed", "network": "restricted", "file_system": {
        "type": "restricted", "entries": [{"path": {"type": "path", "path": str(p)}, "access": a}
                                           for p, a in entries]}}, "windowsSandboxLevel": "disabled"}


async def test_copy_tree_does_not_follow_links_in_destination(client: Client, tmp_path) -> None:
    rw, out = tmp_path / "rw", tmp_path / "out"
    (rw / "src" / "sub").mkdir(parents=True)
    (rw / "src" / "sub" / "f").write_text("payload")
    out.mkdir()
    (rw / "dst").mkdir()
    (rw / "dst" / "sub").symlink_to(out)
    res = await client.call("fs/copy", {"sourcePath": str(rw / "src"), "destinationPath": str(rw / "dst"),
                                        "recursive": True, "sandbox": _sb((rw, "write"))})
    assert not (out / "f").exists(), "fs/copy wrote outside the sandbox roots"
    assert res.get("error", {}).get("code") == -32004


def _link_outside(tmp_path) -> tuple:
    """``rw/l`` -> ``out/secret`` ("s"): a link inside the writable root pointing outside it."""
    rw, out = tmp_path / "rw", tmp_path / "out"
    rw.mkdir()
    out.mkdir()
    (out / "secret").write_text("s")
    (rw / "l").symlink_to(out / "secret")
    return rw, out


async def test_remove_link_pointing_outside_removes_the_link(client: Client, tmp_path) -> None:
    rw, out = _link_outside(tmp_path)
    assert await client.result("fs/remove", {"path": str(rw / "l"), "sandbox": _sb((rw, "write"))}) == {}
    assert not os.path.lexists(rw / "l")
    assert (out / "secret").read_text() == "s"


async def test_copy_link_pointing_outside_copies_the_link(client: Client, tmp_path) -> None:
    rw, out = _link_outside(tmp_path)
    assert await client.result("fs/copy", {"sourcePath": str(rw / "l"), "destinationPath": str(rw / "m"),
                                           "recursive": False, "sandbox": _sb((rw, "write"))}) == {}
    assert os.readlink(rw / "m") == str(out / "secret")


# ------------------------------------------------------------------ item 8
async def test_unknown_method_cache_skips_long_names(client: Client) -> None:
    name = "x" * 100_000
    assert (await client.error(name))[0] == -32601
    assert name not in _connection._UNKNOWN


def test_relay_parse_error_text_not_built(monkeypatch) -> None:
    from execrelay.executor.remote import RelayRpcConnection
    calls: list = []

    def text(message: Any) -> str:
        calls.append(message)
        return "x"
    monkeypatch.setattr(_connection, "_json_error_text", text)
    conn = RelayRpcConnection.__new__(RelayRpcConnection)
    conn._send_parse_error(b"{not json")
    assert calls == []


# ----------------------------------------------------------------- item 15
def test_children_never_inherit_executor_credentials() -> None:
    base = {"PATH": "/bin", "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN": "t", "CODEX_API_KEY": "k",
            "EXECRELAY_RENDEZVOUS_SECRET": "s", "KEEP": "1"}
    policy = {"inherit": "all", "ignoreDefaultExcludes": True, "exclude": [], "set": {}, "includeOnly": []}
    assert build_env(policy, {}, base) == {"PATH": "/bin", "KEEP": "1"}


async def test_tty_spawn_runs_no_python_in_the_child(client: Client, monkeypatch) -> None:
    """``preexec_fn`` runs Python between fork and exec, which can deadlock on a lock another
    thread held at fork time; the tty child must still lead its session with the pty as its
    controlling terminal."""
    import subprocess

    real = subprocess.Popen

    def no_preexec(*args: Any, **kw: Any) -> Any:
        assert kw.get("preexec_fn") is None, "preexec_fn is not thread-safe"
        return real(*args, **kw)
    monkeypatch.setattr(subprocess, "Popen", no_preexec)
    script = 'read -r _ _ _ _ pgrp sid tty _ < /proc/self/stat; echo "$$ $sid $tty"; tty'
    # /proc/self/stat of `read`'s shell: pid, sid and tty_nr are fields 1, 6 and 7
    await client.result("process/start", start_params("t1", ["/bin/bash", "-c", script], tty=True))
    await client.wait_closed("t1")
    pid, sid, tty_nr, name = client.output("t1").decode().split()
    assert pid == sid and tty_nr != "0" and name.startswith("/dev/pts/"), client.output("t1")
