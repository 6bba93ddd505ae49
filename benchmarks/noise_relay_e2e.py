"""What the Noise relay adds end to end (docs/noise.md §Costs): our harness client -> our
rendezvous -> our executor, all in this process, reliable streams, with and without Noise.

    python benchmarks/noise_relay_e2e.py [--requests 8000] [--rounds 3]

* **small requests**: 8 sessions x 16 in flight of a tiny JSON-RPC call; process CPU per
  request (harness + rendezvous + executor together: a request costs one seal and one open at
  each end under Noise);
* **bulk**: answers of 1 MiB; process CPU per MiB;
* **handshake**: wall time of ``open_session`` (handshake, ``/validate``, ``initialize``).

Plain and Noise runs alternate, best of ``--rounds`` each, so load from other processes hits
both alike; the ratio is the figure to compare across machines.
"""
from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from execrelay.executor import ExecServer
from execrelay.executor.remote import NOISE_AUTO, RemoteExecutor, RemoteExecutorConfig
from execrelay.harness import HarnessClient
from execrelay.rendezvous import RendezvousServer

STREAMS, WINDOW = 8, 16
BLOB = "x" * (1024 * 1024)


def _server() -> ExecServer:
    server = ExecServer()
    server.handlers["bench/ping"] = lambda conn, params: {"n": params["n"]}
    server.handlers["bench/blob"] = lambda conn, params: {"data": BLOB}
    return server


async def _load(client: HarnessClient, requests: int, blobs: int) -> tuple[float, float, float]:
    """(CPU s per small request, CPU s per MiB, wall s per open_session)."""
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
    small = (time.process_time() - c0) / requests
    c0 = time.process_time()
    await asyncio.gather(*(drive(s, blobs // STREAMS, "bench/blob") for s in sessions))
    bulk = (time.process_time() - c0) / blobs
    for s in sessions:
        s.close("done")
    return small, bulk, opened


async def main(requests: int, blobs: int, rounds: int) -> None:
    async with RendezvousServer(heartbeat=None) as rdv:
        env = "bench-env"
        config = RemoteExecutorConfig.with_bearer_token(rdv.url, env, rdv.mint_token("executor", env))
        config.noise = NOISE_AUTO
        executor = RemoteExecutor(config, _server())
        task = asyncio.ensure_future(executor.run())
        await asyncio.wait_for(executor.connected.wait(), 10)
        best: dict[str, list[float]] = {}
        try:
            for _ in range(rounds):
                for name in ("plain", "noise"):
                    if name == "plain":
                        client = HarnessClient(rdv.harness_url(env))
                    else:
                        client = HarnessClient(rdv.url, environment_id=env,
                                               auth_token=rdv.mint_token("harness", env))
                    async with client:
                        got = await _load(client, requests, blobs)
                    best[name] = [min(a, b) for a, b in zip(best.get(name, got), got)]
        finally:
            executor.close()
            await task
    plain, noise = best["plain"], best["noise"]
    print(f"machine load at the end: {open('/proc/loadavg').read().split()[0]} (2 cores shared)")
    print(f"small request, CPU (harness+rendezvous+executor): plain {plain[0] * 1e6:.1f} us, "
          f"noise {noise[0] * 1e6:.1f} us: +{(noise[0] - plain[0]) * 1e6:.1f} us (x{noise[0] / plain[0]:.3f})")
    print(f"1 MiB answer, CPU: plain {plain[1] * 1e3:.2f} ms, noise {noise[1] * 1e3:.2f} ms: "
          f"+{(noise[1] - plain[1]) * 1e3:.2f} ms (x{noise[1] / plain[1]:.3f})")
    print(f"open_session wall: plain {plain[2] * 1e3:.2f} ms, noise {noise[2] * 1e3:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--blobs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from execrelay.transport import install_event_loop_policy

    install_event_loop_policy()
    asyncio.run(main(args.requests, args.blobs, args.rounds))
