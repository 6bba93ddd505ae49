"""``execrelay exec-server`` as a subprocess: bound URL line, /readyz, --listen errors, stdio."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(60)
CMD = [sys.executable, "-m", "execrelay", "exec-server"]


def _start(*args: str, env_extra: dict | None = None, **kw) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.Popen([*CMD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, **kw)


def _stop(p: subprocess.Popen) -> int:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
    try:
        return p.wait(timeout=10)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("pure", ["0", "1"])
def test_bound_url_line_and_readyz(pure: str) -> None:
    p = _start(env_extra={"EXECRELAY_PURE": pure})
    try:
        line = p.stdout.readline().decode()
        assert line.startswith("ws://127.0.0.1:") and line.endswith("\n")
        port = int(line.strip().rsplit(":", 1)[1])
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            assert data.split()[1] == b"200"
    finally:
        assert _stop(p) == 0


@pytest.mark.parametrize("url, text", [
    ("ws://localhost:1", "invalid websocket --listen URL `ws://localhost:1`; expected `ws://IP:PORT`"),
    ("ws://127.0.0.1", "invalid websocket --listen URL `ws://127.0.0.1`; expected `ws://IP:PORT`"),
    ("http://127.0.0.1:0", "unsupported --listen URL `http://127.0.0.1:0`; expected `ws://IP:PORT` or `stdio`"),
])
def test_bad_listen_urls(url: str, text: str) -> None:
    r = subprocess.run([*CMD, "--listen", url], capture_output=True, timeout=30)
    assert r.returncode != 0 and r.stdout == b""
    assert text in r.stderr.decode()


def test_listen_conflicts_with_remote() -> None:
    r = subprocess.run([*CMD, "--listen", "stdio", "--remote", "http://x"], capture_output=True, timeout=30)
    assert r.returncode == 2
    assert "the argument '--listen <URL>' cannot be used with '--remote <URL>'" in r.stderr.decode()
    r = subprocess.run([*CMD, "--remote", "http://127.0.0.1:1"], capture_output=True, timeout=30)
    assert r.returncode == 2


def test_config_flag_accepted_with_warning() -> None:
    p = _start("-c", "foo=1", "--listen", "ws://127.0.0.1:0")
    try:
        assert p.stdout.readline().startswith(b"ws://127.0.0.1:")
    finally:
        _stop(p)
    assert b"ignoring -c foo=1" in p.stderr.read()


def test_address_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([*CMD, "--listen", f"ws://127.0.0.1:{port}"], capture_output=True, timeout=30)
    assert r.returncode == 1 and r.stdout == b""
    assert b"Error: Address in use (os error 98)" in r.stderr


@pytest.mark.parametrize("pure", ["0", "1"])
def test_stdio(pure: str) -> None:
    p = _start("--listen", "stdio", env_extra={"EXECRELAY_PURE": pure}, stdin=subprocess.PIPE)
    lines = [
        "", "   ",
        '{"id":1,"method":"initialize","params":{"clientName":"t"}}\r',
        '{"method":"initialized"}',
        "not json",
        '{"id":2,"method":"fs/getMetadata","params":{"path":"/tmp"}}',
        '{"id":3,"method":"nope"}',
    ]
    out, err = p.communicate(("\n".join(lines) + "\n").encode(), timeout=30)
    assert p.returncode == 0, err
    msgs = [json.loads(line) for line in out.decode().splitlines()]
    assert [m["id"] for m in msgs] == [1, -1, 2, 3]
    assert msgs[1]["error"] == {"code": -32600, "message": "failed to parse JSON-RPC message from exec-server stdio: "
                                                          "expected ident at line 1 column 2"}  # as 0.131.0/0.171.0
    assert msgs[2]["result"]["isDirectory"] is True
    assert out.endswith(b"\n")


def test_stdio_eof_exits_promptly() -> None:
    p = _start("--listen", "stdio", stdin=subprocess.PIPE)
    t0 = time.monotonic()
    p.stdin.close()
    assert p.wait(timeout=20) == 0
    assert time.monotonic() - t0 < 15


def test_stdio_from_regular_file(tmp_path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id":1,"method":"initialize","params":{"clientName":"t"}}\n{"id":2,"method":"nope"}')
    with open(src, "rb") as f:
        r = subprocess.run([*CMD, "--listen", "stdio"], stdin=f, capture_output=True, timeout=30)
    assert r.returncode == 0
    assert [json.loads(line)["id"] for line in r.stdout.decode().splitlines()] == [1, 2]


@pytest.mark.parametrize("pure", ["0", "1"])
def test_sigterm_kills_started_processes(pure: str) -> None:
    """No leaked process at exit: SIGTERM right after start-up still shuts down cleanly."""
    import asyncio

    import websockets

    p = _start(env_extra={"EXECRELAY_PURE": pure})
    url = p.stdout.readline().decode().strip()

    async def start_sleep() -> int:
        async with websockets.connect(url) as ws:
            await ws.send('{"id":1,"method":"initialize","params":{"clientName":"t"}}')
            await asyncio.wait_for(ws.recv(), 5)
            await ws.send('{"method":"initialized"}')
            await ws.send('{"id":2,"method":"process/start","params":{"processId":"s","argv":["/bin/sh","-c",'
                          '"echo $$; exec sleep 100"],"cwd":"/","env":{},"tty":false}}')
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if m.get("method") == "process/output":
                    import base64
                    return int(base64.b64decode(m["params"]["chunk"]))

    child = asyncio.run(start_sleep())
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    for _ in range(100):
        try:
            with open(f"/proc/{child}/stat") as f:
                if f.read().rsplit(") ", 1)[1][0] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("child survived the server's SIGTERM")
