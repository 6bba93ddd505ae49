"""``execrelay exec-server``: a drop-in for ``codex exec-server`` 0.131.0 and 0.171.0.

``--listen ws://IP:PORT`` (default ``ws://127.0.0.1:0``) prints the bound URL as the first
stdout line; ``--listen stdio`` serves newline-delimited JSON on stdin/stdout.  ``--remote``
registers at a rendezvous through :mod:`execrelay.executor.remote`: with its static Noise key at
the Noise registry when the rendezvous has one (``--key-file``, ``--require-noise``,
``--no-noise``: docs/noise.md §Our executor), else as 0.131.0 does.
``-c/--enable/--disable`` are accepted for compatibility and ignored with a warning.

0.171.0's flags (docs/dialects.md §Command line): ``--environment-id`` (``--executor-id``, the
0.131.0 name, is kept as an alias), ``--ws-auth`` and its options, ``--exit-on-stdin-close``,
``--concurrent-requests 1``, ``--registration-bearer-stdin`` (and execrelay's
``--registration-bearer-file``: the executor's credential need not sit in the environment,
which its children could read).  Every other 0.171.0 flag is refused by name
(:data:`UNSUPPORTED_171`), never silently ignored.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys
from typing import Any

from ..executor.dialect import COMPAT_131, COMPAT_AUTO, COMPAT_CHOICES
from ._ops import StopSignals, add_log_args, parse_hostport, register_secret, setup_logging

log = logging.getLogger("execrelay.executor")

#: 0.171.0 flags execrelay does not implement -> whether the flag takes a value; each is
#: refused with "not supported by execrelay: --flag" (sandboxing, proxies, the Noise/Direct
#: registration transports and their credentials are not part of execrelay)
UNSUPPORTED_171: dict[str, bool] = {
    "--strict-config": False,
    "--linux-sandbox-pid-namespace": True,
    "--linux-sandbox-transparent-tcp": False,
    "--tcp-upstream-proxy": True,
    "--proxy-private-ips-via-upstream": False,
    "--remote-transport": True,
    "--use-agent-identity-auth": False,
    "--executor-credential-stdin": False,
    "--chatgpt-token-stdin": False,
    "--chatgpt-account-id": True,
    "--aws-sigv4": False,
    "--aws-profile": True,
    "--aws-region": True,
    "--aws-service": True,
}
_EXIT_ON_STDIN_CLOSE_ENV = "CODEX_EXEC_SERVER_EXIT_ON_STDIN_CLOSE"
#: 0.171.0 reads one newline-terminated bearer of at most this many bytes from stdin
_BEARER_MAX = 16 * 1024
_BEARER_LINE_ERROR = "expected a newline-terminated registration bearer of at most 16 KiB"


def _bool_value(text: str) -> bool:
    if text not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"invalid value '{text}': possible values: true, false")
    return text == "true"


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
    p.add_argument("--environment-id", "--executor-id", dest="environment_id", metavar="ID", default=None,
                   help="environment id to attach to when registering remotely (required with --remote; "
                        "--executor-id is the codex 0.131 name)")
    p.add_argument("--ca-file", metavar="PATH", default=None,
                   help="with --remote over https: CA bundle the rendezvous certificate must chain to "
                        "(default: the system store)")
    p.add_argument("--name", metavar="NAME", default=None, help="human-readable executor name")
    p.add_argument("--registration-bearer-stdin", action="store_true",
                   help="with --remote: read one registration bearer (a newline-terminated line) from stdin "
                        "instead of the environment, where every child process could read it")
    p.add_argument("--registration-bearer-file", metavar="PATH", default=None,
                   help="with --remote: read the registration bearer from this file instead of the environment")
    p.add_argument("--require-noise", action="store_true",
                   help="with --remote: serve only Noise-encrypted streams (plaintext ones are reset with "
                        "a reason) and register only at a Noise registry")
    p.add_argument("--no-noise", action="store_true",
                   help="with --remote: register without a Noise key (plaintext streams only, the "
                        "codex 0.131 registration)")
    p.add_argument("--key-file", metavar="PATH", default=None,
                   help="with --remote: the executor's static Noise key, kept across restarts (created "
                        "with mode 0600 if absent; default: a new key per process)")
    p.add_argument("--compat", choices=COMPAT_CHOICES, default=COMPAT_AUTO,
                   help="Codex dialect to answer in: auto (default: each session as its requests show, "
                        "the newer release when nothing tells), 0.131 or 0.171")
    p.add_argument("--ws-auth", choices=("capability-token", "signed-bearer-token"), default=None, metavar="MODE",
                   help="authentication for incoming websocket connections: capability-token or "
                        "signed-bearer-token")
    p.add_argument("--ws-token-file", metavar="PATH", default=None, help="path of the capability-token file")
    p.add_argument("--ws-token-sha256", metavar="HEX", default=None,
                   help="hex-encoded SHA-256 digest of the capability token")
    p.add_argument("--ws-shared-secret-file", metavar="PATH", default=None,
                   help="shared secret file for signed JWT bearer tokens")
    p.add_argument("--ws-issuer", metavar="ISSUER", default=None, help="expected issuer of signed JWT bearer tokens")
    p.add_argument("--ws-audience", metavar="AUDIENCE", default=None,
                   help="expected audience of signed JWT bearer tokens")
    p.add_argument("--ws-max-clock-skew-seconds", metavar="SECONDS", type=int, default=None,
                   help="maximum clock skew when validating signed JWT bearer tokens (default 30)")
    p.add_argument("--exit-on-stdin-close", nargs="?", const=True, default=None, type=_bool_value,
                   metavar="BOOL", help="with --remote: exit when the parent-owned standard-input pipe closes "
                                        f"[env: {_EXIT_ON_STDIN_CLOSE_ENV}]")
    p.add_argument("--concurrent-requests", metavar="COUNT", type=int, default=1,
                   help="requests processed at once per connection: execrelay answers them in order, one "
                        "at a time (only 1 is supported)")
    for flag, takes_value in UNSUPPORTED_171.items():
        dest = "unsupported_" + flag[2:].replace("-", "_")
        if takes_value:
            p.add_argument(flag, dest=dest, default=None, help=argparse.SUPPRESS)
        else:
            p.add_argument(flag, dest=dest, action="store_const", const=True, default=None, help=argparse.SUPPRESS)
    p.add_argument("--impl", choices=("picows", "websockets"), default=None, help=argparse.SUPPRESS)
    add_log_args(p)
    p.add_argument("--access-log", action="store_true",
                   help="log one line per answered JSON-RPC request (method, outcome, duration, session, "
                        "stream, trace context) at level info")
    p.add_argument("--metrics-listen", metavar="HOST:PORT", default=None,
                   help="serve Prometheus /metrics and /readyz on this address (docs/operations.md)")
    p.add_argument("--drain-timeout", metavar="SECONDS", type=float, default=0.0,
                   help="on SIGTERM, refuse new sessions and wait up to this long for running requests and "
                        "processes before killing them (default 0: stop at once); a second signal exits at once")
    p.set_defaults(func=run)


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def _check_171_flags(args: argparse.Namespace) -> tuple[int, str] | None:
    """(exit status, message) for flag combinations execrelay refuses, else None."""
    for flag in UNSUPPORTED_171:
        if getattr(args, "unsupported_" + flag[2:].replace("-", "_")) is not None:
            return 2, f"error: not supported by execrelay: {flag}"
    if args.concurrent_requests != 1:
        return 2, (f"error: not supported by execrelay: --concurrent-requests {args.concurrent_requests} "
                   "(requests on one connection are answered one at a time)")
    if args.listen is not None and args.remote is not None:
        return 2, "error: the argument '--listen <URL>' cannot be used with '--remote <URL>'"
    if args.registration_bearer_stdin and args.registration_bearer_file is not None:
        return 2, ("error: the argument '--registration-bearer-stdin' cannot be used with "
                   "'--registration-bearer-file <PATH>'")
    bearer_flag = args.registration_bearer_stdin or args.registration_bearer_file is not None
    required = []
    if (args.remote is not None or args.exit_on_stdin_close or bearer_flag
            or args.require_noise or args.no_noise or args.key_file is not None) and not args.environment_id:
        # the flag's name in the release we answer for (0.131.0 called it --executor-id)
        required.append("--executor-id <ID>" if args.compat == COMPAT_131 else "--environment-id <ID>")
    if args.require_noise and args.no_noise:
        return 2, "error: the argument '--require-noise' cannot be used with '--no-noise'"
    if args.key_file is not None and args.no_noise:
        return 2, "error: the argument '--key-file <PATH>' cannot be used with '--no-noise'"
    noise_flag = args.require_noise or args.no_noise or args.key_file is not None
    if (args.exit_on_stdin_close or bearer_flag or noise_flag) and args.remote is None:
        required.append("--remote <URL>")
    if required:
        return 2, "error: the following required arguments were not provided:\n  " + "\n  ".join(required)
    return None


def _valid_bearer(raw: bytes) -> str:
    """The bearer as an HTTP header can carry it: visible ASCII, not empty (else ValueError)."""
    if not raw or any(b < 0x21 or b > 0x7E for b in raw):
        raise ValueError("invalid registration bearer")
    return raw.decode("ascii")


def _read_bearer(args: argparse.Namespace) -> str | None:
    """The registration bearer from ``--registration-bearer-stdin`` (one line, as 0.171.0 reads
    it) or ``--registration-bearer-file``; None: the environment variable, as before.

    Off the environment, the executor's credential is not visible to the processes it starts
    (``/proc/<pid>/environ``); ValueError carries the message for a bad value."""
    if args.registration_bearer_stdin:
        line = sys.stdin.buffer.readline(_BEARER_MAX + 2)
        if not line.endswith(b"\n") or len(line.rstrip(b"\r\n")) > _BEARER_MAX:
            raise ValueError(_BEARER_LINE_ERROR)
        return _valid_bearer(line.rstrip(b"\r\n"))
    path = args.registration_bearer_file
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(_BEARER_MAX + 1)
    except OSError as exc:
        raise ValueError(f"failed to read registration bearer file `{path}`: {exc.strerror}") from None
    if len(raw) > _BEARER_MAX:
        raise ValueError(f"registration bearer file `{path}` is larger than 16 KiB")
    return _valid_bearer(raw.strip())


def _exit_on_stdin_close(args: argparse.Namespace) -> bool | None:
    """The flag, else ``CODEX_EXEC_SERVER_EXIT_ON_STDIN_CLOSE`` (true|false), as 0.171.0 reads it."""
    if args.exit_on_stdin_close is not None:
        return bool(args.exit_on_stdin_close)
    env = os.environ.get(_EXIT_ON_STDIN_CLOSE_ENV)
    if env is None:
        return None
    return _bool_value(env)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    register_secret(os.environ.get("CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"))
    if args.drain_timeout < 0:
        print("error: --drain-timeout must not be negative", file=sys.stderr)
        return 2
    metrics_addr = None
    if args.metrics_listen is not None:
        try:
            metrics_addr = parse_hostport(args.metrics_listen, "--metrics-listen")
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    args.metrics_addr = metrics_addr
    try:
        args.exit_on_stdin_close = _exit_on_stdin_close(args)
    except argparse.ArgumentTypeError:
        print(f"error: invalid value '{os.environ.get(_EXIT_ON_STDIN_CLOSE_ENV)}' for '--exit-on-stdin-close'\n"
              "  [possible values: true, false]", file=sys.stderr)
        return 2
    refused = _check_171_flags(args)
    if refused is not None:
        print(refused[1], file=sys.stderr)
        return refused[0]
    from ..executor.wsauth import WsAuthConfig, WsAuthConfigError

    auth_config = WsAuthConfig(mode=args.ws_auth, token_file=args.ws_token_file, token_sha256=args.ws_token_sha256,
                               shared_secret_file=args.ws_shared_secret_file, issuer=args.ws_issuer,
                               audience=args.ws_audience, max_clock_skew_seconds=args.ws_max_clock_skew_seconds)
    try:
        auth = auth_config.policy()  # reads the secret files once, at start-up
    except WsAuthConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    for c in args.config:
        _warn(f"ignoring -c {c}: config overrides are not supported by execrelay exec-server")
    for f in args.enable + args.disable:
        _warn(f"ignoring feature flag {f}")

    from ..executor.tuning import tune_malloc
    from ..transport import install_event_loop_policy

    tune_malloc()
    install_event_loop_policy()
    if args.remote is not None:
        try:
            bearer = _read_bearer(args)
        except ValueError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        register_secret(bearer)
        return asyncio.run(_run_remote(args, bearer))

    from ..executor.serve import ListenUrlError, parse_listen

    try:
        kind, host, port = parse_listen(args.listen or "ws://127.0.0.1:0")
    except ListenUrlError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if auth is not None and kind == "stdio":
        print("Error: WebSocket auth requires a WebSocket listener, not stdio", file=sys.stderr)
        return 1
    return asyncio.run(_run_local(kind, host, port, args, auth))


def _watch_stdin(stop: "asyncio.Future[None]") -> None:
    """``--exit-on-stdin-close``: set ``stop`` once the parent's end of stdin closes (EOF or error)."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()

    def readable() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            if not stop.done():
                stop.set_result(None)

    os.set_blocking(fd, False)
    loop.add_reader(fd, readable)


