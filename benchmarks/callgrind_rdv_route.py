#!/usr/bin/env python
"""Instructions per routed frame of the rendezvous's per-frame path, compiled vs pure twin.

In process, no sockets (``execrelay.bench.rdvroute.Rig``): one executor socket and
``--harnesses`` harness sockets, one bound stream each; every round each harness sends one
small Data frame to the executor and the executor one to each harness, through the real
listener's frame entry (``feed``: what picows's ``on_ws_frame`` does after parsing) and the
router, into the links' queues; the queues are flushed once per ``--batch`` frames (the loop
tick of a socket read), to a transport that discards the bytes.  Not counted: picows's frame
parser and the syscalls (``benchmarks/rendezvous_e2e.py`` with ``BENCH_RDV_CALLGRIND`` counts
the whole process).

Builds: ``compiled`` (the C per-frame path), ``fastpy`` (the same objects, the Python
per-frame path: ``fast_frames=False``), ``pure`` (``EXECRELAY_PURE=1``).  The figure includes
the driver's own loop (a Python call of ``feed`` and a frame object per frame, about the same
for every build), so differences between builds are the per-frame path's; the ``driver`` build measures that
loop alone and is subtracted in the last lines.

Each build runs twice under ``valgrind --tool=callgrind`` with ``--frames`` and twice as many;
the difference of the two totals over the difference of frames is the per-frame cost (start-up
cancels out).  Instruction counts do not depend on the load of the shared machine.

    python benchmarks/callgrind_rdv_route.py [--frames 20000] [--harnesses 8] [--payload 100]
        [--builds compiled,fastpy,pure]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile


class _Sink:
    """A transport that takes every write and keeps nothing."""

    def writelines(self, chunks: list[bytes]) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int = 0, low: int = 0) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str) -> object:
        return None


class _NullListener:
    def feed(self, transport: object, frame: object) -> None:
        frame.get_payload_as_bytes()  # type: ignore[attr-defined]


async def _route(build: str, frames: int, harnesses: int, payload: int, batch: int) -> int:
    from execrelay import _accel
    from execrelay.bench.rdvroute import FakeFrame, Rig
    from execrelay.wire import encode_data

    compiled, pure = _accel.load_both("execrelay.rendezvous._rdvfast_c", "execrelay.rendezvous._rdvfast_py")
    base = compiled if build == "compiled" else pure
    if build == "compiled" and (compiled is None or _accel.ACTIVE.get("rdvfast") != "cython"):
        raise SystemExit("the compiled twin is not built (python setup.py build_ext --inplace)")
    rig = Rig(base, harnesses, heartbeat=None)
    for ws in [rig.executor_ws, *rig.harness_ws]:
        link = rig.executor.link if ws is rig.executor_ws else rig.harnesses[rig.harness_ws.index(ws)].link
        link.transport = _Sink()
        link._tbuf = link.transport.get_write_buffer_size  # noqa: SLF001
    up = [FakeFrame(encode_data(f"stream-{i:04d}", 0, 0, 0, b"x" * payload)) for i in range(harnesses)]
    down = [FakeFrame(encode_data(f"stream-{i:04d}", 0, 0, 0, b"y" * payload)) for i in range(harnesses)]
    for i in range(harnesses):  # bind the streams (the Python path)
        rig.from_harness(i, up[i])
    await asyncio.sleep(0)
    hs, hws = rig.harnesses, rig.harness_ws
    ex, exws = rig.executor, rig.executor_ws
    if build == "driver":  # the driver's own cost: a feed that only takes the payload
        hs = [_NullListener()] * harnesses
        ex = _NullListener()
    routed = 0
    while routed < frames:
        for _ in range(max(1, batch // (2 * harnesses))):
            for i in range(harnesses):
                hs[i].feed(hws[i], up[i])
                ex.feed(exws, down[i])
            routed += 2 * harnesses
        await asyncio.sleep(0)  # the links flush
    m = rig.metrics
    assert build == "driver" or m.frames_to_executor == routed // 2 + harnesses and m.frames_to_harness == routed // 2, \
        (m.frames_to_executor, m.frames_to_harness, routed)
    return routed


def _child(args: argparse.Namespace) -> None:
    n = asyncio.run(_route(args.child, args.frames, args.harnesses, args.payload, args.batch))
    print(f"ROUTED {n}")


def _total(path: str) -> int:
    with open(path) as fh:
        for line in fh:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def _measure(build: str, frames: int, args: argparse.Namespace, workdir: str) -> tuple[int, int]:
    out = os.path.join(workdir, f"cg.{build}.{frames}")
    env = dict(os.environ, EXECRELAY_PURE="1" if build == "pure" else "0")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
           "--child", build, "--frames", str(frames), "--harnesses", str(args.harnesses),
           "--payload", str(args.payload), "--batch", str(args.batch)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    routed = int(proc.stdout.split("ROUTED")[1].split()[0])
    return routed, _total(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20_000)
    ap.add_argument("--harnesses", type=int, default=8)
    ap.add_argument("--payload", type=int, default=100)
    ap.add_argument("--batch", type=int, default=256, help="frames per loop tick (flush)")
    ap.add_argument("--builds", default="driver,compiled,fastpy,pure",
                    help="driver (the driver loop alone, to subtract); compiled; fastpy (compiled Link/Hub/Route/Metrics cores, the Python "
                         "per-frame path); pure (EXECRELAY_PURE=1: everything Python)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for build in args.builds.split(","):
            f1, i1 = _measure(build, args.frames, args, workdir)
            f2, i2 = _measure(build, 2 * args.frames, args, workdir)
            per = (i2 - i1) / (f2 - f1)
            results[build] = per
            print(f"{build:9s} {per:8.0f} instructions per routed frame "
                  f"({f2 - f1} frames, {args.harnesses} harnesses, {args.payload}-byte payload)", flush=True)
    drv = results.get("driver", 0.0)
    if drv:
        for build, per in results.items():
            if build != "driver":
                print(f"{build:9s} {per - drv:8.0f} instructions per routed frame without the driver")
    for other in ("fastpy", "pure"):
        if "compiled" in results and other in results:
            print(f"{other} / compiled: {(results[other] - drv) / (results['compiled'] - drv):.2f}x"
                  + (" (driver subtracted)" if drv else ""))


if __name__ == "__main__":
    main()
