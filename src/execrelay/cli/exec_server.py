"""``execrelay exec-server``: a drop-in for ``codex exec-server`` 0.131.0 (same flags).

``--listen ws://IP:PORT`` (default ``ws://127.0.0.1:0``) prints the bound URL as the first
stdout line; ``--listen stdio`` serves newline-delimited JSON on stdin/stdout.  ``--remote``
registers at a rendezvous through :mod:`execrelay.executor.remote`.
``-c/--enable/--disable`` are accepted for compatibility and ignored with a warning.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import signal
import sys

from ..executor.dialect import COMPAT_AUTO, COMPAT_CHOICES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("exec-server", help="run the standalone exec-server (codex 0.131.0 compatible)",
                              description="[EXPERIMENTAL] Run the standalone exec-server service")
    p.add_argument("-c", "--config", action="append", default=[], metavar="key=value",
                   help="override a config.toml value (accepted and ignored)")
    p.add_argument("--listen", metavar="URL", default=None,
                   help="transport: ws://IP:PORT (default ws://127.0.0.1:0), stdio, stdio://")
    p.add_argument("--enable", action="append", default=[], metavar="FEATURE", help="accepted and ignored")
    p.add_argument("--disable", action="append", default=[], metavar="FEATURE", help="accepted and ignored")
    p.add_argument("--remote", metavar="URL", default=None,
                   help="register as a remote executor at this base URL (relay mode)")
    p.add_argument("--executor-id", metavar="ID", default=None,
                   help="executor id to attach to when registering remotely (required with --remote)")
    p.add_argument("--ca-file", metavar="PATH", default=None,
                   help="with --remote over https: CA bundle the rendezvous certificate must chain to "
                        "(default: the system store)")
    p.add_argument("--name", metavar="NAME", default=None, help="human-readable executor name")
    p.add_argument("--compat", choices=COMPAT_CHOICES, default=COMPAT_AUTO,
                   help="Codex dialect to answer in: auto (default: each session as its requests show, "
                        "the newer release when nothing tells), 0.131 or 0.171")
    p.add_argument("--impl", choices=("picows", "websockets"), default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.listen is not None and args.remote is not None:
        print("error: the argument '--listen <URL>' cannot be used with '--remote <URL>'", file=sys.stderr)
        return 2
    if args.remote is not None and not args.executor_id:
        print("error: the following required arguments were not provided:\n  --executor-id <ID>", file=sys.stderr)
        return 2
    for c in args.config:
        _warn(f"ignoring -c {c}: config overrides are not supported by execrelay exec-server")
    for f in args.enable + args.disable:
        _warn(f"ignoring feature flag {f}")

    from ..executor.tuning import tune_malloc
    from ..transport import install_event_loop_policy

    tune_malloc()
    install_event_loop_policy()
    if args.remote is not None:
        return asyncio.run(_run_remote(args))

    from ..executor.serve import ListenUrlError, parse_listen

    try:
        kind, host, port = parse_listen(args.listen or "ws://127.0.0.1:0")
    except ListenUrlError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(_run_local(kind, host, port, args.impl, args.compat))


def _install_stop(loop: asyncio.AbstractEventLoop) -> "asyncio.Future[None]":
    """A future set by SIGINT/SIGTERM; installed before the URL is printed, so a supervisor
    that signals right after reading the URL still gets a clean shutdown (processes killed)."""
    stop: asyncio.Future[None] = loop.create_future()

    def set_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, set_stop)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
            pass
    return stop


async def _wait(stop: "asyncio.Future[None]", main: "asyncio.Future | None" = None) -> None:
    waits = [stop] if main is None else [stop, main]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)


async def _run_local(kind: str, host: str, port: int, impl: str | None, compat: str) -> int:
    from ..executor import ExecServer, ExecServerConfig
    from ..executor.serve import serve_stdio, serve_ws

    stop = _install_stop(asyncio.get_running_loop())
    server = ExecServer(ExecServerConfig(compat=compat))
    try:
        if kind == "stdio":
            main = asyncio.ensure_future(serve_stdio(server))
            await _wait(stop, main)
            main.cancel()
            return 0
        try:
            ws = await serve_ws(server, host, port, impl=impl)
        except OSError as exc:
            code = exc.errno or 0
            text = "Address in use" if code == errno.EADDRINUSE else exc.strerror or str(exc)
            print(f"Error: {text} (os error {code})", file=sys.stderr)
            return 1
        print(ws.url, flush=True)
        await _wait(stop)
        ws.close()
        return 0
    finally:
        await server.aclose()


async def _run_remote(args: argparse.Namespace) -> int:
    # imported here: the local transports never load the relay stack
    from ..executor import ExecServer, ExecServerConfig
    from ..executor.remote import run_remote_executor

    stop = _install_stop(asyncio.get_running_loop())
    server = ExecServer(ExecServerConfig(compat=args.compat))
    try:
        main = asyncio.ensure_future(run_remote_executor(
            server=server, remote_url=args.remote, executor_id=args.executor_id, name=args.name,
            ca_file=args.ca_file))
        await _wait(stop, main)
        if main.done():
            return int(main.result() or 0)
        main.cancel()
        return 0
    finally:
        await server.aclose()
