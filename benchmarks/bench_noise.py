"""CPU cost of the Noise channel (docs/noise.md §Costs), printed; the same measurement is the
``noise`` section of ``execrelay bench`` (``execrelay.bench.noise``, which says what each figure
counts).

    python benchmarks/bench_noise.py [--quick]

Issue 14's goals: <= 2 us CPU per small request (request + response through both ends' record
layers), >= 1 GB/s bulk per core on the record layer.
"""
from __future__ import annotations

import argparse

from execrelay.bench import noise


def main(mode: str) -> None:
    n_hs, cycles, bulk, rounds = noise.SIZES[mode]
    hs = noise.handshake(n_hs)
    print(f"handshake CPU: harness {hs['harness_ms']:.3f} ms, executor {hs['executor_ms']:.3f} ms")
    r = noise.records(cycles, bulk, rounds)
    print(f"small request (request + response, both ends): one message per record "
          f"{r['request_us']:.2f} us, {r['batch']} per record (seal_many) {r['request_batched_us']:.2f} us; "
          f"the four AES-GCM calls alone {r['aesgcm_floor_us']:.2f} us")
    print(f"bulk 1 MiB message ({r['bulk_records']} records): seal {r['bulk_seal_GBps']:.2f} GB/s, "
          f"open {r['bulk_open_GBps']:.2f} GB/s per core")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main("quick" if parser.parse_args().quick else "full")
