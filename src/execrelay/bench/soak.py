"""The hostile-client soak (issue 13): well-behaved sessions, quiet and then under attack.

One ``execrelay rendezvous`` and one ``execrelay exec-server --remote`` run as child processes
on loopback.  ``sessions`` well-behaved harness clients (one relay socket each, one session
each) do small paced requests -- ``fs/getMetadata`` and ``process/start`` of ``echo`` read to
its end -- first alone (the quiet phase), then while the hostile clients of
:mod:`execrelay.bench.hostile` run in another child process.  The result says, per phase,
latency percentiles, lost (unanswered within ``request_timeout``), wrong and duplicated
answers, the peak RSS of the executor and of the rendezvous, what each hostile client saw, and
whether the cookie one tenant received reached another tenant's request.

``benchmarks/soak_hostile.py`` prints the report (the +1 ms p99 target is judged there);
``tests/e2e/test_soak_hostile.py`` asserts the functional outcomes only.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, TypeVar

import aiohttp
import orjson
from aiohttp import web

from ..harness import ExecSession, HarnessClient
from ..harness.paths import wire_path
from ..rendezvous import tokens
from ..rendezvous.server import harness_url
from . import procfs
from .hostile import CLIENTS, HostileConfig, config_json
from .loopback import serve_loopback

_T = TypeVar("_T")

EXECUTOR_ID = "soak-exec"
COOKIE_NAME = "soak_secret"
#: The flooder's child runs at this niceness: its own CPU (one core when unthrottled) stands
#: for a remote attacker's and should not be taken from the system under test.  Only it: a
#: niced child's own timings (slowloris lifetimes) would be late on a loaded machine.
FLOODER_NICE = 19


@dataclass
class SoakConfig:
    """How long and how hard; ``None`` rendezvous options keep ``execrelay rendezvous``'s
    defaults (docs/rendezvous.md §Security model)."""

    seconds: float = 20.0            # measured seconds per phase
    warmup: float = 1.0              # unmeasured seconds before each phase
    sessions: int = 4                # well-behaved sessions
    interval: float = 0.02           # pause between one session's requests
    request_timeout: float = 5.0     # a well-behaved request not answered by then is lost
    slowloris: int = 200             # slowloris connections held open at once
    handshake_timeout: float | None = None
    max_unauthenticated: int | None = None
    stream_rate: float | None = None
    stream_burst: int | None = None
    #: hostile clients to run (names from ``bench.hostile.CLIENTS``; empty: all)
    hostile: tuple[str, ...] = ()

    def rendezvous_flags(self) -> list[str]:
        flags: list[str] = []
        for name in ("handshake_timeout", "max_unauthenticated", "stream_rate", "stream_burst"):
            value = getattr(self, name)
            if value is not None:
                flags += ["--" + name.replace("_", "-"), str(value)]
        return flags


# ------------------------------------------------------------------------ the system under test
class SoakSystem:
    """The rendezvous and the executor as child processes, each in its own process group."""

    def __init__(self, workdir: str, rendezvous_flags: list[str]) -> None:
        self.workdir = workdir
        self.flags = rendezvous_flags
        self.secret = secrets.token_hex(16)
        self.rendezvous: subprocess.Popen | None = None
        self.executor: subprocess.Popen | None = None
        self.base = ""

    async def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ, EXECRELAY_RENDEZVOUS_SECRET=self.secret)
        with open(os.path.join(self.workdir, "rendezvous.log"), "wb") as log:
            self.rendezvous = subprocess.Popen(
                [sys.executable, "-m", "execrelay", "rendezvous", "--listen", "127.0.0.1:0", *self.flags],
                env=env, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True)
        assert self.rendezvous.stdout is not None
        line = await asyncio.wait_for(
            asyncio.get_running_loop().run_in_executor(None, self.rendezvous.stdout.readline), timeout)
        text = line.decode().strip()
        if not text.startswith("listening on "):
            raise RuntimeError(f"rendezvous did not start: {text!r}")
        self.base = text[len("listening on "):]
        env = dict(os.environ, CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=self.token("executor"))
        with open(os.path.join(self.workdir, "executor.log"), "wb") as log:
            self.executor = subprocess.Popen(
                [sys.executable, "-m", "execrelay", "exec-server", "--remote", self.base,
                 "--executor-id", EXECUTOR_ID],
                env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=self.workdir)

    def token(self, role: str) -> str:
        return tokens.mint(self.secret.encode(), role, EXECUTOR_ID, 3600.0)

    @property
    def harness_url(self) -> str:
        return harness_url(self.base.replace("http://", "ws://"), EXECUTOR_ID, self.token("harness"))

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.base.split("://", 1)[1].rsplit(":", 1)
        return host, int(port)

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds (user + system) so far of the executor and the rendezvous."""
        return self._per_process(procfs.cpu_seconds)

    def rss_kib(self) -> dict[str, int]:
        """Resident memory now of the executor and the rendezvous."""
        return self._per_process(procfs.rss_kib)

    def _per_process(self, read: Callable[[int], _T]) -> dict[str, _T]:
        """``read(pid)`` of each of the two processes still running (one that just went away
        is left out)."""
        out = {}
        for name, proc in (("executor", self.executor), ("rendezvous", self.rendezvous)):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(OSError):
                    out[name] = read(proc.pid)
        return out

    async def metrics(self) -> dict[str, float]:
        """The rendezvous's ``/metrics`` counters that the hardening adds (refusals, drops)."""
        out: dict[str, float] = {}
        async with aiohttp.ClientSession() as http:
            async with http.get(self.base + "/metrics") as resp:
                text = await resp.text()
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            if line.split("{", 1)[0].split(" ", 1)[0].endswith(
                    ("streams_refused_total", "connections_dropped_total", "unauthenticated_connections",
                     "streams_opened_total")):
                name, value = line.rsplit(" ", 1)
                out[name.replace("execrelay_rendezvous_", "")] = float(value)
        return out

    def stop(self) -> None:
        for proc in (self.executor, self.rendezvous):
            if proc is not None:
                _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=3)


