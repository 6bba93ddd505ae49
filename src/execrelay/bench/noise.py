"""The Noise section of ``execrelay bench``: what the encrypted relay costs (docs/benchmarks.md
§Noise relay, issue 14's goals: <= 2 µs CPU per small request on the record layer, >= 1 GB/s
bulk per core).

Three parts, each a function the standalone scripts in ``benchmarks/`` call too:

* :func:`handshake`: thread CPU of one hybrid IK handshake per side (harness: ``Initiator`` +
  ``finish``; executor: ``read_request`` + ``respond``), best of N.
* :func:`records`: the record layer alone (``stream.noise.Transport``, two ends in memory).
  A *small request* is counted whole: the request sealed by the harness and opened by the
  executor, plus the response sealed by the executor and opened by the harness -- two seals
  and two opens, both ends together.  Measured with one message per record (what a lone
  message costs) and with 16 queued messages per record (``seal_many``: a window of 16), next
  to the floor of the binding (the same four AES-GCM calls with nothing around them).  Bulk:
  a 1 MiB message sealed into records and opened, GB/s per core each way.
* :func:`end_to_end`: our harness client -> our rendezvous -> our executor in this process,
  reliable streams, 8 sessions x 16 requests in flight, with and without Noise alternating;
  process CPU (all three parts) per small request and per 1 MiB answer, and the wall time of
  ``open_session`` (handshake, ``/validate``, ``initialize``).

Timings are CPU time (``time.thread_time`` / ``process_time``), best of rounds, so other
processes on a shared machine disturb them less; the ratios are the figures to compare.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..executor import ExecServer
from ..executor.remote import NOISE_AUTO, RemoteExecutor, RemoteExecutorConfig
from ..harness import HarnessClient
from ..rendezvous import RendezvousServer
from ..stream import noise
from .timing import best_per_call

#: A typical small request and its response (``fs/getMetadata``), as JSON-RPC bytes.
REQUEST = (b'{"id":12345,"method":"fs/getMetadata","params":{"path":"file:///tmp/work/'
           b'some/file.txt"}}')
RESPONSE = (b'{"id":12345,"result":{"isDirectory":false,"isFile":true,"isSymlink":false,'
            b'"createdAtMs":1764547200000,"modifiedAtMs":1764547200000}}')
#: Messages per record in the batched case: one window of the 8 x 16 load.
BATCH = 16
BULK = b'"' + b"x" * (1024 * 1024 - 2) + b'"'
#: Sizes per mode: (handshakes, small-request cycles per round, bulk messages per round, rounds).
SIZES = {"tiny": (5, 300, 2, 2), "quick": (20, 3000, 8, 3), "full": (50, 20000, 20, 7)}
#: End to end per mode: (small requests, 1 MiB answers, rounds of plain + Noise).
E2E = {"tiny": (160, 8, 1), "quick": (2000, 16, 1), "full": (8000, 64, 3)}
STREAMS, WINDOW = 8, 16


def _best(fn: Callable[[], object], n: int, rounds: int) -> float:
    """Thread CPU seconds per call: best of ``rounds`` rounds of ``n`` calls."""
    return best_per_call(fn, n, rounds, time.thread_time)


def _pair(harness: noise.StaticKeyPair, executor: noise.StaticKeyPair,
          prologue: bytes) -> tuple[noise.Transport, noise.Transport, float, float]:
    """(harness transport, executor transport, harness CPU s, executor CPU s) of one
    handshake."""
    t0 = time.thread_time()
    ini = noise.Initiator(harness, executor.public, prologue, b"na1.1700000000." + b"A" * 43)
    t1 = time.thread_time()
    res = noise.Responder(executor, prologue)
    res.read_request(ini.message1)
    reply, t_exec = res.respond()
    t2 = time.thread_time()
    t_harness = ini.finish(reply)
    t3 = time.thread_time()
    return t_harness, t_exec, (t1 - t0) + (t3 - t2), t2 - t1


_PROLOGUE = noise.prologue("bench-env", "bench-registration", "0f0e0d0c-0b0a-4908-8706-050403020100")


def handshake(count: int) -> dict[str, float]:
    """Best thread CPU of ``count`` handshakes, per side, in ms."""
    harness, executor = noise.StaticKeyPair.generate(), noise.StaticKeyPair.generate()
    samples = [_pair(harness, executor, _PROLOGUE)[2:] for _ in range(count)]
    return {"harness_ms": min(s[0] for s in samples) * 1e3,
            "executor_ms": min(s[1] for s in samples) * 1e3}


def records(cycles: int, bulk: int, rounds: int) -> dict[str, float]:
    """The record layer alone: µs per small request (both ends) and GB/s per core in bulk."""
    harness, executor = noise.StaticKeyPair.generate(), noise.StaticKeyPair.generate()
    h, e, _, _ = _pair(harness, executor, _PROLOGUE)
    out: dict[str, float] = {}

    def one() -> None:                          # one message per record: seal / open each
        for seq, rec in h.seal(REQUEST):
            e.open(seq, rec)
        for seq, rec in e.seal(RESPONSE):
            h.open(seq, rec)

    out["request_us"] = _best(one, cycles, rounds) * 1e6
    requests, responses = [REQUEST] * BATCH, [RESPONSE] * BATCH

    def batched() -> None:                      # a window's worth queued together
        for seq, rec in h.seal_many(requests):
            e.open(seq, rec)
        for seq, rec in e.seal_many(responses):
            h.open(seq, rec)

    out["request_batched_us"] = _best(batched, max(1, cycles // BATCH), rounds) * 1e6 / BATCH
    out["batch"] = BATCH
    # the floor: the same four AES-GCM calls, nonce and framing prepared outside the loop
    tx, rx = AESGCM(os.urandom(32)), AESGCM(os.urandom(32))
    nonce = bytes(12)
    req_pt, resp_pt = len(REQUEST).to_bytes(4, "big") + REQUEST, len(RESPONSE).to_bytes(4, "big") + RESPONSE
    req_ct, resp_ct = tx.encrypt(nonce, req_pt, None), rx.encrypt(nonce, resp_pt, None)

    def floor() -> None:
        tx.encrypt(nonce, req_pt, None)
        tx.decrypt(nonce, req_ct, None)
        rx.encrypt(nonce, resp_pt, None)
        rx.decrypt(nonce, resp_ct, None)

    out["aesgcm_floor_us"] = _best(floor, cycles, rounds) * 1e6
    # bulk: a fresh channel so the counters of the small runs do not matter.  Sealed records
    # are dropped as they come (keeping them all would time the kernel's page faults)...
    h2, e2, _, _ = _pair(harness, executor, _PROLOGUE)
    seal_s = _best(lambda: h2.seal(BULK), bulk, rounds)
    # ...and each round opens records sealed for it beforehand (on a channel of their own)
    h3, e3, _, _ = _pair(harness, executor, _PROLOGUE)
    open_s = float("inf")
    for _ in range(rounds):
        sealed = [h3.seal(BULK) for _ in range(bulk)]
        t0 = time.thread_time()
        for message in sealed:
            for seq, rec in message:
                e3.open(seq, rec)
        open_s = min(open_s, (time.thread_time() - t0) / bulk)
        del sealed
    out["bulk_seal_GBps"] = len(BULK) / seal_s / 1e9
    out["bulk_open_GBps"] = len(BULK) / open_s / 1e9
    out["bulk_records"] = len(h2.seal(BULK))
    return out


async def end_to_end(requests: int, blobs: int, rounds: int) -> dict[str, Any]:
    """Plain vs Noise through our rendezvous (all in this process), best of ``rounds`` each:
    ``{"plain": {...}, "noise": {...}, "ratio": {...}}`` with CPU µs per small request, CPU ms
    per 1 MiB answer and ``open_session`` wall ms."""
    blob = "x" * (1024 * 1024)
    server = ExecServer()
    server.handlers["bench/ping"] = lambda conn, params: {"n": params["n"]}
    server.handlers["bench/blob"] = lambda conn, params: {"data": blob}
    best: dict[str, dict[str, float]] = {}
    async with RendezvousServer(heartbeat=None) as rdv:
        env = "bench-env"
        config = RemoteExecutorConfig.with_bearer_token(rdv.url, env, rdv.mint_token("executor", env))
        config.noise = NOISE_AUTO
        executor = RemoteExecutor(config, server)
        task = asyncio.ensure_future(executor.run())
        try:
            await asyncio.wait_for(executor.connected.wait(), 10)
            for _ in range(rounds):
                for name in ("plain", "noise"):
                    if name == "plain":
                        client = HarnessClient(rdv.harness_url(env))
                    else:
                        client = HarnessClient(rdv.url, environment_id=env,
                                               auth_token=rdv.mint_token("harness", env))
                    async with client:
                        got = await _load(client, requests, blobs)
                    prev = best.get(name, got)
                    best[name] = {k: min(prev[k], got[k]) for k in got}
        finally:
            executor.close()
            await task
    plain, enc = best["plain"], best["noise"]
    ratio = {k: enc[k] / plain[k] for k in ("request_cpu_us", "mib_cpu_ms") if plain[k]}
    return {"streams": STREAMS, "window": WINDOW, "requests": requests, "blobs": blobs,
            "rounds": rounds, "plain": plain, "noise": enc, "ratio": ratio,
            "added_request_cpu_us": enc["request_cpu_us"] - plain["request_cpu_us"]}


async def _load(client: HarnessClient, requests: int, blobs: int) -> dict[str, float]:
    t0 = time.perf_counter()
    sessions = [await client.open_session() for _ in range(STREAMS)]
    opened = (time.perf_counter() - t0) / STREAMS

    async def drive(session: Any, n: int, method: str) -> None:
        sem = asyncio.Semaphore(WINDOW)

        async def one(i: int) -> None:
            async with sem:
                await session.call(method, {"n": i}, timeout=60)
        await asyncio.gather(*(one(i) for i in range(n)))

    c0 = time.process_time()
    await asyncio.gather(*(drive(s, requests // STREAMS, "bench/ping") for s in sessions))
    small = (time.process_time() - c0) / (requests // STREAMS * STREAMS)
    c0 = time.process_time()
    await asyncio.gather(*(drive(s, max(1, blobs // STREAMS), "bench/blob") for s in sessions))
    bulk = (time.process_time() - c0) / (max(1, blobs // STREAMS) * STREAMS)
    for s in sessions:
        s.close("done")
    return {"request_cpu_us": small * 1e6, "mib_cpu_ms": bulk * 1e3, "open_session_ms": opened * 1e3}


def run(mode: str, progress: Any = None) -> dict[str, Any]:
    """The whole section for ``execrelay bench`` (``mode``: tiny, quick or full); the end-to-end
    part runs on a fresh event loop of its own."""
    n_hs, cycles, bulk, rounds = SIZES[mode]
    out: dict[str, Any] = {"cryptography": _cryptography_version()}
    out["handshake"] = handshake(n_hs)
    if progress is not None:
        progress.step("handshake")
    out["records"] = records(cycles, bulk, rounds)
    if progress is not None:
        progress.step("record layer")
    try:
        out["end_to_end"] = _run_loop(end_to_end(*E2E[mode]))
    except Exception as exc:  # noqa: BLE001 - a failed run is reported, not fatal to the bench
        out["end_to_end"] = {"failed": f"{type(exc).__name__}: {exc}"}
    if progress is not None:
        progress.step("end to end")
    return out


def _run_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def _cryptography_version() -> str:
    import cryptography

    return cryptography.__version__


__all__ = ["handshake", "records", "end_to_end", "run", "REQUEST", "RESPONSE", "BATCH"]
