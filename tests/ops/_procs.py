"""Subprocess helpers of the ops tests: our executor and rendezvous as an operator runs them."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from interop.procs import ServerProcess

SECRET = "ops-test-secret-0123456789abcdef"


def execrelay(*args: str) -> list[str]:
    return [sys.executable, "-m", "execrelay", *args]


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    out.pop("CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN", None)
    out.update(extra)
    return out


def start(argv: list[str], tmp: Path, name: str, wait_url: bool = True, **extra_env: str) -> ServerProcess:
    return ServerProcess(argv, env=env(**extra_env), log_dir=tmp, name=name).start(wait_url=wait_url)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every stderr line that is a log event (JSON object); other lines (the upstream-compatible
    ``warning: ...`` prints) are skipped, but a line starting with ``{`` must parse."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


async def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def http_get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status, await r.text()


async def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _ = await http_get(f"{url}/readyz")
            if status == 200:
                return
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}/readyz never answered 200")
        await asyncio.sleep(0.1)


async def wait_log(proc: ServerProcess, msg: str, timeout: float = 20.0) -> dict[str, Any]:
    """The first JSON log event of ``proc`` whose ``msg`` is ``msg`` (polls its stderr log)."""
    deadline = time.monotonic() + timeout
    while True:
        for event in json_lines(proc.stderr_text()):
            if event.get("msg") == msg:
                return event
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {msg!r} log event; stderr:\n{proc.stderr_text()[-3000:]}")
        await asyncio.sleep(0.05)


async def await_exit(proc: subprocess.Popen, timeout: float) -> int:
    """``proc``'s exit status, waiting without blocking the event loop (our own clients in
    this loop may be what the process waits for)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{proc.args} still running after {timeout} s")
        await asyncio.sleep(0.05)
    return proc.returncode


def start_relay_pair(tmp: Path, executor_id: str, *executor_args: str) -> tuple[ServerProcess, ServerProcess, str]:
    """A real ``execrelay rendezvous`` (secret from a file) and an ``execrelay exec-server
    --remote`` registered with it as ``executor_id`` (JSON logs at info, plus
    ``executor_args``).  Returns ``(rendezvous, executor, harness URL)``; the caller stops
    both."""
    from execrelay.rendezvous.server import harness_url
    from execrelay.rendezvous.tokens import mint

    secret_file = tmp / "secret"
    secret_file.write_text(SECRET)
    rdv = start(execrelay("rendezvous", "--listen", "127.0.0.1:0", "--secret-file", str(secret_file)), tmp, "rdv")
    base = rdv.url.split()[-1]
    try:
        executor = start(execrelay("exec-server", "--remote", base, "--environment-id", executor_id,
                                   "--log-format", "json", "--log-level", "info", *executor_args),
                         tmp, "exec", wait_url=False,
                         CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=mint(SECRET.encode(), "executor", executor_id, 600))
    except BaseException:
        rdv.stop()
        raise
    url = harness_url(base.replace("http://", "ws://"), executor_id,
                      mint(SECRET.encode(), "harness", executor_id, 600))
    return rdv, executor, url
