"""Processes of a local rendezvous cluster: one nats-server and N ``execrelay rendezvous --nats``
nodes on loopback, started and killed by PID (docs/rendezvous.md §Several nodes).

Importable by every cluster test (``tests/cluster/conftest.py`` puts this folder on ``sys.path``)::

    from nodes import Cluster, NatsServer, Node, SECRET, nats_server_binary

Fixtures (``tests/cluster/conftest.py``):

* ``nats_server`` -> :class:`NatsServer`: ``nats-server -a 127.0.0.1 -p <free port> -js -sd <tmp>``
  (``.url``, ``.kill()`` = SIGKILL, ``.start()`` again on the same port and store, ``.pid``);
* ``make_cluster`` -> ``async make_cluster(n=3, **node_options) -> Cluster``: the server plus
  ``n`` nodes ``n1..nN`` sharing :data:`SECRET` (env ``EXECRELAY_RENDEZVOUS_SECRET``), so
  every node accepts the same tokens; ``node_options`` become CLI options
  (``harness_grace=2.0`` -> ``--harness-grace 2.0``);
* ``cluster`` -> a 3-node :class:`Cluster` with default options, for one test;
* ``shared_cluster`` (module scope) -> a 3-node :class:`Cluster` shared by a module's tests
  that kill nothing (use distinct executor ids); ``conftest.start_nodes`` builds either.

:class:`Node`: ``.node_id``, ``.url`` (``http://127.0.0.1:PORT``, the registry base),
``.ws_url``, ``.pid``, ``.kill()`` (SIGKILL), ``.stop()``/``.cont()`` (SIGSTOP/SIGCONT),
``await .start()`` (again, same port), ``await .metrics()`` -> ``{"name{labels}": value}``,
``.log()`` (its stderr and stdout so far).

:class:`Cluster`: ``.nats``, ``.nodes`` (list), ``.node("n2")``, ``.harness_url(eid, node)``,
``.harness_token(eid)``, ``.executor_token(eid)``, ``await .wait_converged()`` (every running node sees every other
running node's heartbeat), ``await .close()``.

The fake endpoints that speak real reliable-mode frames are in :mod:`endpoints`
(``EchoExecutor``, ``Harness``, ``Stream``, ``pair``).  Node logs (``Node.log()``) are in the
test's tmp dir; nodes run with ``--log-level INFO``.
Every wait here is bounded; nothing listens beyond 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from execrelay.bench.cluster_procs import LoopbackAddress
from execrelay.bench.cluster_procs import nats_server_binary as nats_server_binary  # re-exported (conftest)
from execrelay.rendezvous.server import harness_url
from execrelay.rendezvous.tokens import SECRET_ENV, mint

SECRET = "cluster-test-secret-0123456789abcdef"
METRIC_PREFIX = "execrelay_rendezvous_"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _kill(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGKILL) -> None:
    if proc is not None and proc.poll() is None:
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass


class NatsServer:
    """One nats-server with JetStream, on a fixed free port and store dir (so a restart keeps
    the ``rdv_owner`` bucket)."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.store = workdir / "nats-store"
        self.logfile = workdir / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 15.0) -> None:
        self.store.mkdir(parents=True, exist_ok=True)
        log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"nats-server did not start: {self.logfile.read_text()[-2000:]}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL by PID, and reap it."""
        _kill(self.proc)
        if self.proc is not None:
            self.proc.wait(5)


class Node(LoopbackAddress):
    """One ``execrelay rendezvous --nats ... --node-id NAME`` process on a fixed port (``url``,
    ``ws_url`` from :class:`LoopbackAddress`)."""

    def __init__(self, node_id: str, nats_url: str, workdir: Path,
                 options: dict[str, Any]) -> None:
        self.node_id = node_id
        self.nats_url = nats_url
        self.port = free_port()
        self.options = options
        self.logfile = workdir / f"{node_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "execrelay", "rendezvous", "--listen",
                f"127.0.0.1:{self.port}", "--nats", self.nats_url, "--node-id", self.node_id,
                "--log-level", "INFO"]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif value is not None and value is not False:
                argv += [flag, str(value)]
        return argv

    async def start(self, timeout: float = 30.0) -> None:
        """Start the process (again, on the same port) and wait for ``listening on``."""
        self.spawn()
        await self.wait_listening(timeout)

    def spawn(self) -> None:
        env = dict(os.environ)
        env[SECRET_ENV] = SECRET
        log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        log.close()
        self.stopped = False

    async def wait_listening(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"node {self.node_id} did not start:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL by PID (a crash: nothing is cleaned up), and reap it."""
        if self.stopped:
            self.cont()
        _kill(self.proc)
        if self.proc is not None:
            self.proc.wait(5)

    def stop(self) -> None:
        """SIGSTOP: the process hangs with its sockets open (a hung node)."""
        _kill(self.proc, signal.SIGSTOP)
        self.stopped = True

    def cont(self) -> None:
        _kill(self.proc, signal.SIGCONT)
        self.stopped = False

    async def terminate(self, timeout: float = 10.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it outlives ``timeout``."""
        if self.stopped:
            self.cont()
        _kill(self.proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.kill()

    async def metrics(self, timeout: float = 5.0) -> dict[str, float]:
        """This node's ``/metrics`` as ``{"name{labels}": value}`` (prefix stripped)."""
        out: dict[str, float] = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.get(f"{self.url}/metrics") as resp:
                text = await resp.text()
        for line in text.splitlines():
            if line.startswith(METRIC_PREFIX):
                key, _, value = line[len(METRIC_PREFIX):].rpartition(" ")
                out[key] = float(value)
        return out


class Cluster:
    """A nats-server and its rendezvous nodes (see the module docstring)."""

    def __init__(self, nats: NatsServer, nodes: list[Node]) -> None:
        self.nats = nats
        self.nodes = nodes

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def harness_url(self, executor_id: str, node: Node, ttl: float = 3600.0) -> str:
        """A harness URL for ``node`` with a freshly minted token."""
        return harness_url(node.ws_url, executor_id, self.harness_token(executor_id, ttl))

    def harness_token(self, executor_id: str, ttl: float = 3600.0) -> str:
        return mint(SECRET.encode(), "harness", executor_id, ttl)

    def executor_token(self, executor_id: str, ttl: float = 3600.0) -> str:
        """The executor's bearer token (register at ``node.url`` with it)."""
        return mint(SECRET.encode(), "executor", executor_id, ttl)

    async def wait_converged(self, timeout: float = 10.0) -> None:
        """Every running, unstopped node sees all the others alive (``cluster_nodes_alive``)."""
        deadline = time.monotonic() + timeout
        while True:
            live = [n for n in self.nodes if n.running and not n.stopped]
            try:
                seen = [(await n.metrics()).get("cluster_nodes_alive", -1) for n in live]
            except (aiohttp.ClientError, asyncio.TimeoutError):
                seen = []
            if seen and all(v == len(live) for v in seen):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"cluster did not converge: nodes_alive={seen}, want {len(live)}")
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        for node in self.nodes:
            node.kill()
        self.nats.kill()
