"""CPU cost of the Noise channel (docs/noise.md §Costs).

    python benchmarks/bench_noise.py

Thread CPU time, best of N rounds (other processes on a shared machine do not count):

* **handshake**: the harness side (``Initiator`` + ``finish``) and the executor side
  (``read_request`` + ``respond``), each one whole handshake;
* **small record**: ``Transport.seal`` / ``Transport.open`` of a 120-byte JSON-RPC message
  (one record each), per message;
* **bulk**: a 1 MiB message sealed into 60 KiB records, and those records opened, in MB/s.

Issue 14's goals: <= 2 us CPU per small request, >= 1 GB/s bulk per core on the record layer.
"""
from __future__ import annotations

import time
from typing import Callable

from execrelay.stream import noise

ROUNDS = 7


def _best(fn: Callable[[], None], n: int) -> float:
    """Seconds per call: best of ROUNDS rounds of ``n`` calls."""
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - t0) / n)
    return best


def main() -> None:
    harness, executor = noise.StaticKeyPair.generate(), noise.StaticKeyPair.generate()
    pro = noise.prologue("env-1", "reg-1", "0f0e0d0c-0b0a-4908-8706-050403020100")
    auth = b"na1.1700000000." + b"A" * 43

    def one_handshake() -> tuple[float, float]:
        t0 = time.thread_time()
        ini = noise.Initiator(harness, executor.public, pro, auth)
        t1 = time.thread_time()
        res = noise.Responder(executor, pro)
        res.read_request(ini.message1)
        reply, _ = res.respond()
        t2 = time.thread_time()
        ini.finish(reply)
        t3 = time.thread_time()
        return (t1 - t0) + (t3 - t2), t2 - t1

    samples = [one_handshake() for _ in range(50)]
    ini_cpu = min(s[0] for s in samples)
    res_cpu = min(s[1] for s in samples)
    print(f"handshake CPU: harness {ini_cpu * 1e3:.3f} ms, executor {res_cpu * 1e3:.3f} ms")

    ini = noise.Initiator(harness, executor.public, pro, auth)
    res = noise.Responder(executor, pro)
    res.read_request(ini.message1)
    reply, t_exec = res.respond()
    t_harness = ini.finish(reply)
    msg = (b'{"id":12345,"method":"fs/getMetadata","params":{"path":"file:///tmp/work/'
           b'some/file.txt"}}').ljust(120, b" ")
    records: list[tuple[int, bytes]] = []

    def seal() -> None:
        records.extend(t_harness.seal(msg))

    n = 20000
    seal_s = _best(seal, n)
    it = iter(records)

    def open_() -> None:
        seq, rec = next(it)
        t_exec.open(seq, rec)

    open_s = _best(open_, n)
    print(f"small record (120 B message): seal {seal_s * 1e6:.2f} us, open {open_s * 1e6:.2f} us, "
          f"round trip of one request {(seal_s + open_s) * 1e6:.2f} us")

    big = b'"' + b"x" * (1024 * 1024 - 2) + b'"'
    h2 = noise.Initiator(harness, executor.public, pro, auth)
    r2 = noise.Responder(executor, pro)
    r2.read_request(h2.message1)
    reply, e2 = r2.respond()
    s2 = h2.finish(reply)

    sealed: list[list[tuple[int, bytes]]] = []

    def bulk_seal() -> None:
        sealed.append(s2.seal(big))

    seal_bulk = _best(bulk_seal, 20)
    pending = iter(sealed)

    def bulk_open() -> None:
        for seq, rec in next(pending):
            e2.open(seq, rec)

    open_bulk = _best(bulk_open, 20)
    mb = len(big) / 1e6
    print(f"bulk 1 MiB message: seal {seal_bulk * 1e3:.2f} ms ({mb / seal_bulk:.0f} MB/s), "
          f"open {open_bulk * 1e3:.2f} ms ({mb / open_bulk:.0f} MB/s) per core")

if __name__ == "__main__":
    main()
