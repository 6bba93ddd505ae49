"""What the Noise relay adds end to end (docs/noise.md §Costs): our harness client -> our
rendezvous -> our executor, all in this process, reliable streams, with and without Noise.
The same measurement is part of the ``noise`` section of ``execrelay bench``
(``execrelay.bench.noise.end_to_end``).

    python benchmarks/noise_relay_e2e.py [--requests 8000] [--blobs 64] [--rounds 3]

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

from execrelay.bench.noise import end_to_end


async def main(requests: int, blobs: int, rounds: int) -> None:
    r = await end_to_end(requests, blobs, rounds)
    plain, noise = r["plain"], r["noise"]
    print(f"machine load at the end: {open('/proc/loadavg').read().split()[0]} (2 cores shared)")
    print(f"small request, CPU (harness+rendezvous+executor): plain {plain['request_cpu_us']:.1f} us, "
          f"noise {noise['request_cpu_us']:.1f} us: {r['added_request_cpu_us']:+.1f} us "
          f"(x{r['ratio']['request_cpu_us']:.3f})")
    print(f"1 MiB answer, CPU: plain {plain['mib_cpu_ms']:.2f} ms, noise {noise['mib_cpu_ms']:.2f} ms: "
          f"+{noise['mib_cpu_ms'] - plain['mib_cpu_ms']:.2f} ms (x{r['ratio']['mib_cpu_ms']:.3f})")
    print(f"open_session wall: plain {plain['open_session_ms']:.2f} ms, noise {noise['open_session_ms']:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8000)
    parser.add_argument("--blobs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from execrelay.transport import install_event_loop_policy

    install_event_loop_policy()
    asyncio.run(main(args.requests, args.blobs, args.rounds))
