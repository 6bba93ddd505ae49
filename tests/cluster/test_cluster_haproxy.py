"""Design note case 8 (docs/rendezvous.md §Several nodes) with the real HAProxy and the
shipped config, deploy/haproxy/haproxy.cfg.

Through the proxy an executor and its harness land on one node (the hash on the executor id:
the harness URL's ``executor_id`` parameter, the executor URL's path); their frames never touch
NATS.  Then that node is put in maintenance through the runtime API: the executor's socket
stays where it is, a NEW harness is hashed onto another node, and its streams reach the old
socket through NATS (the "split brain" after a rehash), while the first harness carries on.

Skips, saying why, when ``haproxy`` is not installed (``.ci/run`` installs Debian's).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from endpoints import EchoExecutor, Harness
from execrelay.bench.cluster_procs import LoopbackAddress
from nodes import Cluster, Node, free_port

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(shutil.which("haproxy") is None,
                                 reason="haproxy is not installed (apt-get install haproxy; .ci/run does)")]

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy" / "haproxy.cfg"


class Proxy(LoopbackAddress):
    """``haproxy -db -f deploy/haproxy/haproxy.cfg`` in front of the cluster's three nodes,
    on a free loopback port; quacks like a :class:`nodes.Node` for the fake endpoints."""

    def __init__(self, cluster: Cluster, workdir: Path) -> None:
        self.port = free_port()
        self.admin = str(workdir / "haproxy-admin.sock")
        self.env = dict(os.environ, HAPROXY_BIND=f"127.0.0.1:{self.port}", HAPROXY_ADMIN_SOCKET=self.admin,
                        HAPROXY_MAXCONN="2000",
                        **{f"RDV_N{k}": f"127.0.0.1:{cluster.node(f'n{k}').port}" for k in (1, 2, 3)})
        self.logfile = workdir / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.node_id = "haproxy"

    def check_config(self) -> None:
        out = subprocess.run(["haproxy", "-c", "-f", str(CONFIG)], env=self.env, capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr

    async def start(self, timeout: float = 20.0) -> None:
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", str(CONFIG)], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:   # up when the runtime API reports the three servers UP (health checks on /readyz)
            states = self.server_states() if os.path.exists(self.admin) else {}
            if len(states) == 3 and all(s == "UP" for s in states.values()):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"haproxy not ready: {states}\n{self.logfile.read_text()[-2000:]}")
            await asyncio.sleep(0.1)

    def command(self, line: str) -> str:
        """One runtime-API command on the admin socket; its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.admin)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[str, str]:
        """``{server name: status}`` of the rendezvous backend (``show stat``, CSV)."""
        lines = self.command("show stat").splitlines()
        if not lines:
            return {}
        head = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(head, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r["status"] for r in rows
                if r.get("pxname") == "rendezvous" and r["svname"] not in ("BACKEND", "FRONTEND")}

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def proxy_factory(tmp_path: Path) -> Iterator:
    proxies: list[Proxy] = []

    def make(cluster: Cluster) -> Proxy:
        proxy = Proxy(cluster, tmp_path)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.kill()


async def _where(cluster: Cluster, role: str) -> list[Node]:
    """The running nodes holding a ``role`` socket now."""
    key = f'connections{{role="{role}"}}'
    return [n for n in cluster.nodes if n.running and (await n.metrics()).get(key, 0) > 0]


def _cross(metrics: dict[str, float]) -> float:
    return metrics['cluster_frames_total{direction="in"}'] + metrics['cluster_frames_total{direction="out"}']


async def test_disabled_backend_split_brain_still_routes_through_nats(cluster: Cluster, proxy_factory) -> None:
    proxy = proxy_factory(cluster)
    proxy.check_config()
    await proxy.start()
    ex = EchoExecutor("exec-hap", cluster)
    h1, h2 = Harness("exec-hap", cluster), Harness("exec-hap", cluster)
    try:
        await ex.connect(proxy)   # type: ignore[arg-type]  # registration and websocket through the proxy
        await h1.connect(proxy)   # type: ignore[arg-type]
        homes = await _where(cluster, "executor")
        assert len(homes) == 1, [n.node_id for n in homes]
        home = homes[0]
        # affinity: the harness was hashed onto the executor's node, frames stay off NATS
        assert [n.node_id for n in await _where(cluster, "harness")] == [home.node_id]
        before = _cross(await home.metrics())
        s1 = h1.open("s-affine")
        await s1.round_trips(range(100))
        assert _cross(await home.metrics()) == before

        answer = proxy.command(f"set server rendezvous/{home.node_id} state maint")
        assert answer.strip() == "", answer
        assert proxy.server_states()[home.node_id] == "MAINT"
        await h2.connect(proxy)   # type: ignore[arg-type]  # rehashed: another node
        others = [n for n in await _where(cluster, "harness") if n is not home]
        assert len(others) == 1, [n.node_id for n in others]
        other = others[0]
        s2 = h2.open("s-split")
        await asyncio.gather(s2.round_trips(range(300)), s1.round_trips(range(100, 200)))
        s2.check_exact(range(300))
        s1.check_exact(range(200))
        m_other = await other.metrics()
        assert m_other['cluster_frames_total{direction="out"}'] >= 300
        assert m_other['cluster_frames_total{direction="in"}'] >= 300
        # the old executor socket was never replaced: still one, still on the node in maintenance
        assert [n.node_id for n in await _where(cluster, "executor")] == [home.node_id]
        assert (await home.metrics())["takeovers_total"] == 0

        # Back in service, then dead: the proxy still takes it for UP (2 failed checks 2 s
        # apart mark it down), so the executor's immediate reconnect is hashed onto it, refused,
        # and redispatched along the ring (`option redispatch`); it lands on a survivor and the
        # split stream carries on through it.
        proxy.command(f"set server rendezvous/{home.node_id} state ready")
        home.kill()
        assert proxy.server_states()[home.node_id].startswith("UP")   # "UP 1/2": going down
        await ex.connect(proxy)   # type: ignore[arg-type]
        assert [n.node_id for n in await _where(cluster, "executor")] != [home.node_id]
        await s2.round_trips(range(300, 400))
        s2.check_exact(range(400))
    finally:
        h2.close()
        h1.close()
        ex.close()
