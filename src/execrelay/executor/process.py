"""``process/*`` handlers: parameter checks and replies; the processes are
:class:`~execrelay.executor.local_process.ManagedProcess` objects kept in the session.

Both dialects (docs/dialects.md): 0.171 adds ``process/start`` fields (``metadata``,
``sandbox``, ``enforceManagedNetwork``, ``managedNetwork``; ``cwd`` is a ``file://`` URI),
``sandboxType``/``sandboxDenied`` in replies, ``writeId`` and ``process/signal``.  In auto mode
``process/start`` tells its dialect by its ``cwd`` and ``process/write`` by its ``writeId``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .dialect import COMPAT_131, COMPAT_171, COMPAT_AUTO, is_171, remember
from .envpolicy import build_env, parse_policy
from .errors import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, RpcError, spawn_error
from .fileuri import is_uri, to_path
from .local_process import ManagedProcess
from .params import (MISSING, b64_param, bad_type, describe, missing, opt_bool, opt_str, opt_u64, req_bool,
                     req_str, str_list, str_map, struct)
from .uuidtext import uuid_error
from .results import Deferred
from .session import Session, gate

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection


def _proc_session(conn: "RpcConnection") -> Session:
    return gate(conn, "exec")


def _told(conn: "RpcConnection", v171: bool) -> bool:
    """Auto mode: what this request shows is its dialect, remembered on the session
    (docs/dialects.md §Auto mode).  Callers check ``--compat`` first (no work in fixed modes)."""
    remember(conn, COMPAT_171 if v171 else COMPAT_131)
    return v171


def _cwd_171(cwd: str) -> tuple[str, RpcError | None]:
    """0.171 ``cwd``: a ``file://`` URI; syntax errors raise now (params are parsed before the
    gate), a URI naming no local path (host, drive) is returned as an error for after the gate,
    worded as 0.171 words it for a cwd (unlike :func:`.pathparam.path_arg`, which raises it)."""
    try:
        return to_path(cwd, INVALID_REQUEST), None
    except RpcError as exc:
        if exc.code != INVALID_REQUEST:
            raise
        serialised = exc.message.split("'")[1]
        return "", RpcError(INVALID_PARAMS, f"cwd URI `{serialised}` is not valid on this exec-server host: "
                                            f"{exc.message}")


def _opt_struct(p: dict, name: str, struct_name: str) -> dict | None:
    v = p.get(name)
    if v is None or type(v) is dict:
        return v
    raise bad_type(v, f"struct {struct_name}")


#: the member each ``sandbox.permissions`` variant requires first (0.171.0's decoder, probed)
_PERMISSION_FIRST_FIELD = {"managed": "file_system", "disabled": "windowsSandboxLevel", "external": "network"}


def _parse_171_fields(p: dict) -> None:
    """Validate what 0.171 adds to ``process/start`` (docs/dialects.md §New methods).

    execrelay runs processes without a sandbox and says so (``sandboxType: "none"``), so
    ``sandbox``, ``enforceManagedNetwork`` and ``managedNetwork`` are only checked for shape:
    ``sandbox`` down to its permission profile's variant (an internally tagged enum: its errors
    keep serde's ``integer `5``` wording), the rest of the profile is not interpreted.
    """
    meta = _opt_struct(p, "metadata", "ExecMetadata")
    if meta is not None:
        thread_id = opt_str(meta, "threadId")
        if thread_id is not None:
            error = uuid_error(thread_id)
            if error is not None:
                raise RpcError(INVALID_PARAMS, error)
        opt_str(meta, "toolCallId")
    sandbox = _opt_struct(p, "sandbox", "WireFileSystemSandboxContext")
    if sandbox is not None:
        perms = sandbox.get("permissions", MISSING)
        if perms is MISSING:
            raise missing("permissions")
        if type(perms) is not dict:
            text = f"invalid type: {describe(perms)}, expected internally tagged enum ExecPermissionProfile"
            raise RpcError(INVALID_PARAMS, text, message171=text)  # 0.171 keeps serde's wording here
        kind = perms.get("type", MISSING)
        if kind is MISSING:
            raise missing("type")
        first = _PERMISSION_FIRST_FIELD.get(kind) if type(kind) is str else None
        if first is None:
            raise RpcError(INVALID_PARAMS, f"unknown variant `{kind}`, expected one of `managed`, `disabled`, "
                                           "`external`")
        if first not in perms:
            raise missing(first)
    v = p.get("enforceManagedNetwork", MISSING)
    if v is not MISSING and v is not True and v is not False:
        raise bad_type(v, "a boolean")
    _opt_struct(p, "managedNetwork", "ManagedNetworkSandboxContext")


def process_start(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "ExecParams")
    process_id = req_str(p, "processId")
    argv: list[str] = str_list(p, "argv")  # type: ignore[assignment]
    cwd = req_str(p, "cwd")
    env = str_map(p, "env")
    policy = parse_policy(p.get("envPolicy"))
    tty = req_bool(p, "tty")
    pipe_stdin = opt_bool(p, "pipeStdin", False)
    arg0 = opt_str(p, "arg0")
    compat = conn.server.config.compat
    v171 = compat == COMPAT_171 if compat != COMPAT_AUTO else _told(conn, is_uri(cwd))
    cwd_error = None
    if v171:
        cwd, cwd_error = _cwd_171(cwd)
        _parse_171_fields(p)
    if not argv:
        raise RpcError(INVALID_PARAMS, "argv must not be empty")
    session = _proc_session(conn)
    if cwd_error is not None:
        raise cwd_error
    if process_id in session.processes:
        raise RpcError(INVALID_REQUEST, f"process {process_id} already exists")
    child_env = build_env(policy, env)  # type: ignore[arg-type]
    proc = ManagedProcess(conn.server, session, process_id, tty, v171)
    try:
        proc.spawn(argv, cwd, child_env, arg0, pipe_stdin)
    except OSError as exc:
        raise spawn_error(exc, v171) from None
    session.processes[process_id] = proc
    if v171:
        return {"processId": process_id, "sandboxType": "none"}
    return {"processId": process_id}


def process_read(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "ReadParams")
    process_id = req_str(p, "processId")
    after_seq = opt_u64(p, "afterSeq", 0)
    max_bytes = opt_u64(p, "maxBytes", None)
    wait_ms = opt_u64(p, "waitMs", 0)
    session = _proc_session(conn)
    proc = session.processes.get(process_id)
    if proc is None:
        raise RpcError(INVALID_REQUEST, f"unknown process id {process_id}")
    compat = conn.server.config.compat
    v171 = compat == COMPAT_171 if compat != COMPAT_AUTO else is_171(conn)
    if wait_ms and not proc.ready_for(after_seq):  # type: ignore[arg-type]
        return Deferred(proc.long_poll(after_seq, max_bytes, wait_ms, v171))  # type: ignore[arg-type]
    return proc.read_result(after_seq, max_bytes, v171)  # type: ignore[arg-type]


def process_write(conn: "RpcConnection", params: Any) -> Any:
    """``process/write``; with a ``writeId`` (0.171) idempotent: a repeated id is accepted and
    not delivered again.  In auto mode the presence of ``writeId`` tells the dialect."""
    p = struct(params, "WriteParams")
    process_id = req_str(p, "processId")
    chunk = req_str(p, "chunk")
    write_id = p.get("writeId", MISSING)
    compat = conn.server.config.compat
    v171 = compat == COMPAT_171 if compat != COMPAT_AUTO else _told(conn, write_id is not MISSING)
    if v171:
        if write_id is MISSING:
            raise missing("writeId")
        if type(write_id) is not str:
            raise bad_type(write_id, "a string")
    data = b64_param(chunk)
    if v171 and not write_id:  # after the chunk's check, as 0.171.0 (probed)
        raise RpcError(INVALID_PARAMS, "writeId must not be empty")
    session = _proc_session(conn)
    proc = session.processes.get(process_id)
    if proc is None:
        return {"status": "unknownProcess"}
    if not proc.stdin_open:
        return {"status": "stdinClosed"}
    if v171 and not proc.first_write(write_id):
        return {"status": "accepted"}
    if proc.killed and not proc.tty:
        # 0.131.0: after process/terminate the stdin pipe is gone (conformance FINDINGS F1)
        raise RpcError(INTERNAL_ERROR, "failed to write to process stdin")
    proc.write_stdin(data)
    return {"status": "accepted"}


def _signal(p: dict) -> None:
    """``signal``: serde's externally tagged enum with one unit variant, ``interrupt``."""
    sig = p.get("signal", MISSING)
    if sig is MISSING:
        raise missing("signal")
    if type(sig) is dict:
        if len(sig) != 1:
            raise RpcError(INVALID_PARAMS, "invalid value: map, expected map with a single key")
        [(sig, value)] = sig.items()
        if sig == "interrupt" and value is not None:
            raise bad_type(value, "unit")
    elif type(sig) is not str:
        raise bad_type(sig, "string or map")
    if sig != "interrupt":
        raise RpcError(INVALID_PARAMS, f"unknown variant `{sig}`, expected `interrupt`")


def process_signal(conn: "RpcConnection", params: Any) -> Any:
    """``process/signal`` (0.171): ``interrupt`` sends SIGINT to the process group; an unknown or
    exited process answers ``{}`` as well."""
    p = struct(params, "SignalParams")
    process_id = req_str(p, "processId")
    _signal(p)
    session = _proc_session(conn)
    proc = session.processes.get(process_id)
    if proc is not None:
        proc.interrupt()
    return {}


def process_terminate(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "TerminateParams")
    process_id = req_str(p, "processId")
    session = _proc_session(conn)
    proc = session.processes.get(process_id)
    if proc is None:
        return {"running": False}
    return {"running": proc.kill_group()}
