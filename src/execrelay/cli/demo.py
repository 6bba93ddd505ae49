"""``execrelay demo``: the whole system on loopback, no configuration.

Starts a rendezvous + registry (random secret, generated tokens), a remote executor that
registers with it, and a harness that reaches the executor through the rendezvous; then runs a
short scripted session and prints what happened and the measured round-trip times.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time

from ._ops import add_log_args, setup_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="run rendezvous + executor + harness on loopback and show a session")
    p.add_argument("--executor-id", default="demo-executor", help="executor id to register (default: demo-executor)")
    p.add_argument("--round-trips", type=int, default=500, help="fs/getMetadata calls timed (default 500)")
    p.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds")
    add_log_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    from ..transport import install_event_loop_policy

    install_event_loop_policy()
    try:
        return asyncio.run(asyncio.wait_for(_demo(args), args.timeout))
    except asyncio.TimeoutError:
        print(f"demo: did not finish within {args.timeout:.0f} s", file=sys.stderr)
        return 1


def _say(text: str) -> None:
    print(text, flush=True)


async def _demo(args: argparse.Namespace) -> int:
    import execrelay
    from ..executor import ExecServer
    from ..executor.remote import RemoteExecutor, RemoteExecutorConfig
    from ..harness import HarnessClient, RpcCallError
    from ..rendezvous import RendezvousServer

    eid = args.executor_id
    impls = ", ".join(f"{k}={v}" for k, v in sorted(execrelay.accelerated().items()))
    _say(f"execrelay {execrelay.__version__} demo ({impls}; transport {_transport()})")

    rendezvous = RendezvousServer()
    base = await rendezvous.start("127.0.0.1", 0)
    _say(f"[rendezvous] listening on {base} (registry, executor and harness websockets)")

    server = ExecServer()
    config = RemoteExecutorConfig.with_bearer_token(base, eid, rendezvous.mint_token("executor", eid))
    executor = RemoteExecutor(config, server)
    executor_task = asyncio.ensure_future(executor.run())
    await asyncio.wait_for(executor.connected.wait(), 10)
    _say(f"[executor]   registered as {eid!r}; one websocket to the rendezvous")

    harness_url = rendezvous.harness_url(eid)
    _say(f"[harness]    {harness_url.split('&sig=')[0]}&sig=...")
    work = tempfile.mkdtemp(prefix="execrelay-demo-")
    try:
        async with HarnessClient(harness_url) as client:
            a, b = await asyncio.gather(client.open_session(), client.open_session())
            _say(f"[harness]    two sessions on one socket: {a.session_id[:8]}... and {b.session_id[:8]}... "
                 f"(stream mode: {client.stream_mode(a)})")

            # 1. a process whose output streams back as notifications
            _say("[session A]  process/start: sh -c 'for i in 1 2 3; do echo line $i; sleep 0.1; done'")
            await a.process_start("p1", ["/bin/sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.1; done"],
                                  work, {"PATH": "/usr/bin:/bin"})
            t0 = time.monotonic()
            while True:
                method, params = await a.next_notification(10)
                stamp = f"+{(time.monotonic() - t0) * 1000:5.0f} ms"
                if method == "process/output":
                    text = base64.b64decode(params["chunk"]).decode().rstrip()
                    _say(f"             {stamp} {params['stream']}: {text}")
                elif method == "process/exited":
                    _say(f"             {stamp} exited with code {params['exitCode']}")
                elif method == "process/closed":
                    break

            # 2. files
            path = os.path.join(work, "hello.txt")
            await a.fs_write_file(path, b"written by the harness through the relay\n")
            data = await b.fs_read_file(path)
            meta = await b.fs_get_metadata(path)
            _say(f"[session A]  fs/writeFile {path}")
            _say(f"[session B]  fs/readFile  -> {data!r}; isFile={meta['isFile']}")

            # 3. both sessions at once
            (ca, oa, _), (cb, ob, _) = await asyncio.gather(
                a.run(["/bin/sh", "-c", "sleep 0.2; echo from A"], work),
                b.run(["/bin/sh", "-c", "sleep 0.2; echo from B"], work))
            _say(f"[A and B]    concurrent processes: {oa.decode().strip()!r} (exit {ca}), "
                 f"{ob.decode().strip()!r} (exit {cb})")
            try:
                await b.call("demo/unknown-method", {})
            except RpcCallError as exc:
                _say(f"[session B]  unknown method answered per stream: {exc.code} {exc.message!r}")

            # 4. round-trip time
            rtts = []
            for _ in range(args.round_trips):
                t = time.perf_counter()
                await a.fs_get_metadata(work)
                rtts.append((time.perf_counter() - t) * 1e6)
            rtts.sort()
            p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))]
            _say(f"[timing]     fs/getMetadata round trip harness -> rendezvous -> executor -> back, "
                 f"{len(rtts)} calls: median {statistics.median(rtts):.0f} us, p99 {p99:.0f} us")
        _say("[done]       sessions closed; streams reset; executor and rendezvous shutting down")
        return 0
    finally:
        executor.close()
        await asyncio.wait_for(executor_task, 10)
        await server.aclose()
        await rendezvous.aclose()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _transport() -> str:
    from ..transport import default_impl

    return default_impl()
