"""``execrelay call URL METHOD [PARAMS]``: one JSON-RPC call through the harness client.

URL is a local exec-server (``ws://127.0.0.1:PORT``) or a rendezvous harness URL
(``execrelay rendezvous harness-url ...``). The session is initialized first; the result is
printed as JSON on stdout, an error on stderr with exit status 1.

Paths (docs/dialects.md §Paths and URIs): a 0.131 server takes native paths, a 0.171 server
(its ``initialize`` answer has ``environmentInfo``) only ``file://`` URIs.  ``--paths`` says
what to do with the paths in PARAMS:

* ``auto`` (default): after ``initialize``, if the server is 0.171, every absolute native path
  held by a ``path``, ``cwd``, ``sourcePath`` or ``destinationPath`` member (at any depth) or
  listed in ``missing`` becomes a URI; URIs and relative paths are sent as written.  A 0.131
  server gets PARAMS unchanged.
* ``uri``: the same conversion whatever the server says;
* ``native``: PARAMS are sent exactly as written.

The answer is printed as the server sent it (a 0.171 server's result paths stay URIs).

Noise (docs/noise.md §Our harness client): ``--environment-id ID`` makes URL a Noise registry
(``http://HOST:PORT`` of ``execrelay rendezvous``); the session then runs end-to-end encrypted
to the executor registered for ID, with the harness token from
``CODEX_EXEC_SERVER_NOISE_AUTH_TOKEN`` (as the 0.171 harness reads it).

``--traceparent 00-<trace id>-<span id>-<flags>``: the W3C trace context sent with the call
(its ``trace`` member), so the executor's access log ties it to the caller's trace; without
it the harness client sends its session's own (docs/operations.md §Trace context).  A
malformed value is refused (exit status 2) rather than sent.
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from ..tracecontext import is_traceparent
from ._ops import add_log_args, setup_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("call", help="make one exec-server call (direct or through a rendezvous)")
    p.add_argument("url", help="ws://HOST:PORT (exec-server), a rendezvous harness URL (role=harness), or "
                               "with --environment-id a Noise registry http(s)://HOST:PORT")
    p.add_argument("method", help="JSON-RPC method, e.g. fs/getMetadata")
    p.add_argument("params", nargs="?", default="{}", help="params as JSON (default {})")
    p.add_argument("--mode", choices=("auto", "reliable", "legacy"), default="auto",
                   help="relay stream mode (default auto: reliable, legacy for a 0.131.0 executor)")
    p.add_argument("--paths", choices=("auto", "uri", "native"), default="auto",
                   help="absolute paths in path/cwd/sourcePath/destinationPath/missing: auto = to "
                        "file:// URIs when the server speaks 0.171 (default), uri = always, "
                        "native = send params as written")
    p.add_argument("--environment-id", metavar="ID", default=None,
                   help="connect with Noise to the executor of this environment: URL is the Noise "
                        "registry, the harness token is read from CODEX_EXEC_SERVER_NOISE_AUTH_TOKEN")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
    p.add_argument("--ca-file", metavar="PATH", default=None,
                   help="for wss:// URLs: CA bundle the server certificate must chain to "
                        "(default: the system store)")
    p.add_argument("--traceparent", metavar="00-TRACEID-SPANID-FLAGS", default=None,
                   help="W3C trace context to send with the call (default: the session's own)")
    p.add_argument("--notifications", type=float, default=0.0, metavar="SECONDS",
                   help="after the answer, print notifications for this long (e.g. process output)")
    add_log_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    import orjson

    try:
        params = orjson.loads(args.params)
    except orjson.JSONDecodeError as exc:
        print(f"error: params are not JSON: {exc}", file=sys.stderr)
        return 2
    if args.traceparent is not None and not is_traceparent(args.traceparent):
        print("error: --traceparent must be a W3C version-00 traceparent: 00-<32 hex trace id>-"
              "<16 hex span id>-<2 hex flags>, lowercase, ids not all zero", file=sys.stderr)
        return 2
    from ..transport import install_event_loop_policy

    install_event_loop_policy()
    return asyncio.run(_call(args, params))


async def _call(args: argparse.Namespace, params: object) -> int:
    import orjson

    from ..harness import DIALECT_171, HarnessClient, HarnessError, RpcCallError
    from ..harness.paths import params_to_uris

    try:
        async with HarnessClient(args.url, mode=args.mode, ca_file=args.ca_file,
                                 environment_id=args.environment_id) as client:
            session = await client.open_session(timeout=args.timeout)
            if args.paths == "uri" or (args.paths == "auto" and session.dialect == DIALECT_171):
                params = params_to_uris(params)
            result = await session.call(args.method, params, timeout=args.timeout,
                                        traceparent=args.traceparent)
            sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
            if args.notifications > 0:
                loop = asyncio.get_running_loop()
                end = loop.time() + args.notifications
                while (left := end - loop.time()) > 0:
                    try:
                        method, note = await session.next_notification(left)
                    except asyncio.TimeoutError:
                        break
                    sys.stdout.write(orjson.dumps({"method": method, "params": note}).decode() + "\n")
            sys.stdout.flush()
            return 0
    except RpcCallError as exc:
        print(f"error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except (HarnessError, OSError, asyncio.TimeoutError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
