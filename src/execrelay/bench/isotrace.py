"""Timestamps inside an executor under test, for the isolation probe
(``benchmarks/isolation_probe.py``; docs/benchmarks.md §Isolation: where the time goes).

:func:`install` patches, in THIS process only (the executor child the probe starts):

* ``RelayEndpoint.on_message``: every relay frame read (``"in"``: time, stream id, length);
* ``PicowsLink.write_now``: every batch handed to the socket (``"out"``: time, frames, bytes,
  the bytes already waiting in the transport's buffer and in the kernel's send queue, and the
  stream ids of the small frames in it);
* ``Multiplexer.send`` of a message over 1 MiB (``"bulk"``: time, length);
* the transport's ``pause_writing`` / ``resume_writing`` (``"pause"``: time, True/False): while
  paused the endpoint holds every frame, small replies included, in the multiplexer;
* a 1 ms loop timer: every lateness over 0.5 ms (``"lag"``: time, seconds late, the loop
  thread's CPU seconds and its run-queue wait (``/proc/.../schedstat``) since the previous tick,
  and that interval: the rest of the interval the loop thread was blocked, i.e. waiting for the
  GIL, since it had a timer due).

Times are ``time.perf_counter()`` (CLOCK_MONOTONIC on Linux: the same clock in the driver).  The
records stay in memory until the probe asks for them, between runs (it creates ``path +
".dump"``; a thread then appends them to ``path`` as one JSON line and removes the request):
serializing during a run would hold the GIL for tens of milliseconds, a loop stall the trace
would then report as the executor's.  Not for production: it costs a few microseconds per frame.
"""
from __future__ import annotations

import array
import asyncio
import fcntl
import json
import os
import termios
import threading
import time
from typing import Any

_SMALL = 4096
_recs: list = []


def _outq(raw: Any) -> int:
    """Bytes in the kernel send queue of ``raw``'s socket (SIOCOUTQ), -1 if unknown."""
    try:
        buf = array.array("i", [0])
        fcntl.ioctl(raw.get_extra_info("socket").fileno(), termios.TIOCOUTQ, buf)
        return buf[0]
    except (OSError, AttributeError):
        return -1


def _dumper(path: str) -> None:
    global _recs
    request = path + ".dump"
    while True:
        time.sleep(0.1)
        if not os.path.exists(request):
            continue
        recs, _recs = _recs, []
        with open(path, "a") as fh:
            fh.write(json.dumps(recs) + "\n")
        os.unlink(request)


def _run_delay(fd: int) -> float:
    """Seconds this thread has waited on a run queue (for a core), from its schedstat."""
    return int(os.pread(fd, 64, 0).split()[1]) / 1e9


def _lag_monitor(loop: asyncio.AbstractEventLoop) -> None:
    period = 0.001
    fd = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
    t = time.perf_counter()
    due = [t + period, time.thread_time(), _run_delay(fd), t]

    def tick() -> None:
        now = time.perf_counter()
        cpu = time.thread_time()
        waited = _run_delay(fd)
        late = now - due[0]
        if late > 0.0005:
            _recs.append(("lag", now, late, cpu - due[1], waited - due[2], now - due[3]))
        due[0], due[1], due[2], due[3] = now + period, cpu, waited, now
        loop.call_later(period, tick)

    loop.call_later(period, tick)


def install(path: str) -> None:
    """Patch this process's endpoint, link and multiplexer (see the module docstring)."""
    from ..stream.mux import Multiplexer
    from ..transport.endpoint import RelayEndpoint
    from ..transport.ws_picows import PicowsLink, _Listener
    from ..wire import peek_stream_id

    perf = time.perf_counter
    recs_append = lambda r: _recs.append(r)  # noqa: E731 - _recs is swapped by the dumper

    on_message = RelayEndpoint.on_message

    def traced_on_message(self: RelayEndpoint, data: Any, binary: bool) -> None:
        if len(data) < _SMALL:
            recs_append(("in", perf(), peek_stream_id(data), len(data)))
        if not getattr(self, "_lag_started", False):
            self._lag_started = True  # type: ignore[attr-defined]
            _lag_monitor(self.loop)
        on_message(self, data, binary)

    write_now = PicowsLink.write_now

    def traced_write_now(self: PicowsLink, messages: list, binary: bool = False) -> None:
        t = perf()
        small = [peek_stream_id(m) for m in messages if type(m) is bytes and len(m) < _SMALL]
        raw = self._raw
        recs_append(("out", t, len(messages), sum(len(m) for m in messages),
                     raw.get_write_buffer_size(), _outq(raw), small))
        write_now(self, messages, binary)

    send = Multiplexer.send

    def traced_send(self: Multiplexer, stream_id: str, message: bytes) -> None:
        if len(message) > (1 << 20):
            recs_append(("bulk", perf(), len(message)))
        send(self, stream_id, message)

    pause, resume = _Listener.pause_writing, _Listener.resume_writing

    def traced_pause(self: _Listener) -> None:
        recs_append(("pause", perf(), True))
        pause(self)

    def traced_resume(self: _Listener) -> None:
        recs_append(("pause", perf(), False))
        resume(self)

    _Listener.pause_writing = traced_pause  # type: ignore[method-assign]
    _Listener.resume_writing = traced_resume  # type: ignore[method-assign]
    RelayEndpoint.on_message = traced_on_message  # type: ignore[method-assign]
    PicowsLink.write_now = traced_write_now  # type: ignore[method-assign]
    Multiplexer.send = traced_send  # type: ignore[method-assign]
    threading.Thread(target=_dumper, args=(path,), daemon=True).start()


def main() -> int:
    """``python -m execrelay.bench.isotrace TRACE_PATH exec-server ...``: the CLI, traced."""
    import sys

    from ..cli import main as cli_main

    install(sys.argv[1])
    sys.argv = ["execrelay"] + sys.argv[2:]
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