async def _wait(stop: "asyncio.Future[None]", main: "asyncio.Future | None" = None) -> None:
    waits = [stop] if main is None else [stop, main]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)


def _os_error_text(exc: OSError) -> str:
    code = exc.errno or 0
    text = "Address in use" if code == errno.EADDRINUSE else exc.strerror or str(exc)
    return f"Error: {text} (os error {code})"


class _Ops:
    """What every mode shares: the server with its access log, the metrics port, the drain."""

    def __init__(self, args: argparse.Namespace) -> None:
        from ..executor import ExecServer, ExecServerConfig
        from ..executor.opshttp import DRAINING, READY, STARTING

        self.args = args
        self.signals = StopSignals(asyncio.get_running_loop())
        self.server = ExecServer(ExecServerConfig(compat=args.compat))
        self.server.metrics.set_info(mode="remote" if args.remote is not None else
                                     "stdio" if (args.listen or "").startswith("stdio") else "websocket",
                                     compat=args.compat)
        if args.access_log:
            from ..executor.accesslog import access_hook

            self.server.metrics.set_access_hook(access_hook)
        self.ready = lambda: False
        self.ops: Any = None
        self._states = (READY, STARTING, DRAINING)

    def state(self) -> str:
        ready, starting, draining = self._states
        if self.server.draining:
            return draining
        return ready if self.ready() else starting

    async def start_metrics(self) -> bool:
        """Serve ``--metrics-listen`` if given; False (message printed) when it cannot listen."""
        if self.args.metrics_addr is None:
            return True
        from ..executor.opshttp import OpsServer

        self.ops = OpsServer(self.server.metrics, self.state)
        try:
            url = await self.ops.start(*self.args.metrics_addr)
        except OSError as exc:
            print(_os_error_text(exc).replace("Error:", "Error: --metrics-listen:", 1), file=sys.stderr)
            return False
        log.info("metrics listening", extra={"fields": {"url": url}})
        return True

    async def drain(self) -> bool:
        """The first stop signal came: drain (docs/operations.md §Graceful drain).  False when a
        second signal cut it short."""
        from ..executor.drain import drain

        outcome = await drain(self.server, self.args.drain_timeout, self.signals.abort)
        return outcome != "aborted"

    async def aclose(self) -> None:
        await self.server.aclose()
        if self.ops is not None:
            await self.ops.aclose()


