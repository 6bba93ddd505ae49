"""``execrelay exec-server`` with 0.171.0's flags: ``--environment-id``, ``--ws-auth`` at the
websocket upgrade, ``--exit-on-stdin-close``, and unimplemented flags refused by name."""
from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest

from execrelay.cli.exec_server import UNSUPPORTED_171
from execrelay.executor import ExecServer
from execrelay.executor.remote import TOKEN_ENV
from execrelay.executor.serve import serve_ws
from execrelay.executor.wsauth import WsAuthConfig

pytestmark = pytest.mark.timeout(60)
CMD = [sys.executable, "-m", "execrelay", "exec-server"]


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("flag", sorted(UNSUPPORTED_171))
def test_unsupported_171_flags_are_refused_by_name(flag: str) -> None:
    args = [flag, "x"] if UNSUPPORTED_171[flag] else [flag]
    r = _run(*args)
    assert r.returncode == 2 and r.stderr == f"error: not supported by execrelay: {flag}\n", r


def test_concurrent_requests_only_one() -> None:
    r = _run("--concurrent-requests", "4")
    assert r.returncode == 2 and "not supported by execrelay: --concurrent-requests 4" in r.stderr


@pytest.mark.parametrize("args,code,text", [
    (["--remote", "http://127.0.0.1:1"], 2,
     "error: the following required arguments were not provided:\n  --environment-id <ID>\n"),
    (["--compat", "0.131", "--remote", "http://127.0.0.1:1"], 2,
     "error: the following required arguments were not provided:\n  --executor-id <ID>\n"),
    (["--exit-on-stdin-close"], 2,
     "error: the following required arguments were not provided:\n  --environment-id <ID>\n  --remote <URL>\n"),
    (["--ws-token-sha256", "ab"], 1,
     "Error: websocket auth flags require `--ws-auth capability-token` or `--ws-auth signed-bearer-token`\n"),
    (["--ws-auth", "capability-token"], 1, "Error: `--ws-token-file` or `--ws-token-sha256` is required when "
                                           "`--ws-auth capability-token` is set\n"),
    (["--listen", "stdio", "--ws-auth", "capability-token", "--ws-token-sha256", "0" * 64], 1,
     "Error: WebSocket auth requires a WebSocket listener, not stdio\n"),
])
def test_option_errors(args: list[str], code: int, text: str) -> None:
    r = _run(*args)
    assert (r.returncode, r.stderr) == (code, text), r


def _http_upgrade(port: int, authorization: str | None) -> tuple[int, bytes, bytes]:
    """A raw websocket upgrade; returns (status, headers block, body)."""
    head = ("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    if authorization is not None:
        head += f"Authorization: {authorization}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((head + "\r\n").encode())
        data = b""
        s.settimeout(5)
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        headers, _, body = data.partition(b"\r\n\r\n")
        status = int(headers.split()[1])
        if status != 101:
            length = 0
            for line in headers.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(body) < length:
                chunk = s.recv(4096)
                if not chunk:
                    break
                body += chunk
        return status, headers, body


@pytest.mark.parametrize("impl", ["picows", "websockets"])
async def test_capability_token_checked_at_upgrade(impl: str) -> None:
    if impl == "picows":
        pytest.importorskip("picows")
    token = "secret-token-1"
    policy = WsAuthConfig(mode="capability-token", token_sha256=hashlib.sha256(token.encode()).hexdigest()).policy()
    server = ExecServer()
    ws = await serve_ws(server, "127.0.0.1", 0, impl=impl, auth=policy)
    try:
        port = int(ws.url.rsplit(":", 1)[1])
        loop = asyncio.get_running_loop()
        for header, reason in [(None, b"missing websocket bearer token"),
                               ("Basic abc", b"invalid authorization header"),
                               ("Bearer wrong", b"invalid websocket bearer token")]:
            status, headers, body = await loop.run_in_executor(None, _http_upgrade, port, header)
            assert (status, body) == (401, reason), (header, headers, body)
            assert b"text/plain" in headers.lower()
        status, _, _ = await loop.run_in_executor(None, _http_upgrade, port, f"bearer  {token} ")
        assert status == 101
    finally:
        ws.close()
        await server.aclose()


def test_environment_id_and_exit_on_stdin_close(tmp_path: Any) -> None:
    """``--remote`` with ``--environment-id`` (or its 0.131 name) runs; with
    ``--exit-on-stdin-close`` it exits once its stdin closes, without it it keeps running."""
    with socket.socket() as s:  # a closed port: registration keeps retrying
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, **{TOKEN_ENV: "t"})
    procs = []
    try:
        for id_flag, extra in [("--environment-id", ["--exit-on-stdin-close"]), ("--executor-id", [])]:
            procs.append(subprocess.Popen([*CMD, "--remote", f"http://127.0.0.1:{port}", id_flag, "e1", *extra],
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          env=env, start_new_session=True))
        time.sleep(1.5)
        assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs if p.poll() is not None]
        for p in procs:
            p.stdin.close()
        assert procs[0].wait(timeout=10) == 0
        time.sleep(1.0)
        assert procs[1].poll() is None
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)


def _registry() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(15)
    return srv, srv.getsockname()[1]


def _authorization(srv: socket.socket) -> str:
    """The Authorization header of the first request the fake registry receives."""
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"authorization:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_registration_bearer_off_the_environment(tmp_path: Any, source: str) -> None:
    """Issue 13 item 15: the bearer comes from stdin (0.171's flag) or a file, not the environment."""
    srv, port = _registry()
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    args = [*CMD, "--remote", f"http://127.0.0.1:{port}", "--environment-id", "e1"]
    if source == "stdin":
        args.append("--registration-bearer-stdin")
    else:
        (tmp_path / "bearer").write_text("from-file\n")
        args += ["--registration-bearer-file", str(tmp_path / "bearer")]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        if source == "stdin":
            proc.stdin.write(b"from-stdin\n")
            proc.stdin.flush()
        assert _authorization(srv) == f"Bearer from-{source}"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        srv.close()


@pytest.mark.parametrize("data, text", [
    (b"tok", "expected a newline-terminated registration bearer of at most 16 KiB"),
    (b"x" * 16385 + b"\n", "expected a newline-terminated registration bearer of at most 16 KiB"),
    (b"\n", "invalid registration bearer"),
    (b"a b\n", "invalid registration bearer"),
])
def test_registration_bearer_stdin_errors(data: bytes, text: str) -> None:
    r = subprocess.run([*CMD, "--remote", "http://127.0.0.1:9", "--environment-id", "e1",
                        "--registration-bearer-stdin"], input=data, capture_output=True, timeout=30)
    assert r.returncode == 1 and r.stderr.decode() == f"Error: {text}\n", r


def test_registration_bearer_flags_need_remote() -> None:
    r = _run("--registration-bearer-stdin")
    assert r.returncode == 2 and "--remote <URL>" in r.stderr, r
    r = _run("--remote", "http://127.0.0.1:9", "--environment-id", "e", "--registration-bearer-stdin",
             "--registration-bearer-file", "/x")
    assert r.returncode == 2 and "cannot be used with" in r.stderr, r