# ------------------------------------------------------------------------ the cookie server
class CookieServer:
    """``/set`` answers a ``Set-Cookie``; ``/echo`` answers the ``Cookie`` header it got."""

    def __init__(self) -> None:
        self.secret = secrets.token_hex(8)
        self.set_calls = 0
        self.echo_cookies: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        self._runner, port = await serve_loopback([web.get("/set", self._set), web.get("/echo", self._echo)])
        # A host name, not an IP: aiohttp's default cookie jar ignores cookies from IPs, which
        # would hide the leak this checks.
        self.url = f"http://localhost:{port}"

    async def _set(self, request: web.Request) -> web.Response:
        self.set_calls += 1
        resp = web.Response(text="set")
        resp.set_cookie(COOKIE_NAME, self.secret, path="/")
        return resp

    async def _echo(self, request: web.Request) -> web.Response:
        cookie = request.headers.get("Cookie", "")
        self.echo_cookies.append(cookie)
        return web.Response(text=cookie)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# ------------------------------------------------------------------------ well-behaved load
@dataclass
class PhaseStats:
    """What the well-behaved sessions saw in one phase."""

    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {"getMetadata": [], "echo": []})
    sent: int = 0
    lost: int = 0        # not answered within request_timeout
    wrong: int = 0       # answered, but not with what the request must return
    duplicates: int = 0  # answers that arrived more than once
    failed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        every = sorted(x for v in self.latencies_ms.values() for x in v)
        out: dict[str, Any] = {"sent": self.sent, "answered": len(every), "lost": self.lost,
                               "wrong": self.wrong, "duplicates": self.duplicates,
                               "failures": self.failed[:5], **_percentiles(every)}
        out["by_kind"] = {k: _percentiles(sorted(v)) for k, v in self.latencies_ms.items()}
        return out


def _percentiles(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"n": 0}

    def q(p: float) -> float:
        return xs[min(len(xs) - 1, int(p * len(xs)))]

    return {"n": len(xs), "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": xs[-1]}