async def _run_local(kind: str, host: str, port: int, args: argparse.Namespace, auth: Any = None) -> int:
    from ..executor.serve import serve_stdio, serve_ws

    ops = _Ops(args)
    server, stop = ops.server, ops.signals.stop
    try:
        if not await ops.start_metrics():
            return 1
        if kind == "stdio":
            main = asyncio.ensure_future(serve_stdio(server))
            ops.ready = lambda: not main.done()
            await _wait(stop, main)
            if not main.done():
                await ops.drain()
            main.cancel()
            return 0
        try:
            ws = await serve_ws(server, host, port, impl=args.impl, auth=auth)
        except OSError as exc:
            print(_os_error_text(exc), file=sys.stderr)
            return 1
        ops.ready = lambda: True
        print(ws.url, flush=True)
        log.info("listening", extra={"fields": {"url": ws.url}})
        await _wait(stop)
        completed = await ops.drain()
        ws.close()
        return 0 if completed else 1
    finally:
        await ops.aclose()


def _noise_settings(args: argparse.Namespace) -> tuple[str, Any]:
    """``(noise setting, static key or None)`` from the Noise flags (docs/noise.md §Our
    executor); KeyFileError for an unusable key file."""
    from ..executor.noise_key import load_or_create
    from ..executor.remote import NOISE_AUTO, NOISE_OFF, NOISE_REQUIRE

    if args.no_noise:
        return NOISE_OFF, None
    identity = None
    if args.key_file is not None:
        identity, created = load_or_create(args.key_file)
        if created:
            print(f"created Noise key file {args.key_file}", file=sys.stderr, flush=True)
    return (NOISE_REQUIRE if args.require_noise else NOISE_AUTO), identity


