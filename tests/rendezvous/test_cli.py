"""The P5.1 command line: token, harness-url and the server itself (as a subprocess)."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import signal
import subprocess
import sys
import time

import aiohttp

SECRET = "cli-test-secret-0123456789"


def run_cli(*args: str, env_secret: str | None = SECRET, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("EXECRELAY_RENDEZVOUS_SECRET", None)
    if env_secret is not None:
        env["EXECRELAY_RENDEZVOUS_SECRET"] = env_secret
    return subprocess.run([sys.executable, "-m", "execrelay", "rendezvous", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def check_token(token: str, secret: bytes, role: str, executor_id: str, ttl: float) -> None:
    m = re.fullmatch(r"v1\.(\d+)\.([A-Za-z0-9_-]+=*)", token)
    assert m, token
    expiry = int(m.group(1))
    assert abs(expiry - (time.time() + ttl)) < 30
    digest = hmac.new(secret, f"v1|{role}|{executor_id}|{expiry}".encode(), hashlib.sha256).digest()
    assert m.group(2) == base64.urlsafe_b64encode(digest).decode()


def test_token_command_env_secret() -> None:
    out = run_cli("token", "--role", "executor", "--executor-id", "exec-7", "--ttl", "120")
    assert out.returncode == 0, out.stderr
    check_token(out.stdout.strip(), SECRET.encode(), "executor", "exec-7", 120)
    assert SECRET not in out.stdout + out.stderr


def test_token_command_secret_file(tmp_path) -> None:
    f = tmp_path / "s"
    f.write_text("file-secret-abcdefghijklmnop\n")
    out = run_cli("token", "--role", "harness", "--executor-id", "x", "--secret-file", str(f), env_secret=None)
    assert out.returncode == 0, out.stderr
    check_token(out.stdout.strip(), b"file-secret-abcdefghijklmnop", "harness", "x", 3600)
    out = run_cli("--secret-file", str(f), "token", "--role", "harness", "--executor-id", "x", env_secret=None)
    assert out.returncode == 0, out.stderr
    check_token(out.stdout.strip(), b"file-secret-abcdefghijklmnop", "harness", "x", 3600)


def test_token_command_refuses_without_or_with_short_secret(tmp_path) -> None:
    out = run_cli("token", "--role", "harness", "--executor-id", "x", env_secret=None)
    assert out.returncode == 2 and out.stdout == ""
    short = tmp_path / "short"
    short.write_text("short")
    out = run_cli("token", "--role", "harness", "--executor-id", "x", "--secret-file", str(short), env_secret=None)
    assert out.returncode == 2 and "16 bytes" in out.stderr
    out = run_cli("token", "--role", "admin", "--executor-id", "x")
    assert out.returncode == 2


def test_harness_url_command() -> None:
    out = run_cli("harness-url", "--executor-id", "exec-1", "--base", "ws://127.0.0.1:9999", "--ttl", "60")
    assert out.returncode == 0, out.stderr
    m = re.fullmatch(r"ws://127\.0\.0\.1:9999/harness\?role=harness&executor_id=exec-1&sig=(\S+)", out.stdout.strip())
    assert m, out.stdout
    check_token(m.group(1), SECRET.encode(), "harness", "exec-1", 60)


async def test_server_prints_listening_and_serves(tmp_path) -> None:
    env = dict(os.environ, EXECRELAY_RENDEZVOUS_SECRET=SECRET)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "execrelay", "rendezvous", "--listen", "127.0.0.1:0",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        m = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert m, line
        port = int(m.group(1))
        assert port != 0
        token = run_cli("token", "--role", "executor", "--executor-id", "e").stdout.strip()
        harness = run_cli("harness-url", "--executor-id", "e", "--base", f"ws://127.0.0.1:{port}").stdout.strip()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 200
            async with http.post(f"http://127.0.0.1:{port}/cloud/executor/e/register",
                                 headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
                url = (await resp.json())["url"]
            assert url.startswith(f"ws://127.0.0.1:{port}/executor/e?sig=v1.")
            from execrelay.wire import RESUME, encode_control
            ex = await http.ws_connect(url)
            h = await http.ws_connect(harness)
            frame = encode_control(RESUME, "s", next_seq=0)
            await h.send_bytes(frame)
            msg = await asyncio.wait_for(ex.receive(), 5)
            assert msg.data == frame
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
            assert 'execrelay_rendezvous_frames_routed_total{direction="to_executor"} 1' in text
            await ex.close()
            await h.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 10)
    assert rc == 0
    err = (await proc.stderr.read()).decode()
    assert SECRET not in err


async def test_server_bad_listen_and_short_secret() -> None:
    for args, env_secret in ((["--listen", "nonsense"], SECRET), (["--listen", "127.0.0.1:0"], "short")):
        out = await asyncio.to_thread(run_cli, *args, env_secret=env_secret)
        assert out.returncode == 2, (args, out.stderr)


def test_cli_refuses_half_or_bad_cluster_options() -> None:
    out = run_cli("--nats", "nats://127.0.0.1:4222")
    assert out.returncode == 2 and "--nats and --node-id go together" in out.stderr
    out = run_cli("--node-id", "n1")
    assert out.returncode == 2 and "--nats and --node-id go together" in out.stderr
    out = run_cli("--nats", "http://127.0.0.1:1", "--node-id", "n1")
    assert out.returncode == 2 and "want nats://HOST:PORT" in out.stderr
    out = run_cli("--nats", "nats://127.0.0.1:4222", "--node-id", "a.b")
    assert out.returncode == 2 and "--node-id" in out.stderr
