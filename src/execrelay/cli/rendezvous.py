"""``execrelay rendezvous``: run the rendezvous, mint tokens, print harness URLs.

See docs/rendezvous.md §Tokens and §URLs and endpoints.

    execrelay rendezvous --listen HOST:PORT [--secret-file PATH] [--tls-cert FILE --tls-key FILE]
        [--nats nats://HOST:PORT[,...] --node-id NAME]
    execrelay rendezvous token --role executor|harness --executor-id ID [--ttl SECONDS]
    execrelay rendezvous harness-url --executor-id ID --base ws://HOST:PORT [--ttl SECONDS]

Secret: ``--secret-file`` or ``EXECRELAY_RENDEZVOUS_SECRET`` (>= 16 bytes).  The server falls
back to a random in-memory secret; the token commands refuse to (their tokens would be useless).
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from ._ops import StopSignals, add_log_args, parse_hostport, register_secret, setup_logging


# Numeric tunables as (RendezvousConfig field, type, metavar, help); the option is the field
# with dashes.  Two groups, to keep the --help order (limits, TLS and metrics, admission).
_Numeric = tuple[str, type, str, str]
_LIMITS: tuple[_Numeric, ...] = (
    ("max_frame_bytes", int, "BYTES", "larger relay frames are refused and their stream Reset"),
    ("harness_grace", float, "SECONDS", "how long a reliable stream outlives its harness socket"),
    ("executor_grace", float, "SECONDS", "how long streams wait for an absent executor"),
    ("heartbeat", float, "SECONDS",
     "websocket ping interval; a peer missing its pong is dropped (0: off)"),
    ("harness_queue_bytes", int, "BYTES",
     "outbound bytes queued for one harness before it is cut off"),
)
_ADMISSION: tuple[_Numeric, ...] = (
    ("handshake_timeout", float, "SECONDS",
     "a connection must complete its request (or upgrade) within this; idle keep-alive HTTP "
     "connections are closed after it"),
    ("max_unauthenticated", int, "N",
     "connections not yet authenticated; beyond it the oldest is dropped"),
    ("max_streams_per_harness", int, "N", "streams one harness socket may hold (more are Reset)"),
    ("max_streams_per_executor", int, "N",
     "streams one executor may have over all its harnesses"),
    ("stream_rate", float, "PER_SECOND", "new streams per second per harness socket (token bucket)"),
    ("stream_burst", int, "N", "burst size of --stream-rate"),
)


def _add_numeric(p: argparse.ArgumentParser, rows: tuple[_Numeric, ...]) -> None:
    for field, kind, metavar, text in rows:
        p.add_argument("--" + field.replace("_", "-"), type=kind, metavar=metavar, help=text)


#: Options that override the RendezvousConfig field of the same name when given.
_TUNABLES = (*(row[0] for row in _LIMITS + _ADMISSION), "public_url", "trust_forwarded_proto")


def _add_mint_options(sp: argparse.ArgumentParser) -> None:
    """What both token commands take: whose token, how long it lives, the secret."""
    sp.add_argument("--executor-id", required=True)
    sp.add_argument("--ttl", type=float, default=3600.0, metavar="SECONDS")
    sp.add_argument("--secret-file", metavar="PATH", default=argparse.SUPPRESS)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("rendezvous", help="run the rendezvous + registry service, mint tokens",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                   help="address to serve on (port 0 picks a free port; default %(default)s)")
    p.add_argument("--secret-file", metavar="PATH", help="file holding the token secret (>= 16 bytes)")
    p.add_argument("--public-url", metavar="ws://HOST:PORT",
                   help="websocket base put in registry responses (default: from the request)")
    # Tunables default to None: RendezvousConfig holds the defaults (importing it here would
    # load aiohttp for every execrelay command), and only the options given override them.
    _add_numeric(p, _LIMITS)
    p.add_argument("--tls-cert", metavar="FILE",
                   help="serve https/wss with this certificate chain (PEM, leaf first); needs --tls-key")
    p.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert (PEM)")
    p.add_argument("--trust-forwarded-proto", action="store_true", default=None,
                   help="registry answers wss:// when X-Forwarded-Proto is https (only behind a "
                        "TLS-terminating proxy)")
    p.add_argument("--metrics-token-file", metavar="PATH",
                   help="GET /metrics then needs 'Authorization: Bearer <file contents>'")
    _add_numeric(p, _ADMISSION)
    p.add_argument("--nats", metavar="nats://HOST:PORT[,...]",
                   help="join a cluster of rendezvous nodes through these NATS servers (the full "
                        "list; docs/rendezvous.md §Several nodes); without it: one node")
    p.add_argument("--node-id", metavar="NAME", help="this node's name in the cluster (needs --nats)")
    p.add_argument("--websockets", choices=("picows", "aiohttp"), default="picows",
                   help="server side of the websocket paths: picows (default; aiohttp when picows "
                        "is unusable or EXECRELAY_PURE is set) or aiohttp (docs/rendezvous.md "
                        "§URLs and endpoints)")
    add_log_args(p)
    p.add_argument("--frames", choices=("compiled", "python"), default="compiled",
                   help=argparse.SUPPRESS)  # benchmarks: python = the per-frame path in Python
    p.add_argument("--drain-timeout", metavar="SECONDS", type=float, default=0.0,
                   help="on SIGTERM, refuse new connections and streams but keep routing the open ones "
                        "for up to this long (default 0: stop at once); a second signal stops at once")
    p.set_defaults(func=run)
    sub = p.add_subparsers(dest="rendezvous_command", metavar="{token,harness-url}")

    t = sub.add_parser("token", help="print a signed token")
    t.add_argument("--role", required=True, choices=("executor", "harness"))
    _add_mint_options(t)
    add_log_args(t)
    t.set_defaults(func=run_token)

    h = sub.add_parser("harness-url", help="print a signed harness websocket URL")
    _add_mint_options(h)
    h.add_argument("--base", required=True, metavar="ws://HOST:PORT")
    add_log_args(h)
    h.set_defaults(func=run_harness_url)


def _secret(args: argparse.Namespace, allow_random: bool) -> bytes | None:
    from ..rendezvous.tokens import SecretError, load_secret

    try:
        secret, source = load_secret(getattr(args, "secret_file", None), allow_random=allow_random)
    except SecretError as exc:
        print(f"execrelay rendezvous: {exc}", file=sys.stderr)
        return None
    register_secret(secret)
    if allow_random and source.startswith("random"):
        print("execrelay rendezvous: no secret configured; using a random in-memory secret "
              "(tokens minted elsewhere will not work)", file=sys.stderr)
    return secret


def run_token(args: argparse.Namespace) -> int:
    from ..rendezvous.tokens import mint

    setup_logging(args)
    secret = _secret(args, allow_random=False)
    if secret is None:
        return 2
    print(mint(secret, args.role, args.executor_id, args.ttl))
    return 0


def run_harness_url(args: argparse.Namespace) -> int:
    from ..rendezvous.server import harness_url
    from ..rendezvous.tokens import mint

    if not args.base.startswith(("ws://", "wss://")):
        print("execrelay rendezvous harness-url: --base must start with ws:// or wss://", file=sys.stderr)
        return 2
    setup_logging(args)
    secret = _secret(args, allow_random=False)
    if secret is None:
        return 2
    print(harness_url(args.base, args.executor_id, mint(secret, "harness", args.executor_id, args.ttl)))
    return 0


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    if args.drain_timeout < 0:
        print("execrelay rendezvous: --drain-timeout must not be negative", file=sys.stderr)
        return 2
    try:
        host, port = parse_hostport(args.listen)
    except ValueError as exc:
        print(f"execrelay rendezvous: {exc}", file=sys.stderr)
        return 2
    if (args.tls_cert is None) != (args.tls_key is None):
        print("execrelay rendezvous: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    cluster = None
    if args.nats is not None or args.node_id is not None:
        cluster = _cluster_config(args)
        if cluster is None:
            return 2
    secret = _secret(args, allow_random=True)
    if secret is None:
        return 2
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        uvloop = None
    runner = uvloop.run if uvloop is not None else asyncio.run
    return runner(_serve(args, secret, host, port, cluster))


def _cluster_config(args: argparse.Namespace) -> Any:
    """The ClusterConfig of ``--nats``/``--node-id`` (None after printing why it is bad)."""
    if args.nats is None or args.node_id is None:
        print("execrelay rendezvous: --nats and --node-id go together", file=sys.stderr)
        return None
    from ..rendezvous.cluster import ClusterConfig, ClusterError, parse_servers

    try:
        return ClusterConfig(parse_servers(args.nats), args.node_id)
    except ClusterError as exc:
        print(f"execrelay rendezvous: {exc}", file=sys.stderr)
        return None


async def _serve(args: argparse.Namespace, secret: bytes, host: str, port: int,
                 cluster: Any = None) -> int:
    from ..rendezvous.server import RendezvousServer

    overrides = {name: value for name in _TUNABLES
                 if (value := getattr(args, name)) is not None}
    if overrides.get("heartbeat") == 0:
        overrides["heartbeat"] = None  # 0 on the command line: no pings
    ssl_context = None
    try:
        if args.metrics_token_file:
            with open(args.metrics_token_file, encoding="utf-8") as fh:
                overrides["metrics_token"] = fh.read().strip()
            register_secret(overrides["metrics_token"])
        if args.tls_cert:
            from ..transport.tls import server_context

            ssl_context = server_context(args.tls_cert, args.tls_key)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        print(f"execrelay rendezvous: {exc}", file=sys.stderr)
        return 2
    if overrides.get("metrics_token") == "":
        print("execrelay rendezvous: --metrics-token-file is empty", file=sys.stderr)
        return 2
    server = RendezvousServer(secret, **overrides)
    if args.websockets == "aiohttp":
        server.fast_websockets = False
    if args.frames == "python":
        server.fast_frames = False
    signals = StopSignals(asyncio.get_running_loop(), _STOP_SIGNALS)
    node = None
    if cluster is not None:
        # Join before listening: no socket is accepted before its node can claim or route it.
        from ..rendezvous.cluster import ClusterError, ClusterNode

        node = ClusterNode(server, cluster.servers, cluster.node_id, cluster)
        try:
            await node.start()
        except ClusterError as exc:
            print(f"execrelay rendezvous: {exc}", file=sys.stderr)
            return 1
    try:
        await server.start(host, port, ssl_context=ssl_context)
    except OSError as exc:
        print(f"execrelay rendezvous: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        if node is not None:
            await node.close()
        return 1
    if node is not None:
        print(node.describe(), flush=True)
    print(f"listening on {server.url}", flush=True)
    try:
        await signals.stop
        if args.drain_timeout > 0:
            # docs/operations.md §Graceful drain
            if await server.drain(args.drain_timeout, signals.abort) == "aborted":
                return 1
    finally:
        if node is not None:
            await node.close()
        await server.aclose()
    return 0


#: the rendezvous stops on these (SIGHUP is left to its default, as before)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
