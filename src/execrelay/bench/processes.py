"""Child processes of the benchmarks: executors under test (and our rendezvous, in rdv).

Each child runs in its own process group and is always killed as a group by ``stop()``, so a
benchmark never leaves processes behind.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field

from ..rendezvous import tokens
from . import pinning, procfs
from .procgroup import kill_group
from .fakerdv import Rendezvous
from .load import ExecutorConn


@dataclass
class ExecutorSpec:
    """How to start one executor under test (``{remote}`` and ``{id}`` are substituted)."""

    label: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


class ExecutorProcess:
    """A child executor in its own process group; always killed (group) by :meth:`stop`."""

    def __init__(self, spec: ExecutorSpec, rdv: Rendezvous, executor_id: str, logdir: str) -> None:
        self.spec = spec
        self.rdv = rdv
        self.executor_id = executor_id
        self.logdir = logdir
        self.proc: subprocess.Popen | None = None
        self.conn: ExecutorConn | None = None

    def _spawn(self, remote_url: str, bearer_token: str) -> None:
        """Start the executor against ``remote_url`` in its own process group, pinned, its
        output in ``<logdir>/<executor id>.log`` (shared by every way of reaching it)."""
        argv = [a.replace("{remote}", remote_url).replace("{id}", self.executor_id) for a in self.spec.argv]
        env = dict(os.environ, CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=bearer_token)
        env.update(self.spec.env)
        log = open(os.path.join(self.logdir, f"{self.executor_id}.log"), "wb")
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True, cwd=self.logdir,
                                     preexec_fn=pinning.child_preexec())
        log.close()

    async def start(self, timeout: float = 30.0) -> ExecutorConn:
        fut = self.rdv.expect(self.executor_id)
        self._spawn(self.rdv.url, "bench-token")
        try:
            self.conn = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self.stop()
            try:
                with open(os.path.join(self.logdir, f"{self.executor_id}.log"), "rb") as fh:
                    tail = fh.read()[-400:].decode(errors="replace").strip().replace("\n", " | ")
            except OSError:
                tail = ""
            raise RuntimeError(f"{self.spec.label}: executor did not connect within {timeout:.0f}s; "
                               f"its log ends: {tail or '(empty)'}") from None
        return self.conn

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return procfs.cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return procfs.rss_kib(self.pid)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        kill_group(proc, grace=3.0)
        if self.conn is not None and self.conn.transport is not None:
            try:
                self.conn.transport.disconnect()
            except Exception:  # noqa: BLE001
                pass


class RendezvousProcess:
    """``execrelay rendezvous`` as a child (own secret, 64 MiB frames), for the rdv benchmark."""

    def __init__(self, logdir: str) -> None:
        self.secret = secrets.token_hex(16)
        self.logdir = logdir
        self.proc: subprocess.Popen | None = None
        self.url = ""

    async def start(self, timeout: float = 20.0) -> None:
        env = dict(os.environ, EXECRELAY_RENDEZVOUS_SECRET=self.secret)
        self.proc = subprocess.Popen([sys.executable, "-m", "execrelay", "rendezvous", "--listen", "127.0.0.1:0",
                                      "--max-frame-bytes", str(64 * 1024 * 1024)],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=pinning.child_preexec())
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(loop.run_in_executor(None, self.proc.stdout.readline), timeout)
        text = line.decode().strip()
        if not text.startswith("listening on "):
            raise RuntimeError(f"rendezvous did not start: {text!r}")
        self.url = text.split("listening on ", 1)[1]

    def token(self, role: str, executor_id: str) -> str:
        return tokens.mint(self.secret.encode(), role, executor_id, 3600.0)

    def harness_url(self, executor_id: str) -> str:
        ws = self.url.replace("http://", "ws://")
        return f"{ws}/harness?role=harness&executor_id={executor_id}&sig={self.token('harness', executor_id)}"

    def cpu(self) -> float:
        return procfs.cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        kill_group(self.proc, grace=3.0)
        self.proc = None