async def _run_remote(args: argparse.Namespace, bearer: str | None) -> int:
    # imported here: the local transports never load the relay stack
    from ..executor.noise_key import KeyFileError
    from ..executor.remote import run_remote_executor

    try:
        noise, identity = _noise_settings(args)
    except KeyFileError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    ops = _Ops(args)
    server, stop = ops.server, ops.signals.stop
    try:
        if not await ops.start_metrics():
            return 1
        executors: list[Any] = []
        main = asyncio.ensure_future(run_remote_executor(
            server=server, remote_url=args.remote, executor_id=args.environment_id, name=args.name,
            ca_file=args.ca_file, bearer_token=bearer, noise=noise, identity=identity,
            started=executors.append))
        ops.ready = lambda: bool(executors) and executors[0].connected.is_set()
        if args.exit_on_stdin_close:
            _watch_stdin(stop)
        await _wait(stop, main)
        if main.done():
            return int(main.result() or 0)
        completed = await ops.drain()
        if executors:
            executors[0].close(_draining_reason())
            await asyncio.wait([main], timeout=5.0)
        main.cancel()
        return 0 if completed else 1
    finally:
        await ops.aclose()


def _draining_reason() -> str:
    from ..executor.drain import DRAINING_REASON

    return DRAINING_REASON
