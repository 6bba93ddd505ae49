"""Subprocess helpers: start servers in their own process group, read the bound URL, kill the group.

Every server the tests start (ours or the real codex binary) prints its bound ``ws://IP:PORT``
as the first stdout line; tests need that line within a bound time and must never leak the
process or its children, hence a new session per server and ``killpg`` on teardown.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import pytest

from execrelay._flags import env_flag
from execrelay.bench.procgroup import kill_group

from .codex import ensure_codex

DEFAULT_START_TIMEOUT_S = 20.0


class ServerProcess:
    """A server subprocess that announces its URL on the first stdout line."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None, log_dir: Path | None = None,
                 name: str = "server", stdin_pipe: bool = False) -> None:
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.name = name
        self.log_dir = log_dir
        self.stdin_pipe = stdin_pipe
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.stdout_lines: list[str] = []
        self._first_line = threading.Event()
        self._stderr_path: Path | None = None

    def start(self, timeout: float = DEFAULT_START_TIMEOUT_S, wait_url: bool = True) -> "ServerProcess":
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._stderr_path = self.log_dir / f"{self.name}.stderr.log"
            stderr = open(self._stderr_path, "wb")
        else:
            stderr = subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE, stderr=stderr,
                stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        threading.Thread(target=self._drain, daemon=True, name=f"{self.name}-stdout").start()
        if not wait_url:
            return self
        if not self._first_line.wait(timeout):
            self.stop()
            raise RuntimeError(f"{self.name}: no URL on stdout within {timeout:.0f}s "
                               f"({' '.join(self.argv)}){self._stderr_tail()}")
        if not self.stdout_lines:
            rc = self.proc.wait(timeout=5)
            raise RuntimeError(f"{self.name}: exited (rc {rc}) before printing its URL "
                               f"({' '.join(self.argv)}){self._stderr_tail()}")
        self.url = self.stdout_lines[0].strip()
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.stdout_lines.append(raw.decode("utf-8", "replace"))
            self._first_line.set()
        self._first_line.set()

    def _stderr_tail(self) -> str:
        if self._stderr_path is None or not self._stderr_path.exists():
            return ""
        text = self._stderr_path.read_text("utf-8", "replace").strip().splitlines()[-15:]
        return "\nstderr:\n" + "\n".join(text) if text else ""

    def stderr_text(self) -> str:
        if self._stderr_path is None or not self._stderr_path.exists():
            return ""
        return self._stderr_path.read_text("utf-8", "replace")

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)

    def __enter__(self) -> "ServerProcess":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ours_exec_server_argv(listen: str = "ws://127.0.0.1:0", compat: str | None = None) -> list[str]:
    """``execrelay exec-server`` (default ``--compat auto`` unless ``compat`` names a dialect)."""
    extra = [] if compat is None else ["--compat", compat]
    return [sys.executable, "-m", "execrelay", "exec-server", *extra, "--listen", listen]


def real_exec_server_argv(listen: str = "ws://127.0.0.1:0", codex: Path | None = None) -> list[str]:
    return [str(codex or ensure_codex()), "exec-server", "--listen", listen]


def isolated_env(codex_home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a server/harness: our PATH and HOME, an isolated CODEX_HOME, no proxies.

    Proxies are stripped because every test talks to 127.0.0.1 only; RUST_LOG is kept low so
    stderr logs stay small.
    """
    codex_home.mkdir(parents=True, exist_ok=True)
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "SHELL", "VIRTUAL_ENV", "PYTHONPATH",
            "EXECRELAY_PURE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["CODEX_HOME"] = str(codex_home)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.setdefault("RUST_LOG", "warn")
    if extra:
        env.update(extra)
    return env


def selected_impls(env_var: str) -> list[str]:
    """The halves a differential conformance suite runs: ``env_var`` (``real``, ``ours`` or
    ``real,ours``), by default both, but ``ours`` alone under EXECRELAY_PURE=1: the real
    binary's half does not depend on our build, so the pure pass would only repeat it."""
    default = "ours" if env_flag("EXECRELAY_PURE") else "real,ours"
    return [i.strip() for i in os.environ.get(env_var, default).split(",") if i.strip()]


def impl_fixture(env_var: str) -> Callable[..., str]:
    """The session fixture ``impl`` of a conformance suite, one param per :func:`selected_impls`
    half (assign it to ``impl`` in the suite's conftest)."""
    @pytest.fixture(scope="session", params=selected_impls(env_var))
    def impl(request: pytest.FixtureRequest) -> str:
        return request.param

    return impl


@contextmanager
def shared_server(argv: Sequence[str], *, home: Path, cwd: Path, log_dir: Path,
                  name: str) -> Iterator[ServerProcess]:
    """A conformance suite's session server: started with an isolated CODEX_HOME ``home`` in
    ``cwd``, its URL read, always stopped (group killed) when the suite is done."""
    srv = ServerProcess(argv, env=isolated_env(home), cwd=str(cwd), log_dir=log_dir, name=name)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def wait_port_closed(proc: subprocess.Popen, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rc = proc.poll()
        if rc is not None:
            return rc
        time.sleep(0.05)
    return None


REMOTE_TOKEN_ENV = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"


def real_remote_executor_argv(base_url: str, executor_id: str, codex: Path | None = None,
                              name: str | None = None) -> list[str]:
    """``codex exec-server --remote BASE --executor-id ID``: registers at
    ``POST {BASE}/cloud/executor/{ID}/register`` with ``Authorization: Bearer $TOKEN`` and then
    connects to the returned websocket URL. It prints nothing on stdout (start it with
    ``ServerProcess(..., ).start(wait_url=False)`` and the token in ``REMOTE_TOKEN_ENV``)."""
    argv = [str(codex or ensure_codex()), "exec-server", "--remote", base_url, "--executor-id", executor_id]
    if name is not None:
        argv += ["--name", name]
    return argv


def relay_harness_url(host: str, port: int, executor_id: str, sig: str, path: str = "/harness") -> str:
    """The CODEX_EXEC_SERVER_URL that puts codex 0.131.0 in relay-harness mode (``role=harness``)."""
    return f"ws://{host}:{port}{path}?role=harness&executor_id={executor_id}&sig={sig}"


RENDEZVOUS_SECRET_ENV = "EXECRELAY_RENDEZVOUS_SECRET"
RENDEZVOUS_ANNOUNCE = "listening on "


def ours_rendezvous_argv(listen: str = "127.0.0.1:0") -> list[str]:
    """``execrelay rendezvous``: its first stdout line is ``listening on http://IP:PORT`` (see
    ``rendezvous_base``); the token secret comes from ``RENDEZVOUS_SECRET_ENV``."""
    return [sys.executable, "-m", "execrelay", "rendezvous", "--listen", listen]


def rendezvous_base(first_line: str) -> str:
    """The ``http://IP:PORT`` registry base in the rendezvous's ``listening on ...`` announcement
    (the same address serves the websockets under ``ws://``)."""
    line = first_line.strip()
    if not line.startswith(RENDEZVOUS_ANNOUNCE):
        raise ValueError(f"not a rendezvous announcement: {line!r}")
    return line[len(RENDEZVOUS_ANNOUNCE):]


def ours_remote_executor_argv(base_url: str, executor_id: str) -> list[str]:
    """``execrelay exec-server --remote BASE --executor-id ID`` (default flags otherwise); the
    bearer token comes from ``REMOTE_TOKEN_ENV``, like codex 0.131.0's. Prints nothing on stdout."""
    return [sys.executable, "-m", "execrelay", "exec-server", "--remote", base_url, "--executor-id", executor_id]
