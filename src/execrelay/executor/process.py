"""``process/*`` handlers: parameter checks and replies; the processes are
:class:`~execrelay.executor.local_process.ManagedProcess` objects kept in the session."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .envpolicy import build_env, parse_policy
from .errors import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, RpcError, spawn_error
from .local_process import ManagedProcess
from .params import (MISSING, b64decode, bad_type, missing, opt_bool, opt_str, opt_u64, req_bool,
                     req_str, str_map, struct)
from .results import Deferred
from .session import Session, gate

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection


def _proc_session(conn: "RpcConnection") -> Session:
    return gate(conn, "exec")


def process_start(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "ExecParams")
    process_id = req_str(p, "processId")
    argv = p.get("argv", MISSING)
    if argv is MISSING:
        raise missing("argv")
    if type(argv) is not list:
        raise bad_type(argv, "a sequence")
    for a in argv:
        if type(a) is not str:
            raise bad_type(a, "a string")
    cwd = req_str(p, "cwd")
    env = str_map(p, "env")
    policy = parse_policy(p.get("envPolicy"))
    tty = req_bool(p, "tty")
    pipe_stdin = opt_bool(p, "pipeStdin", False)
    arg0 = opt_str(p, "arg0")
    if not argv:
        raise RpcError(INVALID_PARAMS, "argv must not be empty")
    session = _proc_session(conn)
    if process_id in session.processes:
        raise RpcError(INVALID_REQUEST, f"process {process_id} already exists")
    child_env = build_env(policy, env)  # type: ignore[arg-type]
    proc = ManagedProcess(conn.server, session, process_id, tty)
    try:
        proc.spawn(argv, cwd, child_env, arg0, pipe_stdin)
    except OSError as exc:
        raise spawn_error(exc) from None
    session.processes[process_id] = proc
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
    if wait_ms and not proc.ready_for(after_seq):  # type: ignore[arg-type]
        return Deferred(proc.long_poll(after_seq, max_bytes, wait_ms))  # type: ignore[arg-type]
    return proc.read_result(after_seq, max_bytes)  # type: ignore[arg-type]


def process_write(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "WriteParams")
    process_id = req_str(p, "processId")
    chunk = req_str(p, "chunk")
    try:
        data = b64decode(chunk)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, str(exc)) from None
    session = _proc_session(conn)
    proc = session.processes.get(process_id)
    if proc is None:
        return {"status": "unknownProcess"}
    if not proc.stdin_open:
        return {"status": "stdinClosed"}
    if proc.killed and not proc.tty:
        # 0.131.0: after process/terminate the stdin pipe is gone (conformance FINDINGS F1)
        raise RpcError(INTERNAL_ERROR, "failed to write to process stdin")
    proc.write_stdin(data)
    return {"status": "accepted"}


def process_terminate(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "TerminateParams")
    process_id = req_str(p, "processId")
    session = _proc_session(conn)
    proc = session.processes.get(process_id)
    if proc is None:
        return {"running": False}
    return {"running": proc.kill_group()}
