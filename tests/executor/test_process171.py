"""The process side of the 0.171 dialect, in-process (docs/dialects.md; the live differential
cases are tests/conformance171 c50-c61).  Auto-mode rules for processes are checked here too:
``process/start`` tells its dialect by its ``cwd``, ``process/write`` by its ``writeId``."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from execrelay.executor import ExecServer, ExecServerConfig
from execrelay.executor.server import DETACHED_TTL_131, DETACHED_TTL_171
from execrelay.executor.uuidtext import uuid_error

from .conftest import Client, b64

THREAD_ID = "550e8400-e29b-41d4-a716-446655440000"
URN = "an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-]"


def params171(pid: str, argv: list[str], cwd: str = "file:///tmp", **kw: Any) -> dict:
    p = {"processId": pid, "argv": argv, "cwd": cwd, "env": {"PATH": "/usr/bin:/bin"}, "tty": False}
    p.update(kw)
    return p


def params131(pid: str, argv: list[str], **kw: Any) -> dict:
    return params171(pid, argv, cwd="/tmp", **kw)


@pytest.fixture(params=["0.171", "auto"])
async def server171(request: pytest.FixtureRequest) -> AsyncIterator[ExecServer]:
    """0.171 answers, fixed or (auto) told by a URI cwd."""
    srv = ExecServer(ExecServerConfig(compat=request.param, exited_process_retention=5.0))
    yield srv
    await srv.aclose()


@pytest.fixture
async def auto_server() -> AsyncIterator[ExecServer]:
    srv = ExecServer(ExecServerConfig(compat="auto", exited_process_retention=5.0))
    yield srv
    await srv.aclose()


async def client_of(server: ExecServer) -> Client:
    c = Client(server)
    await c.handshake()
    return c


def exited(events: list[dict]) -> dict:
    [ev] = [e for e in events if e["method"] == "process/exited"]
    return ev["params"]


# ------------------------------------------------------------------------------------ uuids

@pytest.mark.parametrize("text", [THREAD_ID, THREAD_ID.upper(), "urn:uuid:" + THREAD_ID, "{" + THREAD_ID + "}",
                                  THREAD_ID.replace("-", ""), THREAD_ID.replace("-", "").upper()])
def test_uuid_accepted_forms(text: str) -> None:
    assert uuid_error(text) is None


@pytest.mark.parametrize("text,message", [  # each answer probed from the 0.171.0 binary
    ("abc", "invalid length: expected length 32 for simple format, found 3"),
    ("", "invalid length: expected length 32 for simple format, found 0"),
    ("z" + THREAD_ID[1:], f"invalid character: expected {URN}, found `z` at 1"),
    (THREAD_ID[:-1] + "g", f"invalid character: expected {URN}, found `g` at 36"),
    (THREAD_ID[:-1] + "é", f"invalid character: expected {URN}, found `é` at 36"),
    ("{" + THREAD_ID, f"invalid character: expected {URN}, found `{{` at 1"),
    (THREAD_ID + "1", "invalid group length in group 4: expected 12, found 13"),
    (THREAD_ID[:-1], "invalid group length in group 4: expected 12, found 11"),
    ("550e84-00e29b-41d4-a716-446655440000", "invalid group length in group 0: expected 8, found 6"),
    ("550e8400e29b-41d4-a716-446655440000", "invalid group count: expected 5, found 4"),
    (THREAD_ID + "-", "invalid group count: expected 5, found 6"),
    ("550e8400e29b41d4a716446655440000ab", "invalid length: expected length 32 for simple format, found 34"),
    ("urn:uuid:550e8400e29b41d4a716446655440000", "invalid group count: expected 5, found 1"),
    ("{550e8400e29b41d4a716446655440000}", "invalid group count: expected 5, found 1"),
])
def test_uuid_error_texts(text: str, message: str) -> None:
    assert uuid_error(text) == message


# ---------------------------------------------------------------------------- process/start

async def test_start_result_and_events_carry_171_fields(server171: ExecServer) -> None:
    c = await client_of(server171)
    res = await c.result("process/start", params171("p", ["/bin/sh", "-c", "echo hi; exit 3"],
                                                     metadata={"threadId": THREAD_ID, "toolCallId": "call_1"}))
    assert res == {"processId": "p", "sandboxType": "none"} and list(res) == ["processId", "sandboxType"]
    events = await c.wait_closed("p")
    ev = exited(events)
    assert list(ev) == ["processId", "seq", "exitCode", "sandboxDenied"] and ev["exitCode"] == 3
    assert ev["sandboxDenied"] is False
    # what the process wrote before exiting precedes `exited`
    assert [e["method"] for e in sorted(events, key=lambda e: e["params"]["seq"])] == [
        "process/output", "process/exited", "process/closed"]
    read = await c.result("process/read", {"processId": "p"})
    assert list(read) == ["chunks", "nextSeq", "exited", "exitCode", "closed", "failure", "sandboxDenied"]
    # 0.171: nextSeq is past exited/closed when nothing was cut short
    assert read["nextSeq"] == 4 and read["sandboxDenied"] is False


async def test_read_next_seq_when_max_bytes_cuts(server171: ExecServer) -> None:
    c = await client_of(server171)
    await c.result("process/start", params171("p", ["/bin/sh", "-c", "echo one; sleep 0.2; echo two"]))
    await c.wait_closed("p")
    cut = await c.result("process/read", {"processId": "p", "maxBytes": 1})
    assert [ch["seq"] for ch in cut["chunks"]] == [1] and cut["nextSeq"] == 2
    rest = await c.result("process/read", {"processId": "p", "afterSeq": 1})
    assert [ch["seq"] for ch in rest["chunks"]] == [2] and rest["nextSeq"] == 5


async def test_start_param_errors_171(server171: ExecServer) -> None:
    c = await client_of(server171)
    cases: list[tuple[dict, int, str]] = [
        (params171("x", ["true"], metadata={"threadId": "abc"}), -32602,
         "invalid length: expected length 32 for simple format, found 3"),
        (params171("x", ["true"], metadata={"threadId": 5}), -32602, "invalid type: number, expected a string"),
        (params171("x", ["true"], metadata={"toolCallId": 5}), -32602, "invalid type: number, expected a string"),
        (params171("x", ["true"], metadata=5), -32602, "invalid type: number, expected struct ExecMetadata"),
        (params171("x", ["true"], sandbox={}), -32602, "missing field `permissions`"),
        (params171("x", ["true"], sandbox="none"), -32602,
         'invalid type: string "none", expected struct WireFileSystemSandboxContext'),
        (params171("x", ["true"], sandbox={"permissions": 5}), -32602,
         "invalid type: integer `5`, expected internally tagged enum ExecPermissionProfile"),
        (params171("x", ["true"], sandbox={"permissions": {}}), -32602, "missing field `type`"),
        (params171("x", ["true"], sandbox={"permissions": {"type": "x"}}), -32602,
         "unknown variant `x`, expected one of `managed`, `disabled`, `external`"),
        (params171("x", ["true"], sandbox={"permissions": {"type": "managed"}}), -32602, "missing field `file_system`"),
        (params171("x", ["true"], enforceManagedNetwork="x"), -32602, 'invalid type: string "x", expected a boolean'),
        (params171("x", ["true"], enforceManagedNetwork=None), -32602, "invalid type: null, expected a boolean"),
        (params171("x", ["true"], managedNetwork=5), -32602,
         "invalid type: number, expected struct ManagedNetworkSandboxContext"),
        (params171("x", ["true"], tty=5), -32602, "invalid type: number, expected a boolean"),
        (params171("x", ["true"], cwd="file:///t%00mp"), -32602, "'file:///t%00mp' is invalid on 'linux'"),
        (params171("x", ["true"], cwd="file://host/tmp"), -32602,
         "cwd URI `file://host/tmp` is not valid on this exec-server host: 'file://host/tmp' is invalid on 'linux'"),
        (params171("x", []), -32602, "argv must not be empty"),
    ]
    for params, code, message in cases:
        assert await c.error("process/start", params) == (code, message), params
    ok = params171("ok", ["true"], metadata=None, sandbox=None, enforceManagedNetwork=True, managedNetwork={"x": 1})
    assert (await c.result("process/start", ok))["sandboxType"] == "none"
    await c.wait_closed("ok")


async def test_cwd_host_is_checked_after_the_gate_and_syntax_before() -> None:
    srv = ExecServer(ExecServerConfig(compat="0.171"))
    try:
        c = Client(srv)
        gate = (-32600, "client must call initialize before using exec methods")
        assert await c.error("process/start", params171("x", ["true"], cwd="file://host/tmp")) == gate
        assert await c.error("process/start", params171("x", ["true"], cwd="/tmp")) == (
            -32602, "invalid URI: relative URL without a base")
        assert await c.error("process/start", params171("x", ["true"], metadata={"threadId": "x"})) == (
            -32602, f"invalid character: expected {URN}, found `x` at 1")
    finally:
        await srv.aclose()


async def test_spawn_errors_carry_kind(server171: ExecServer, tmp_path: Path) -> None:
    c = await client_of(server171)
    (tmp_path / "file").write_text("x")
    for params, kind, message in [
        (params171("a", ["/nonexistent/x"]), "spawnNotFound", "No such file or directory (os error 2)"),
        (params171("b", [str(tmp_path)]), "spawnPermissionDenied", "Permission denied (os error 13)"),
        (params171("c", ["true"], cwd=f"file://{tmp_path}/nope"), "spawnNotFound",
         "No such file or directory (os error 2)"),
        (params171("d", ["true"], cwd=f"file://{tmp_path}/file"), "spawnFailed", "Not a directory (os error 20)"),
    ]:
        resp = await c.call("process/start", params)
        assert resp["error"] == {"code": -32603, "data": {"kind": kind}, "message": message}, resp
        assert list(resp["error"]) == ["code", "data", "message"]
        assert c.raw[-1].startswith(b'{"error":{"code":-32603,"data":{"kind":')


# --------------------------------------------------------------------------- write / signal

async def test_write_id_is_required_and_idempotent(server171: ExecServer) -> None:
    c = await client_of(server171)
    await c.result("process/start", params171("cat", ["cat"], pipeStdin=True))
    if server171.config.compat == "0.171":
        assert await c.error("process/write", {"processId": "cat", "chunk": b64("x")}) == (
            -32602, "missing field `writeId`")
    assert await c.error("process/write", {"processId": "cat", "chunk": b64("x"), "writeId": 7}) == (
        -32602, "invalid type: number, expected a string")
    assert await c.error("process/write", {"processId": "cat", "chunk": b64("x"), "writeId": ""}) == (
        -32602, "writeId must not be empty")
    assert await c.error("process/write", {"processId": "cat", "chunk": "!!", "writeId": ""}) == (
        -32602, "Invalid symbol 33, offset 0.")
    assert await c.result("process/write", {"processId": "nope", "chunk": "", "writeId": "w"}) == {
        "status": "unknownProcess"}
    for data, write_id in [("a\n", "w1"), ("b\n", "w1"), ("c\n", "w2"), ("d\n", "w1")]:
        assert await c.result("process/write", {"processId": "cat", "chunk": b64(data), "writeId": write_id}) == {
            "status": "accepted"}
    await c.wait_for(lambda m: c.output("cat") == b"a\nc\n")
    await asyncio.sleep(0.2)
    assert c.output("cat") == b"a\nc\n"
    assert await c.result("process/terminate", {"processId": "cat"}) == {"running": True}
    assert exited(await c.wait_closed("cat"))["exitCode"] == 137


async def test_signal_interrupt_and_exit_codes(server171: ExecServer) -> None:
    c = await client_of(server171)
    await c.result("process/start", params171("i", ["sleep", "30"]))
    assert await c.error("process/signal", {"processId": "i"}) == (-32602, "missing field `signal`")
    for sig, message in [("SIGTERM", "unknown variant `SIGTERM`, expected `interrupt`"),
                         (5, "invalid type: number, expected string or map"),
                         ({}, "invalid value: map, expected map with a single key"),
                         ({"interrupt": 1}, "invalid type: number, expected unit")]:
        assert await c.error("process/signal", {"processId": "i", "signal": sig}) == (-32602, message)
    assert await c.error("process/signal", None) == (-32602, "invalid type: null, expected struct SignalParams")
    await asyncio.sleep(0.1)
    assert await c.result("process/signal", {"processId": "i", "signal": "interrupt"}) == {}
    assert exited(await c.wait_closed("i"))["exitCode"] == 130
    for pid in ["i", "nope"]:
        assert await c.result("process/signal", {"processId": pid, "signal": {"interrupt": None}}) == {}
    for pid, script, tty, code in [("st", "kill -TERM $$", False, 143), ("stt", "kill -TERM $$", True, 1),
                                   ("ex", "exit 7", True, 7)]:
        await c.result("process/start", params171(pid, ["/bin/sh", "-c", script], tty=tty))
        assert exited(await c.wait_closed(pid))["exitCode"] == code, pid


async def test_read_params_171_number_texts(server171: ExecServer) -> None:
    c = await client_of(server171)
    await c.result("process/start", params171("r", ["true"]))
    for params, message in [({"processId": "r", "afterSeq": -1}, "invalid number"),
                            ({"processId": "r", "afterSeq": 1.5}, "invalid number"),
                            ({"processId": "r", "waitMs": True}, "invalid type: boolean `true`, expected u64"),
                            ({"processId": 5}, "invalid type: number, expected a string")]:
        assert await c.error("process/read", params) == (-32602, message)
    await c.wait_closed("r")


# ------------------------------------------------------------------------------- 0.131 kept

async def test_compat_131_has_no_signal_and_keeps_old_forms() -> None:
    srv = ExecServer(ExecServerConfig(compat="0.131"))
    try:
        c = await client_of(srv)
        assert await c.error("process/signal", {"processId": "x", "signal": "interrupt"}) == (
            -32601, "exec-server stub does not implement `process/signal` yet")
        assert await c.result("process/start", params131("k", ["sleep", "30"])) == {"processId": "k"}
        await c.result("process/terminate", {"processId": "k"})
        ev = exited(await c.wait_closed("k"))
        assert ev == {"processId": "k", "seq": ev["seq"], "exitCode": -1}
        read = await c.result("process/read", {"processId": "k"})
        assert "sandboxDenied" not in read
        assert await c.error("process/read", {"processId": "k", "afterSeq": -1}) == (
            -32602, "invalid value: integer `-1`, expected u64")
        resp = await c.call("process/start", params131("a", ["/nonexistent/x"]))
        assert resp["error"] == {"code": -32603, "message": "No such file or directory (os error 2)"}
        # a writeId is ignored in 0.131 (unknown member)
        await c.result("process/start", params131("cat", ["cat"], pipeStdin=True))
        for _ in range(2):
            await c.result("process/write", {"processId": "cat", "chunk": b64("a"), "writeId": "w"})
        await c.wait_for(lambda m: c.output("cat") == b"aa")
        await c.result("process/terminate", {"processId": "cat"})
        await c.wait_closed("cat")
    finally:
        await srv.aclose()


# -------------------------------------------------------------------------------- auto mode

async def test_auto_session_remembers_native_start_as_131(auto_server: ExecServer) -> None:
    c = await client_of(auto_server)
    assert await c.result("process/start", params131("k", ["sleep", "30"])) == {"processId": "k"}
    session = auto_server.sessions[c.conn.session.id]  # type: ignore[union-attr]
    assert session.dialect == "0.131"
    # nothing in process/read or process/terminate tells: the session's dialect answers
    await c.result("process/terminate", {"processId": "k"})
    assert exited(await c.wait_closed("k"))["exitCode"] == -1
    assert "sandboxDenied" not in await c.result("process/read", {"processId": "k"})
    # a write without writeId is 0.131's; a URI cwd switches the session to 0.171
    assert await c.result("process/start", params171("u", ["true"])) == {"processId": "u", "sandboxType": "none"}
    assert session.dialect == "0.171"
    assert "sandboxDenied" in exited(await c.wait_closed("u"))


async def test_auto_write_without_write_id_is_131(auto_server: ExecServer) -> None:
    c = await client_of(auto_server)
    await c.result("process/start", params171("cat", ["cat"], pipeStdin=True))
    for _ in range(2):  # no writeId: delivered each time, as 0.131
        assert await c.result("process/write", {"processId": "cat", "chunk": b64("a")}) == {"status": "accepted"}
    await c.wait_for(lambda m: c.output("cat") == b"aa")
    assert c.conn.session.dialect == "0.131"  # type: ignore[union-attr]
    await c.result("process/terminate", {"processId": "cat"})
    await c.wait_closed("cat")


# --------------------------------------------------------------------------------- sessions

@pytest.mark.parametrize("compat,dialect,code,ttl", [
    ("0.171", None, -32010, DETACHED_TTL_171), ("0.131", None, -32600, DETACHED_TTL_131),
    ("auto", None, -32010, DETACHED_TTL_171), ("auto", "0.171", -32010, DETACHED_TTL_171),
    ("auto", "0.131", -32600, DETACHED_TTL_131)])
async def test_attached_resume_code_and_detached_lifetime(compat: str, dialect: str | None, code: int,
                                                          ttl: float) -> None:
    srv = ExecServer(ExecServerConfig(compat=compat))
    try:
        a = await client_of(srv)
        session = a.conn.session
        assert session is not None
        session.dialect = dialect
        b = Client(srv)
        assert await b.error("initialize", {"clientName": "b", "resumeSessionId": session.id}) == (
            code, f"session {session.id} is already attached to another connection")
        a.conn.close("test")
        assert session.expiry is not None
        remaining = session.expiry.when() - asyncio.get_running_loop().time()
        assert ttl - 1.0 < remaining <= ttl
        # the refused connection can still start its own session, and resume the detached one
        # from a third connection
        c = Client(srv)
        assert await c.handshake(resume=session.id) == session.id
        assert session.dialect == dialect
    finally:
        await srv.aclose()


def test_detached_lifetimes() -> None:
    # 0.171.0 was seen resumable at 74 s and gone at 81 s; 0.131.0 expires after 10 s
    assert DETACHED_TTL_131 == 10.0 and 74.0 < DETACHED_TTL_171 < 81.0


# ------------------------------------------------------------------------- message shapes

@pytest.mark.parametrize("raw,text", [  # each probed from the 0.171.0 binary
    ("5", "expected a JSON-RPC object"),
    ('[{"id":1,"method":"foo"}]', "expected a JSON-RPC object"),
    ("{}", "missing field `error`"),
    ('{"id":"a"}', "missing field `error`"),
    ('{"id":1,"error":{}}', "missing field `code`"),
    ('{"result":1}', "missing field `id`"),
    ('{"id":1,"method":5}', "invalid type: number, expected a string"),
    ('{"method":5}', "invalid type: number, expected a string"),
    ('{"method":"x","id":null}', "data did not match any variant of untagged enum RequestId"),
    ('{"id":1.5,"method":"x"}', "data did not match any variant of untagged enum RequestId"),
    ("nonsense", "expected ident at line 1 column 2"),
])
async def test_malformed_messages_171(raw: str, text: str) -> None:
    srv = ExecServer(ExecServerConfig(compat="0.171"))
    try:
        c = Client(srv)
        c.send(raw)
        err = await c.response(-1)
        assert err["error"] == {"code": -32600, "message": "failed to parse JSON-RPC message from exec-server stdio: "
                                                           + text}
        assert not c.closed_by_server
    finally:
        await srv.aclose()


@pytest.mark.parametrize("raw", ['{"id":1,"result":{}}', '{"method":"foo"}'])
async def test_client_response_or_unknown_notification_ends_connection_171(raw: str) -> None:
    srv = ExecServer(ExecServerConfig(compat="0.171"))
    try:
        c = Client(srv)
        c.send(raw)  # handled synchronously: the connection is closed on return
        assert c.closed_by_server and c.messages == []
    finally:
        await srv.aclose()