class WellBehaved:
    """One tenant: its own relay socket and session; counts every answer by request id."""

    def __init__(self, url: str, index: int) -> None:
        self.client = HarnessClient(url, client_name=f"soak-good-{index}")
        self.index = index
        self.session: ExecSession | None = None
        self.answers: Counter[int] = Counter()

    async def open(self) -> None:
        await self.client.connect()
        self.session = await self.client.open_session(timeout=30.0)
        # Count answers where the relay stream delivers them, before the session matches them
        # to calls (a duplicate would otherwise be dropped silently there).
        endpoint = self.client._endpoint
        assert endpoint is not None
        stream = endpoint.streams[self.session.label]
        inner = stream.deliver

        def counting(payload: bytes) -> None:
            msg = orjson.loads(payload)
            if isinstance(msg, dict) and "id" in msg and "method" not in msg:
                self.answers[msg["id"]] += 1
            inner(payload)

        stream.deliver = counting

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.answers.values() if n > 1)

    @staticmethod
    async def _one(session: ExecSession, kind: str, word: str, workdir: str) -> bool:
        """One request (``echo``: start, output, exit); True when the answer is the right one."""
        if kind == "getMetadata":
            meta = await session.call("fs/getMetadata", {"path": wire_path(workdir, session.dialect),
                                                         "sandbox": None}, None)
            return isinstance(meta, dict) and meta.get("isDirectory") is True
        code, out, err = await session.run(["echo", word], cwd=workdir, process_id=word, timeout=3600.0)
        return code == 0 and out == word.encode() + b"\n" and err == b""

    async def run_phase(self, cfg: SoakConfig, workdir: str, until: float, stats: PhaseStats | None,
                        tag: str) -> None:
        """Paced requests until ``until`` (loop time); ``stats`` None: warm-up, not recorded."""
        session = self.session
        assert session is not None
        loop = asyncio.get_running_loop()
        i = 0
        while loop.time() < until:
            i += 1
            kind = "getMetadata" if i % 2 else "echo"
            word = f"{tag}-{self.index}-{i}"
            t0 = time.perf_counter()
            try:
                ok = await asyncio.wait_for(self._one(session, kind, word, workdir), cfg.request_timeout)
                dt = (time.perf_counter() - t0) * 1000.0
                if stats is not None:
                    stats.sent += 1
                    if ok:
                        stats.latencies_ms[kind].append(dt)
                    else:
                        stats.wrong += 1
                        stats.failed.append(f"{kind} {word}: wrong answer")
            except asyncio.TimeoutError:
                if stats is not None:
                    stats.sent += 1
                    stats.lost += 1
                    stats.failed.append(f"{kind} {word}: no answer within {cfg.request_timeout} s")
            except Exception as exc:  # noqa: BLE001 - counted as lost, reported
                if stats is not None:
                    stats.sent += 1
                    stats.lost += 1
                    stats.failed.append(f"{kind} {word}: {type(exc).__name__}: {exc}")
                if session.closed:
                    return
            await asyncio.sleep(cfg.interval)


class RssSampler:
    """Peak VmRSS of the executor and the rendezvous, sampled every ``period`` seconds."""

    def __init__(self, system: SoakSystem, period: float = 0.1) -> None:
        self.system = system
        self.period = period
        self.peaks: dict[str, int] = {}
        self._task: asyncio.Future | None = None

    def start(self) -> None:
        self.peaks = {}
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            for name, kib in self.system.rss_kib().items():
                self.peaks[name] = max(self.peaks.get(name, 0), kib)
            await asyncio.sleep(self.period)

    async def stop(self) -> dict[str, int]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for name, kib in self.system.rss_kib().items():
            self.peaks[name] = max(self.peaks.get(name, 0), kib)
        return dict(self.peaks)


# ------------------------------------------------------------------------ the soak
async def _phase(goods: list[WellBehaved], cfg: SoakConfig, workdir: str, tag: str,
                 sampler: RssSampler) -> tuple[PhaseStats, dict[str, int], dict[str, float]]:
    loop = asyncio.get_running_loop()
    warm_until = loop.time() + cfg.warmup
    await asyncio.gather(*(g.run_phase(cfg, workdir, warm_until, None, tag + "w") for g in goods))
    before = sum(g.duplicates() for g in goods)
    stats = PhaseStats()
    sampler.start()
    cpu0, t0 = sampler.system.cpu_s(), loop.time()
    until = t0 + cfg.seconds
    await asyncio.gather(*(g.run_phase(cfg, workdir, until, stats, tag) for g in goods))
    peaks = await sampler.stop()
    cpu1, wall = sampler.system.cpu_s(), loop.time() - t0
    cores = {name: (cpu1[name] - cpu0[name]) / wall for name in cpu1 if name in cpu0}
    stats.duplicates = sum(g.duplicates() for g in goods) - before
    return stats, peaks, cores


