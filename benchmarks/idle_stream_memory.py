"""Bytes per idle initialized relay stream in OUR executor, by allocation site (tracemalloc).

In one process, without sockets: a RelayEndpoint on the acceptor side with the remote
executor's stream handler (a RelayRpcConnection on one ExecServer), fed ``initialize`` and
``initialized`` for N legacy streams through the same calls a websocket read makes; a link
that drops what it is given stands for the socket.  tracemalloc measures what the N streams
keep after their replies were written, so the figure is the Python heap per stream (the
executor's RSS per stream, which ``execrelay bench`` reports, adds allocator slack).

    python benchmarks/idle_stream_memory.py [--streams 10000] [--top 15]
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import tracemalloc

from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig
from execrelay.executor.server import ExecServer
from execrelay.stream import ACCEPTOR
from execrelay.transport.endpoint import RelayEndpoint
from execrelay.wire import encode_data

INITIALIZE = b'{"id":0,"method":"initialize","params":{"clientName":"mem","resumeSessionId":null}}'
INITIALIZED = b'{"method":"initialized","params":{}}'


class _NullLink:
    peer = "null"
    write_paused = False

    def send(self, data, binary=False) -> None:
        pass

    def send_many(self, messages, binary=False) -> None:
        for _ in messages:
            pass

    def flush(self) -> None:
        pass


async def measure(n: int, top: int) -> None:
    server = ExecServer()
    rex = RemoteExecutor(RemoteExecutorConfig.with_bearer_token("http://x", "mem", "t"), server)
    ep = rex.endpoint = RelayEndpoint(ACCEPTOR, on_accept=rex._on_accept)
    ep.attach(_NullLink())  # type: ignore[arg-type]
    frames = [(encode_data(f"idle-{i:06d}", 0, 0, 0, INITIALIZE), encode_data(f"idle-{i:06d}", 1, 0, 0, INITIALIZED))
              for i in range(n)]

    async def open_streams(batch: list) -> None:
        for a, b in batch:
            ep.on_message(a, True)
            ep.on_message(b, True)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    await open_streams([(encode_data("warm", 0, 0, 0, INITIALIZE), encode_data("warm", 1, 0, 0, INITIALIZED))])
    gc.collect()
    tracemalloc.start(3)
    before = tracemalloc.take_snapshot()
    for i in range(0, n, 500):
        await open_streams(frames[i:i + 500])
    frames.clear()
    gc.collect()
    after = tracemalloc.take_snapshot()
    assert len(ep.streams) == n + 1 and all(c.initialized for c in rex.conns.values())
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"{n} idle initialized streams: {total / n:.0f} bytes per stream ({total / n / 1024:.3f} KiB)")
    for s in stats[:top]:
        if s.size_diff <= 0:
            continue
        fr = s.traceback[0]
        print(f"  {s.size_diff / n:8.1f} B/stream  {s.count_diff / n:5.2f} blocks  {fr.filename.split('src/')[-1]}:{fr.lineno}")
    tracemalloc.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=10000)
    p.add_argument("--top", type=int, default=15)
    a = p.parse_args()
    asyncio.run(measure(a.streams, a.top))