def _hostile_groups(wanted: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The hostile child processes: the stream flooder alone (it keeps its loop busy, which
    would delay the slowloris's own bookkeeping), every other client in a second one."""
    names = [n for n in CLIENTS if not wanted or n in wanted]
    groups = [tuple(n for n in names if n == "stream_flooder"),
              tuple(n for n in names if n != "stream_flooder")]
    return [g for g in groups if g]


async def _start_hostile(cfg: HostileConfig) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "execrelay.bench.hostile", config_json(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline), 60)
    if line.strip() != b"started":
        _kill_group(proc)
        err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
        raise RuntimeError(f"hostile clients did not start: {line!r}\n{err}")
    return proc


async def _hostile_result(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    try:
        out, err = await asyncio.wait_for(loop.run_in_executor(None, proc.communicate), timeout)
    except asyncio.TimeoutError:
        _kill_group(proc)
        return {"failed": f"hostile clients did not finish within {timeout:.0f} s"}
    finally:
        _kill_group(proc)
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("result "):
            return orjson.loads(line[len("result "):])
    return {"failed": "no result line; stderr: " + err.decode(errors="replace")[-2000:]}


async def _cookie_victim(good: WellBehaved, cookies: CookieServer, timeout: float) -> dict[str, Any]:
    """Another tenant's request to the cookie server: which Cookie header did it carry?"""
    assert good.session is not None
    try:
        res = await asyncio.wait_for(good.session.http_request(
            "GET", cookies.url + "/echo", "soak-cookie-victim", timeout_ms=10_000), timeout)
        carried = base64.b64decode(res.get("bodyBase64") or "").decode(errors="replace")
        error = None
    except Exception as exc:  # noqa: BLE001 - reported
        carried, error = "", f"{type(exc).__name__}: {exc}"
    return {"setter_requests_seen": cookies.set_calls, "victim_cookie_header": carried,
            "leaked": cookies.secret in carried, "error": error}


async def run_soak(cfg: SoakConfig) -> dict[str, Any]:
    """Run the quiet phase, then the hostile one; return everything the report needs."""
    workdir = tempfile.mkdtemp(prefix="execrelay-soak-")
    fifo = os.path.join(workdir, "soak.fifo")
    os.mkfifo(fifo)
    system = SoakSystem(workdir, cfg.rendezvous_flags())
    cookies = CookieServer()
    goods: list[WellBehaved] = []
    hostile: list[subprocess.Popen] = []
    result: dict[str, Any] = {"config": asdict(cfg)}
    try:
        await cookies.start()
        await system.start()
        for k in range(cfg.sessions):
            good = WellBehaved(system.harness_url, k)
            await good.open()
            goods.append(good)
        sampler = RssSampler(system)
        result["rss_kib_idle"] = system.rss_kib()
        quiet, quiet_rss, quiet_cpu = await _phase(goods, cfg, workdir, "q", sampler)

        host, port = system.host_port
        hcfg = HostileConfig(harness_url=system.harness_url, rendezvous_host=host, rendezvous_port=port,
                             fifo_path=fifo, cookie_url=cookies.url,
                             seconds=cfg.warmup + cfg.seconds + 3.0, slowloris=cfg.slowloris,
                             clients=tuple(cfg.hostile))
        hostile_t0 = time.monotonic()
        for group in _hostile_groups(cfg.hostile):
            nice = FLOODER_NICE if group == ("stream_flooder",) else 0
            hostile.append(await _start_hostile(replace(hcfg, clients=group, nice=nice)))
        loud, loud_rss, loud_cpu = await _phase(goods, cfg, workdir, "h", sampler)
        result["cookie"] = await _cookie_victim(goods[0], cookies, cfg.request_timeout + 10)
        result["hostile_clients"] = {}
        for proc in hostile:
            result["hostile_clients"].update(await _hostile_result(proc, hcfg.seconds + 60))
        hostile = []
        result["rendezvous_metrics"] = await system.metrics()
        # from the first hostile child's start to the metrics above (bounds what rates allow)
        result["hostile_wall_s"] = time.monotonic() - hostile_t0
        result["quiet"] = quiet.summary()
        result["hostile"] = loud.summary()
        result["rss_peak_kib"] = {"quiet": quiet_rss, "hostile": loud_rss}
        result["cpu_cores"] = {"quiet": quiet_cpu, "hostile": loud_cpu}
        result["alive_at_end"] = {"executor": system.executor is not None and system.executor.poll() is None,
                                  "rendezvous": system.rendezvous is not None
                                  and system.rendezvous.poll() is None}
        q, h = result["quiet"], result["hostile"]
        if "p99_ms" in q and "p99_ms" in h:
            result["p99_delta_ms"] = h["p99_ms"] - q["p99_ms"]
            result["p50_delta_ms"] = h["p50_ms"] - q["p50_ms"]
    finally:
        for proc in hostile:
            _kill_group(proc)
        for good in goods:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(good.client.aclose(), 5)
        system.stop()
        await cookies.stop()
        result["logs"] = _log_tails(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _log_tails(workdir: str) -> dict[str, str]:
    out = {}
    for name in ("rendezvous.log", "executor.log"):
        with contextlib.suppress(OSError):
            with open(os.path.join(workdir, name), "rb") as fh:
                out[name] = fh.read()[-1500:].decode(errors="replace")
    return out


# ------------------------------------------------------------------------ the report
def format_report(r: dict[str, Any], p99_budget_ms: float = 1.0) -> str:
    """The human report: latency quiet vs hostile, losses, RSS peaks, hostile outcomes."""
    lines = []
    cfg = r["config"]
    lines.append(f"hostile-client soak: {cfg['sessions']} well-behaved sessions, {cfg['seconds']:g} s per phase, "
                 f"request every {cfg['interval'] * 1000:g} ms per session")
    for phase in ("quiet", "hostile"):
        s = r.get(phase, {})
        lines.append(f"  {phase:8s} sent {s.get('sent', 0):6d}  lost {s.get('lost', 0)}  wrong {s.get('wrong', 0)}  "
                     f"dup {s.get('duplicates', 0)}  p50 {s.get('p50_ms', float('nan')):7.2f} ms  "
                     f"p99 {s.get('p99_ms', float('nan')):7.2f} ms  max {s.get('max_ms', float('nan')):8.2f} ms")
        for kind, k in s.get("by_kind", {}).items():
            if k.get("n"):
                lines.append(f"      {kind:12s} p50 {k['p50_ms']:7.2f}  p99 {k['p99_ms']:7.2f}  max {k['max_ms']:8.2f} ms")
        for f in s.get("failures", []):
            lines.append(f"      failure: {f}")
    if "p99_delta_ms" in r:
        d = r["p99_delta_ms"]
        verdict = "within" if d <= p99_budget_ms else "OVER"
        lines.append(f"  p99 hostile - quiet: {d:+.2f} ms ({verdict} the +{p99_budget_ms:g} ms target); "
                     f"p50 {r['p50_delta_ms']:+.2f} ms")
    lost = r.get("quiet", {}).get("lost", 0) + r.get("hostile", {}).get("lost", 0)
    lines.append(f"  lost requests: {lost} (must be 0)")
    for phase, peaks in r.get("rss_peak_kib", {}).items():
        lines.append(f"  RSS peak {phase:8s} " + "  ".join(f"{n} {v / 1024:.1f} MiB" for n, v in sorted(peaks.items())))
    for phase, cores in r.get("cpu_cores", {}).items():
        lines.append(f"  CPU      {phase:8s} " + "  ".join(f"{n} {v:.2f} cores" for n, v in sorted(cores.items())))
    c = r.get("cookie", {})
    lines.append(f"  cookie: setter requests seen {c.get('setter_requests_seen')}, victim carried "
                 f"{c.get('victim_cookie_header')!r} -> {'LEAKED' if c.get('leaked') else 'not leaked'}"
                 + (f" (error {c['error']})" if c.get("error") else ""))
    hc = r.get("hostile_clients", {})
    for name in ("fifo_reader", "non_acking_harness", "stream_flooder", "slowloris", "cookie_setter"):
        lines.append(f"  {name}: {hc.get(name)}")
    if "failed" in hc:
        lines.append(f"  hostile clients failed: {hc['failed']}")
    lines.append(f"  rendezvous metrics: {r.get('rendezvous_metrics')}")
    lines.append(f"  processes alive at end: {r.get('alive_at_end')}")
    return "\n".join(lines)
