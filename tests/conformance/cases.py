"""The 65 numbered exec-server conformance cases, as implementation-agnostic coroutines.

The behaviour they pin down is documented in docs/exec-server.md.

Each case gets a ``Ctx`` (server URL, scratch dir, HTTP fixture) and asserts exact outcomes.
Expectations follow the real codex 0.131.0 binary; where it differs from the earlier written
description, the binary wins and the difference is written down in FINDINGS.md. Replies are
compared after ``normalise`` (uuids, timestamps and peer addresses replaced), so ours and theirs
must match byte-for-byte modulo those.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Hashable, TypeVar

from interop.procs import ServerProcess, isolated_env
from interop.wsclient import UUID_RE, Closed, JsonWsClient, is_compact, key_shapes, normalise

CaseFn = Callable[["Ctx"], Awaitable[None]]


@dataclass
class Case:
    number: int
    slug: str
    fn: CaseFn
    timeout: float


F = TypeVar("F", bound=Callable[..., Awaitable[None]])


def registrar(cases: dict[int, Case]) -> Callable[..., Callable[[F], F]]:
    """A ``@case(number, slug, timeout)`` decorator that records each case in ``cases`` (one
    per suite: 0.131 here, 0.171 in tests/conformance171/cases.py)."""
    def case(number: int, slug: str, timeout: float = 20.0) -> Callable[[F], F]:
        def deco(fn: F) -> F:
            assert number not in cases, number
            cases[number] = Case(number, slug, fn, timeout)
            return fn
        return deco
    return case


CASES: dict[int, Case] = {}
case = registrar(CASES)


async def run_case(spec: Case, ctx: Ctx, impl: str, key: Hashable,
                   real_shapes: dict[Any, dict[str, set[tuple[str, ...]]]], release: str) -> None:
    """Run one case on ``ctx`` within its timeout, then the differential wire checks: compact
    JSON like serde, and (when the ``real`` half of ``key`` ran earlier in this session, recorded
    in ``real_shapes``) exactly the same object key sequences as codex ``release``."""
    try:
        await asyncio.wait_for(spec.fn(ctx), spec.timeout)
    finally:
        await ctx.close_all()
    assert ctx.non_compact() == [], "server output is not compact serde-style JSON"
    shapes = ctx.wire_shapes()
    if impl == "real":
        real_shapes[key] = shapes
    elif key in real_shapes:
        real = real_shapes[key]
        for kind in sorted(set(shapes) & set(real)):
            ours_k, real_k = shapes[kind], real[kind]
            assert ours_k == real_k, (
                f"object keys or key order in {kind!r} messages differ from codex {release}: "
                f"only ours {sorted(ours_k - real_k)}, only real {sorted(real_k - ours_k)}")


@dataclass
class Ctx:
    impl: str
    url: str
    tmp: Path
    http: str
    argv_for: Callable[[str], list[str]]
    clients: list[JsonWsClient] = field(default_factory=list)

    async def conn(self, init: bool = True, initialized: bool = True) -> JsonWsClient:
        c = await JsonWsClient.connect(self.url)
        self.clients.append(c)
        if init:
            await c.initialize("t", initialized=initialized)
        return c

    async def close_all(self) -> None:
        for c in self.clients:
            await c.close()

    def wire_shapes(self) -> dict[str, set[tuple[str, ...]]]:
        """Key sequences of every object the server sent in this case, per message kind.

        Kind is ``"response"`` for replies (deterministic per case) and the method name for
        notifications (which ones were read before the case ended depends on timing, so only
        methods seen by both servers are compared).
        """
        shapes: dict[str, set[tuple[str, ...]]] = {}
        for c in self.clients:
            for raw in c.raw:
                msg = json.loads(raw)
                kind = msg["method"] if "method" in msg and "id" not in msg else "response"
                key_shapes(msg, shapes.setdefault(kind, set()))
        return shapes

    def non_compact(self) -> list[str | bytes]:
        return [raw for c in self.clients for raw in c.raw if not is_compact(raw)]


# ---------------------------------------------------------------------------------------------
# helpers

def b64(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def error(code: int, message: str, id: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}, "id": id}


def assert_error(resp: dict[str, Any], code: int, message: str | None = None, *,
                 prefix: str | None = None, contains: str | None = None) -> None:
    assert set(resp) == {"error", "id"}, resp
    assert set(resp["error"]) == {"code", "message"}, resp
    assert resp["error"]["code"] == code, resp
    msg = resp["error"]["message"]
    if message is not None:
        assert normalise(msg) == normalise(message), resp
    if prefix is not None:
        assert msg.startswith(prefix), resp
    if contains is not None:
        assert contains in msg, resp


def assert_result(resp: dict[str, Any], expected: Any = None) -> Any:
    assert set(resp) == {"id", "result"}, resp
    if expected is not None:
        assert normalise(resp["result"]) == normalise(expected), resp
    return resp["result"]


def start_params(pid: str, argv: list[str], **kw: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"processId": pid, "argv": argv, "cwd": "/tmp", "env": {"PATH": "/usr/bin:/bin"},
                         "tty": False, "arg0": None}
    p.update(kw)
    return p


def output_bytes(events: list[dict[str, Any]], stream: str | None = None) -> bytes:
    return b"".join(unb64(e["params"]["chunk"]) for e in events
                    if e["method"] == "process/output" and (stream is None or e["params"]["stream"] == stream))


async def run_to_close(c: JsonWsClient, pid: str, argv: list[str], timeout: float = 10.0,
                       **kw: Any) -> list[dict[str, Any]]:
    assert_result(await c.call("process/start", start_params(pid, argv, **kw)), {"processId": pid})
    return await c.wait_process_closed(pid, timeout)


async def wait_output(c: JsonWsClient, pid: str, needle: bytes, timeout: float = 10.0) -> bytes:
    await c.collect(lambda _: needle in output_bytes(c.process_events(pid)), timeout)
    return output_bytes(c.process_events(pid))


P1_ARGV = ["/bin/sh", "-c", "printf 'out1\\n'; printf 'err1\\n' >&2; exit 3"]


def md(path: str, **kw: Any) -> dict[str, Any]:
    return {"path": path, **kw}


# ---------------------------------------------------------------------------------------------
# Envelope and handshake

@case(1, "initialize-result")
async def c01(ctx: Ctx) -> None:
    c = await ctx.conn(init=False)
    await c.send('{"id":1,"method":"initialize","params":{"clientName":"t"}}')
    resp = await c.response()
    assert normalise(resp) == {"id": 1, "result": {"sessionId": "<uuid>"}}
    assert UUID_RE.match(resp["result"]["sessionId"]), resp
    assert c.frame_types == ["text"]


@case(2, "initialize-harness-shape")
async def c02(ctx: Ctx) -> None:
    c = await ctx.conn(init=False)
    resp = await c.call("initialize", {"clientName": "t", "resumeSessionId": None}, id=1)
    assert normalise(resp) == {"id": 1, "result": {"sessionId": "<uuid>"}}
    other = await ctx.conn(init=False)
    resp2 = await other.call("initialize", {"clientName": "codex-environment", "resumeSessionId": None}, id=1)
    assert resp2["result"]["sessionId"] != resp["result"]["sessionId"]


@case(3, "request-id-echo")
async def c03(ctx: Ctx) -> None:
    for rid in ["abc", -5, 0, 9223372036854775807]:
        c = await ctx.conn(init=False)
        resp = await c.call("initialize", {"clientName": "t"}, id=rid)
        assert resp["id"] == rid and type(resp["id"]) is type(rid), resp
        await c.notify("initialized", {})
        resp = await c.call("fs/getMetadata", md("/tmp"), id=rid)
        assert resp["id"] == rid and type(resp["id"]) is type(rid) and "result" in resp, resp
        resp = await c.call("foo/bar", id=rid)
        assert resp["id"] == rid and type(resp["id"]) is type(rid) and "error" in resp, resp


@case(4, "jsonrpc-member-ignored")
async def c04(ctx: Ctx) -> None:
    c = await ctx.conn()
    for version in ("2.0", "1.0"):
        await c.send({"jsonrpc": version, "id": 7, "method": "fs/getMetadata", "params": md("/tmp")})
        resp = await c.response()
        assert set(resp) == {"id", "result"} and resp["id"] == 7, resp


@case(5, "trace-ignored")
async def c05(ctx: Ctx) -> None:
    c = await ctx.conn()
    trace = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "x=1"}
    await c.send({"id": 5, "method": "fs/getMetadata", "params": md("/tmp"), "trace": trace})
    resp = await c.response()
    assert set(resp) == {"id", "result"} and resp["id"] == 5, resp
    assert resp["result"]["isDirectory"] is True


async def assert_gated(c: JsonWsClient, step: str, first_id: int) -> None:
    """A filesystem, an exec and an http method, with ids from ``first_id``, each refused with
    -32600 "client must <step> before using <group> methods"."""
    gated = [("fs/getMetadata", md("/tmp"), "filesystem"), ("process/read", {"processId": "x"}, "exec"),
             ("http/request", {"method": "GET", "url": "http://127.0.0.1:9/", "requestId": "r"}, "http")]
    for rid, (method, params, group) in enumerate(gated, first_id):
        assert await c.call(method, params, id=rid) == error(
            -32600, f"client must {step} before using {group} methods", rid)


@case(6, "gate-before-initialize")
async def c06(ctx: Ctx) -> None:
    c = await ctx.conn(init=False)
    await assert_gated(c, "call initialize", first_id=1)
    assert await c.call("process/start", start_params("p", ["true"]), id=4) == error(
        -32600, "client must call initialize before using exec methods", 4)
    # Unknown methods are -32601 whatever the state; param errors come before the gate.
    assert await c.call("foo/bar", id=5) == error(-32601, "exec-server stub does not implement `foo/bar` yet", 5)
    assert_error(await c.call("fs/getMetadata", {}, id=6), -32602, contains="missing field `path`")


@case(7, "gate-before-initialized")
async def c07(ctx: Ctx) -> None:
    c = await ctx.conn(init=True, initialized=False)
    await assert_gated(c, "send initialized", first_id=2)
    await c.notify("initialized", {})
    assert_result(await c.call("fs/getMetadata", md("/tmp"), id=5))


@case(8, "initialize-twice")
async def c08(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert await c.call("initialize", {"clientName": "t"}, id=2) == error(
        -32600, "initialize may only be sent once per connection", 2)
    assert_result(await c.call("fs/getMetadata", md("/tmp")))


@case(9, "initialize-bad-params-retry")
async def c09(ctx: Ctx) -> None:
    c = await ctx.conn(init=False)
    assert_error(await c.call("initialize", {}, id=1), -32602, "missing field `clientName`")
    assert await c.call("initialize", None, id=2) == error(
        -32602, "invalid type: null, expected struct InitializeParams", 2)
    assert await c.call("initialize", id=3) == error(
        -32602, "invalid type: null, expected struct InitializeParams", 3)
    resp = await c.call("initialize", {"clientName": "t"}, id=4)
    assert normalise(resp) == {"id": 4, "result": {"sessionId": "<uuid>"}}


@case(10, "initialized-params-ignored")
async def c10(ctx: Ctx) -> None:
    variants: list[Any] = [None, {}, [1, 2], "missing"]
    for v in variants:
        c = await ctx.conn(init=True, initialized=False)
        if v == "missing":
            await c.send({"method": "initialized"})
        else:
            await c.send({"method": "initialized", "params": v})
        await c.notify("initialized", {})  # a second one is harmless
        await c.expect_silence(0.2)
        assert_result(await c.call("fs/getMetadata", md("/tmp")))


@case(11, "initialized-before-initialize-closes")
async def c11(ctx: Ctx) -> None:
    c = await ctx.conn(init=False)
    await c.notify("initialized", {})
    closed = await c.expect_closed()
    assert not closed.rcvd_close, "0.131.0 drops TCP without a close frame"


@case(12, "unknown-notification-closes")
async def c12(ctx: Ctx) -> None:
    c = await ctx.conn()
    await c.notify("foo", {})
    assert not (await c.expect_closed()).rcvd_close
    c = await ctx.conn(init=False)  # also before the handshake
    await c.notify("foo/bar", {})
    assert not (await c.expect_closed()).rcvd_close
    c = await ctx.conn(init=False)  # initialize as a notification
    await c.notify("initialize", {"clientName": "t"})
    assert not (await c.expect_closed()).rcvd_close


@case(13, "client-response-closes")
async def c13(ctx: Ctx) -> None:
    for msg in ({"id": 9, "result": {}}, {"id": 9, "error": {"code": 1, "message": "x"}}):
        c = await ctx.conn()
        await c.send(msg)
        assert not (await c.expect_closed()).rcvd_close


@case(14, "invalid-request-id-closes")
async def c14(ctx: Ctx) -> None:
    for raw_id in ("null", "1.5", "true", "18446744073709551615"):
        c = await ctx.conn()
        await c.send('{"id":%s,"method":"fs/getMetadata","params":{"path":"/tmp"}}' % raw_id)
        assert not (await c.expect_closed()).rcvd_close, raw_id


@case(15, "unknown-method")
async def c15(ctx: Ctx) -> None:
    c = await ctx.conn()
    await c.send('{"id":10,"method":"foo/bar"}')
    raw = await asyncio.wait_for(c.ws.recv(), 10)
    assert raw == '{"error":{"code":-32601,"message":"exec-server stub does not implement `foo/bar` yet"},"id":10}'
    for m in ("process/signal", "environment/info", "fs/canonicalize", "process/resize", "shutdown", "ping"):
        assert await c.call(m, {}, id=11) == error(-32601, f"exec-server stub does not implement `{m}` yet", 11)


@case(16, "initialized-as-request")
async def c16(ctx: Ctx) -> None:
    c = await ctx.conn(init=False)
    assert await c.call("initialized", {}, id=11) == error(
        -32601, "exec-server stub does not implement `initialized` yet", 11)
    assert normalise(await c.call("initialize", {"clientName": "t"}, id=12)) == {
        "id": 12, "result": {"sessionId": "<uuid>"}}
    assert await c.call("initialized", {}, id=13) == error(
        -32601, "exec-server stub does not implement `initialized` yet", 13)
    # still not initialized
    assert await c.call("fs/getMetadata", md("/tmp"), id=14) == error(
        -32600, "client must send initialized before using filesystem methods", 14)


PARSE_PREFIX = "failed to parse websocket JSON-RPC message from exec-server websocket "
NO_VARIANT = "data did not match any variant of untagged enum JSONRPCMessage"


@case(17, "malformed-input")
async def c17(ctx: Ctx) -> None:
    c = await ctx.conn()
    expectations = [
        ("hello", f"{PARSE_PREFIX}<peer>: expected value at line 1 column 1"),
        ("{}", f"{PARSE_PREFIX}<peer>: {NO_VARIANT}"),
        ('[{"id":1,"method":"fs/getMetadata","params":{"path":"/tmp"}}]', f"{PARSE_PREFIX}<peer>: {NO_VARIANT}"),
        ('{"id":1,"method":5}', f"{PARSE_PREFIX}<peer>: {NO_VARIANT}"),
        ('{"id":1,"method":"foo"}\n{"id":2,"method":"foo"}', f"{PARSE_PREFIX}<peer>: trailing characters at line 2 column 1"),
    ]
    local_port = c.ws.local_address[1]
    for raw, expected in expectations:
        await c.send(raw)
        resp = await c.response()
        assert set(resp) == {"error", "id"} and resp["id"] == -1 and resp["error"]["code"] == -32600, resp
        assert f"127.0.0.1:{local_port}:" in resp["error"]["message"], resp
        assert normalise(resp["error"]["message"]) == expected, (raw, resp)
    # A single trailing newline is fine, and the connection is still usable.
    await c.send('{"id":3,"method":"fs/getMetadata","params":{"path":"/tmp"}}\n')
    assert_result(await c.response())
    assert_result(await c.call("fs/getMetadata", md("/tmp")))


@case(18, "binary-frame-text-reply")
async def c18(ctx: Ctx) -> None:
    c = await ctx.conn()
    await c.send({"id": 18, "method": "fs/getMetadata", "params": md("/tmp")}, binary=True)
    resp = await c.response()
    assert_result(resp)
    assert resp["id"] == 18
    assert c.frame_types[-1] == "text"


@case(19, "null-params")
async def c19(ctx: Ctx) -> None:
    c = await ctx.conn()
    for method, struct in (("fs/getMetadata", "FsGetMetadataParams"), ("process/start", "ExecParams"),
                           ("process/read", "ReadParams"), ("http/request", "HttpRequestParams")):
        for resp in (await c.call(method), await c.call(method, None)):
            assert_error(resp, -32602, prefix="invalid type: null, expected struct ")
            assert resp["error"]["message"] == f"invalid type: null, expected struct {struct}", resp


@case(20, "extra-members-ignored")
async def c20(ctx: Ctx) -> None:
    c = await ctx.conn(init=False)
    resp = await c.call("initialize", {"clientName": "t", "protocolVersion": "x", "capabilities": {"a": 1}})
    assert_result(resp)
    await c.notify("initialized", {"extra": True})
    assert_result(await c.call("fs/getMetadata", md("/tmp", bogus=1, sandbox=None)))
    params = start_params("x20", ["/bin/echo", "hi"], sandbox={"whatever": 1}, writeId="w1", unknown=[1])
    assert_result(await c.call("process/start", params), {"processId": "x20"})
    events = await c.wait_process_closed("x20")
    assert output_bytes(events) == b"hi\n"


@case(21, "sequential-dispatch")
async def c21(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_result(await c.call("process/start", start_params("sleeper", ["/bin/sleep", "10"])))
    t0 = time.monotonic()
    r1 = await c.request("process/read", {"processId": "sleeper", "afterSeq": 0, "waitMs": 2000})
    r2 = await c.request("fs/getMetadata", md("/tmp"))
    first = await c.response(timeout=10)
    t1 = time.monotonic() - t0
    second = await c.response(timeout=10)
    t2 = time.monotonic() - t0
    assert first["id"] == r1 and second["id"] == r2, (first, second)
    assert first["result"]["chunks"] == [] and first["result"]["exited"] is False
    assert 1.8 <= t1 <= 4.5 and 1.8 <= t2 <= 4.5, (t1, t2)
    assert_result(await c.call("process/terminate", {"processId": "sleeper"}), {"running": True})


# ---------------------------------------------------------------------------------------------
# Sessions

async def resume_detached(ctx: Ctx, pid: str, word: str, count: int, every: float,
                          detached: float) -> JsonWsClient:
    """Start process ``pid`` printing ``<word>1`` .. ``<word><count>`` every ``every`` seconds,
    wait for its first line, drop the connection for ``detached`` seconds, then ``initialize``
    a new connection resuming the session (``initialized`` not sent yet): returns it."""
    c1 = await ctx.conn()
    sid = c1.session_id
    script = (f"for i in {' '.join(str(i) for i in range(1, count + 1))}; "
              f"do echo {word}$i; sleep {every}; done")
    assert_result(await c1.call("process/start", start_params(pid, ["/bin/sh", "-c", script])))
    await wait_output(c1, pid, f"{word}1\n".encode())
    await c1.close()
    await asyncio.sleep(detached)
    c2 = await ctx.conn(init=False)
    assert await c2.call("initialize", {"clientName": "t", "resumeSessionId": sid}, id=1) == {
        "id": 1, "result": {"sessionId": sid}}
    return c2


@case(22, "detach-and-resume")
async def c22(ctx: Ctx) -> None:
    # ticks 2..5 happen while detached
    c2 = await resume_detached(ctx, "long", "tick", count=10, every=0.3, detached=1.2)
    await c2.notify("initialized", {})
    read = assert_result(await c2.call("process/read", {"processId": "long", "afterSeq": 0}))
    text = b"".join(unb64(ch["chunk"]) for ch in read["chunks"])
    assert text.startswith(b"tick1\ntick2\ntick3\n"), text
    seqs = [ch["seq"] for ch in read["chunks"]]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    # Notifications emitted while detached are dropped, not replayed: wait for `closed` only.
    await c2.collect(lambda _: any(e["method"] == "process/closed" for e in c2.process_events("long")), 10)
    late = [e for e in c2.process_events("long") if e["method"] == "process/output"]
    assert min(e["params"]["seq"] for e in late) > 1
    assert late, "new notifications must arrive on the resumed connection"
    assert b"tick10\n" in output_bytes(c2.process_events("long"))


@case(23, "resume-while-attached")
async def c23(ctx: Ctx) -> None:
    c1 = await ctx.conn()
    c2 = await ctx.conn(init=False)
    sid = c1.session_id
    assert await c2.call("initialize", {"clientName": "t", "resumeSessionId": sid}, id=1) == error(
        -32600, f"session {sid} is already attached to another connection", 1)
    # The failed initialize can be retried, and the first connection is untouched.
    assert_result(await c2.call("initialize", {"clientName": "t"}))
    assert_result(await c1.call("fs/getMetadata", md("/tmp")))


@case(24, "resume-unknown")
async def c24(ctx: Ctx) -> None:
    c = await ctx.conn(init=False)
    bogus = "00000000-0000-4000-8000-000000000000"
    assert await c.call("initialize", {"clientName": "t", "resumeSessionId": bogus}, id=1) == error(
        -32600, f"unknown session id {bogus}", 1)
    assert await c.call("initialize", {"clientName": "t", "resumeSessionId": "not-a-uuid"}, id=2) == error(
        -32600, "unknown session id not-a-uuid", 2)
    resp = await c.call("initialize", {"clientName": "t"}, id=3)
    assert normalise(resp) == {"id": 3, "result": {"sessionId": "<uuid>"}}
    assert resp["result"]["sessionId"] != bogus


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@case(25, "detach-expiry", timeout=40)
async def c25(ctx: Ctx) -> None:
    c1 = await ctx.conn()
    sid = c1.session_id
    pidfile = ctx.tmp / "c25.pid"
    assert_result(await c1.call("process/start", start_params(
        "victim", ["/bin/sh", "-c", f"echo $$ > {pidfile}; exec /bin/sleep 100"])))
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.05)
    pid = int(pidfile.read_text())
    assert _pid_alive(pid)
    await c1.close()
    await asyncio.sleep(5)
    assert _pid_alive(pid), "processes live on while the session is detached"
    await asyncio.sleep(7.5)
    c2 = await ctx.conn(init=False)
    assert await c2.call("initialize", {"clientName": "t", "resumeSessionId": sid}, id=1) == error(
        -32600, f"unknown session id {sid}", 1)
    for _ in range(40):
        if not _pid_alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _pid_alive(pid), "an expired session's processes are killed"


@case(26, "sessions-isolated")
async def c26(ctx: Ctx) -> None:
    a = await ctx.conn()
    b = await ctx.conn()
    ev_a = await run_to_close(a, "same", ["/bin/echo", "from-a"])
    ev_b = await run_to_close(b, "same", ["/bin/echo", "from-b"])
    assert output_bytes(ev_a) == b"from-a\n" and output_bytes(ev_b) == b"from-b\n"
    assert a.process_events("same") == ev_a and b.process_events("same") == ev_b  # no cross-talk


# ---------------------------------------------------------------------------------------------
# Processes

@case(27, "process-start-events")
async def c27(ctx: Ctx) -> None:
    c = await ctx.conn()
    events = await run_to_close(c, "p1", P1_ARGV)
    assert [e["params"]["seq"] for e in events] == [1, 2, 3, 4], events
    by_method = {e["method"]: e for e in events if e["method"] != "process/output"}
    outs = [e for e in events if e["method"] == "process/output"]
    assert sorted((e["params"]["stream"], unb64(e["params"]["chunk"])) for e in outs) == [
        ("stderr", b"err1\n"), ("stdout", b"out1\n")]
    for e in outs:
        assert set(e["params"]) == {"processId", "seq", "stream", "chunk"}
    exited = by_method["process/exited"]["params"]
    closed = by_method["process/closed"]["params"]
    assert exited == {"processId": "p1", "seq": exited["seq"], "exitCode": 3}
    assert closed == {"processId": "p1", "seq": 4}
    assert exited["seq"] < 4


@case(28, "duplicate-process-id")
async def c28(ctx: Ctx) -> None:
    c = await ctx.conn()
    await run_to_close(c, "p1", P1_ARGV)
    assert await c.call("process/start", start_params("p1", P1_ARGV), id=28) == error(
        -32600, "process p1 already exists", 28)
    assert_result(await c.call("process/start", start_params("", ["/bin/true"])), {"processId": ""})


@case(29, "read-after-close")
async def c29(ctx: Ctx) -> None:
    c = await ctx.conn()
    await run_to_close(c, "p1", P1_ARGV)
    res = assert_result(await c.call("process/read", {"processId": "p1"}))
    assert set(res) == {"chunks", "nextSeq", "exited", "exitCode", "closed", "failure"}
    seqs = [ch["seq"] for ch in res["chunks"]]
    assert seqs == sorted(seqs) and len(seqs) == 2
    assert sorted((ch["stream"], unb64(ch["chunk"])) for ch in res["chunks"]) == [
        ("stderr", b"err1\n"), ("stdout", b"out1\n")]
    for ch in res["chunks"]:
        assert set(ch) == {"seq", "stream", "chunk"}
    assert (res["exited"], res["exitCode"], res["closed"], res["failure"]) == (True, 3, True, None)
    assert res["nextSeq"] == seqs[-1] + 1
    explicit = assert_result(await c.call("process/read", {"processId": "p1", "afterSeq": None,
                                                           "maxBytes": None, "waitMs": 0}))
    assert explicit == res


@case(30, "read-past-end")
async def c30(ctx: Ctx) -> None:
    c = await ctx.conn()
    await run_to_close(c, "p1", P1_ARGV)
    for after in (4, 10):
        t0 = time.monotonic()
        res = assert_result(await c.call("process/read", {"processId": "p1", "afterSeq": after, "waitMs": 3000}))
        assert time.monotonic() - t0 < 1.5, "a closed process must not wait out waitMs"
        assert res == {"chunks": [], "nextSeq": 5, "exited": True, "exitCode": 3, "closed": True, "failure": None}


@case(31, "read-maxbytes")
async def c31(ctx: Ctx) -> None:
    c = await ctx.conn()
    await run_to_close(c, "p1", P1_ARGV)
    full = assert_result(await c.call("process/read", {"processId": "p1"}))
    for mb in (0, 1):
        res = assert_result(await c.call("process/read", {"processId": "p1", "maxBytes": mb}))
        assert res["chunks"] == full["chunks"][:1]
        assert res["nextSeq"] == res["chunks"][0]["seq"] + 1
    assert_error(await c.call("process/read", {"processId": "p1", "afterSeq": -1}), -32602,
                 "invalid value: integer `-1`, expected u64")


@case(32, "start-missing-fields")
async def c32(ctx: Ctx) -> None:
    c = await ctx.conn()
    for name in ("processId", "argv", "cwd", "env", "tty"):
        params = start_params("m32", ["/bin/true"])
        del params[name]
        assert_error(await c.call("process/start", params), -32602, f"missing field `{name}`")
    assert await c.call("process/start", start_params("m32", []), id=32) == error(-32602, "argv must not be empty", 32)
    assert_error(await c.call("process/start", start_params("m32", ["/bin/true"], tty="no")), -32602,
                 'invalid type: string "no", expected a boolean')
    assert_error(await c.call("process/start", start_params(5, ["/bin/true"])), -32602,
                 "invalid type: integer `5`, expected a string")


@case(33, "spawn-failure")
async def c33(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_error(await c.call("process/start", start_params("b33", ["/nonexistent/prog"])), -32603,
                 "No such file or directory (os error 2)")
    assert_error(await c.call("process/start", start_params("b33", ["/bin/true"], cwd="/nonexistent/dir")),
                 -32603, "No such file or directory (os error 2)")
    events = await run_to_close(c, "b33", ["/bin/echo", "ok"])
    assert output_bytes(events) == b"ok\n"


@case(34, "empty-env")
async def c34(ctx: Ctx) -> None:
    c = await ctx.conn()
    events = await run_to_close(c, "e34", ["/usr/bin/env"], env={})
    assert output_bytes(events) == b""
    assert [e["params"]["exitCode"] for e in events if e["method"] == "process/exited"] == [0]
    # A bare program name is still found through a default search path (docs/exec-server.md §Methods).
    events = await run_to_close(c, "e34b", ["env"], env={})
    assert output_bytes(events) == b""
    assert [e["params"]["exitCode"] for e in events if e["method"] == "process/exited"] == [0]


@case(35, "env-policy")
async def c35(ctx: Ctx) -> None:
    c = await ctx.conn()
    policy = {"inherit": "none", "ignoreDefaultExcludes": False, "exclude": [], "set": {"FROM_SET": "s"},
              "includeOnly": []}
    events = await run_to_close(c, "e35", ["/usr/bin/env"], env={"OVERLAY": "1"}, envPolicy=policy)
    assert sorted(output_bytes(events).decode().splitlines()) == ["FROM_SET=s", "OVERLAY=1"]
    resp = await c.call("process/start", start_params("e35b", ["/usr/bin/env"], envPolicy={"inherit": "none"}))
    assert_error(resp, -32602, "missing field `ignoreDefaultExcludes`")
    events = await run_to_close(c, "e35c", ["/usr/bin/env"], env={}, envPolicy=None)
    assert output_bytes(events) == b""


@case(36, "arg0")
async def c36(ctx: Ctx) -> None:
    c = await ctx.conn()
    events = await run_to_close(c, "a0", ["/bin/sh", "-c", "echo $0"], arg0="custom0")
    assert output_bytes(events) == b"custom0\n"


@case(37, "tty")
async def c37(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_result(await c.call("process/start", start_params(
        "t37", ["/bin/sh", "-c", "stty size; tty; exec /bin/cat"], tty=True)))
    await wait_output(c, "t37", b"24 80\r\n")
    await wait_output(c, "t37", b"/dev/pts/")
    assert_result(await c.call("process/write", {"processId": "t37", "chunk": b64("abc\n")}), {"status": "accepted"})
    out = await wait_output(c, "t37", b"abc\r\nabc\r\n")
    assert b"24 80\r\n" in out
    assert_result(await c.call("process/write", {"processId": "t37", "chunk": b64("\x04")}), {"status": "accepted"})
    events = await c.wait_process_closed("t37")
    assert {e["params"]["stream"] for e in events if e["method"] == "process/output"} == {"pty"}, events
    assert [e["params"]["exitCode"] for e in events if e["method"] == "process/exited"] == [0], events


@case(38, "pipe-stdin")
async def c38(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_result(await c.call("process/start", start_params("c38", ["/bin/cat"], pipeStdin=True)))
    assert_result(await c.call("process/write", {"processId": "c38", "chunk": b64("abc\n")}), {"status": "accepted"})
    assert_result(await c.call("process/write", {"processId": "c38", "chunk": ""}), {"status": "accepted"})
    out = await wait_output(c, "c38", b"abc\n")
    assert out == b"abc\n"
    assert {e["params"]["stream"] for e in c.process_events("c38") if e["method"] == "process/output"} == {"stdout"}
    assert_result(await c.call("process/terminate", {"processId": "c38"}), {"running": True})
    await c.wait_process_closed("c38")
    # After terminate the stdin pipe is gone: 0.131.0 answers -32603 (FINDINGS.md F2).
    assert await c.call("process/write", {"processId": "c38", "chunk": b64("x")}, id=38) == error(
        -32603, "failed to write to process stdin", 38)
    # Exited on its own but not evicted: still "accepted" (pipe and tty alike).
    for pid, kw in (("c38p", {"pipeStdin": True}), ("c38t", {"tty": True})):
        await run_to_close(c, pid, ["/bin/sh", "-c", "exit 0"], **kw)
        assert_result(await c.call("process/write", {"processId": pid, "chunk": b64("x")}), {"status": "accepted"})


@case(39, "write-statuses")
async def c39(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_result(await c.call("process/start", start_params("c39", ["/bin/sleep", "10"])))
    assert_result(await c.call("process/write", {"processId": "c39", "chunk": b64("x")}), {"status": "stdinClosed"})
    assert_result(await c.call("process/write", {"processId": "nope", "chunk": b64("x")}), {"status": "unknownProcess"})
    assert_error(await c.call("process/write", {"processId": "c39", "chunk": "***"}), -32602,
                 "Invalid symbol 42, offset 0.")
    assert_error(await c.call("process/write", {"processId": "c39", "chunk": "@"}), -32602,
                 "Invalid symbol 64, offset 0.")
    assert_result(await c.call("process/terminate", {"processId": "c39"}), {"running": True})


@case(40, "terminate")
async def c40(ctx: Ctx) -> None:
    c = await ctx.conn()
    for pid, tty, code in (("k40", False, -1), ("k40t", True, 1)):
        assert_result(await c.call("process/start", start_params(pid, ["/bin/sleep", "30"], tty=tty)))
        assert_result(await c.call("process/terminate", {"processId": pid}), {"running": True})
        events = await c.wait_process_closed(pid)
        assert [e["params"]["exitCode"] for e in events if e["method"] == "process/exited"] == [code], events
        assert events[-1]["method"] == "process/closed"
        assert_result(await c.call("process/terminate", {"processId": pid}), {"running": False})
    assert_result(await c.call("process/terminate", {"processId": "unknown"}), {"running": False})


@case(41, "read-unknown")
async def c41(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert await c.call("process/read", {"processId": "nope"}, id=41) == error(-32600, "unknown process id nope", 41)


@case(42, "eviction-after-close", timeout=60)
async def c42(ctx: Ctx) -> None:
    c = await ctx.conn()
    await run_to_close(c, "ev", ["/bin/echo", "one"])
    closed_at = time.monotonic()
    await asyncio.sleep(25)
    assert_result(await c.call("process/read", {"processId": "ev"}))
    await asyncio.sleep(max(0.0, closed_at + 31 - time.monotonic()))
    assert await c.call("process/read", {"processId": "ev"}, id=42) == error(-32600, "unknown process id ev", 42)
    c.notifications.clear()  # forget the first run's events for the same id
    events = await run_to_close(c, "ev", ["/bin/echo", "two"])
    assert output_bytes(events) == b"two\n"


@case(43, "large-output", timeout=60)
async def c43(ctx: Ctx) -> None:
    c = await ctx.conn()
    total = 3_000_000
    events = await run_to_close(c, "big", ["/bin/sh", "-c", f"head -c {total} /dev/zero | tr '\\0' a"], timeout=50)
    outs = [e for e in events if e["method"] == "process/output"]
    sizes = [len(unb64(e["params"]["chunk"])) for e in outs]
    assert sum(sizes) == total and max(sizes) <= 8192, (sum(sizes), max(sizes))
    res = assert_result(await c.call("process/read", {"processId": "big", "afterSeq": 0}))
    kept = sum(len(unb64(ch["chunk"])) for ch in res["chunks"])
    assert 1024 * 1024 - 8192 < kept <= 1024 * 1024, kept
    seqs = [ch["seq"] for ch in res["chunks"]]
    exited_seq = next(e["params"]["seq"] for e in events if e["method"] == "process/exited")
    # the newest chunks, contiguous except for the seq the exit event took
    assert seqs == [s for s in range(seqs[0], outs[-1]["params"]["seq"] + 1) if s != exited_seq], seqs
    assert res["nextSeq"] == seqs[-1] + 1


@case(44, "long-poll")
async def c44(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_result(await c.call("process/start", start_params("lp", ["/bin/sh", "-c", "sleep 1; echo late"])))
    t0 = time.monotonic()
    res = assert_result(await c.call("process/read", {"processId": "lp", "afterSeq": 0, "waitMs": 4000}))
    dt = time.monotonic() - t0
    assert 0.7 <= dt <= 3.0, dt
    assert [unb64(ch["chunk"]) for ch in res["chunks"]] == [b"late\n"]


# ---------------------------------------------------------------------------------------------
# Filesystem

ENOENT = "No such file or directory (os error 2)"


@case(45, "write-read-roundtrip")
async def c45(ctx: Ctx) -> None:
    c = await ctx.conn()
    path = str(ctx.tmp / "c45.bin")
    data = bytes(range(256)) * 3
    assert_result(await c.call("fs/writeFile", {"path": path, "dataBase64": b64(data)}), {})
    assert Path(path).read_bytes() == data
    assert_result(await c.call("fs/readFile", {"path": path}), {"dataBase64": b64(data)})
    assert_result(await c.call("fs/writeFile", {"path": path, "dataBase64": ""}), {})
    assert_result(await c.call("fs/readFile", {"path": path}), {"dataBase64": ""})


@case(46, "write-errors")
async def c46(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_error(await c.call("fs/writeFile", {"path": str(ctx.tmp / "missing46" / "f"), "dataBase64": ""}),
                 -32004, ENOENT)
    assert_error(await c.call("fs/writeFile", {"path": str(ctx.tmp), "dataBase64": ""}), -32603,
                 "Is a directory (os error 21)")
    assert_error(await c.call("fs/writeFile", {"path": str(ctx.tmp / "c46"), "dataBase64": "***"}), -32600,
                 "fs/writeFile requires valid base64 dataBase64: Invalid symbol 42, offset 0.")
    assert_error(await c.call("fs/writeFile", {"path": str(ctx.tmp / "c46")}), -32602,
                 "missing field `dataBase64`")


@case(47, "read-errors")
async def c47(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_error(await c.call("fs/readFile", md(str(ctx.tmp / "missing47"))), -32004, ENOENT)
    assert_error(await c.call("fs/readFile", md(str(ctx.tmp))), -32603, "Is a directory (os error 21)")
    huge = ctx.tmp / "c47-huge.bin"
    with open(huge, "wb") as f:
        f.truncate(512 * 1024 * 1024 + 1)  # sparse: no disk used
    try:
        assert_error(await c.call("fs/readFile", md(str(huge))), -32600,
                     "file is too large to read: limit is 536870912 bytes")
    finally:
        huge.unlink()


@case(48, "relative-path")
async def c48(ctx: Ctx) -> None:
    c = await ctx.conn()
    msg = "AbsolutePathBuf deserialized without a base path"
    for p in ("tmp", "", "~/x", "file:///tmp", "./tmp"):
        assert_error(await c.call("fs/readFile", md(p)), -32602, msg)
    assert_error(await c.call("fs/getMetadata", md("tmp")), -32602, msg)
    assert_error(await c.call("fs/copy", {"sourcePath": "a", "destinationPath": "/tmp/x", "recursive": False}),
                 -32602, msg)
    # Lexical normalisation of absolute paths.
    res = assert_result(await c.call("fs/getMetadata", md("/tmp/../tmp/./")))
    assert res["isDirectory"] is True


@case(49, "create-directory")
async def c49(ctx: Ctx) -> None:
    c = await ctx.conn()
    nested = ctx.tmp / "c49" / "a" / "b"
    assert_result(await c.call("fs/createDirectory", md(str(nested))), {})
    assert nested.is_dir()
    assert_result(await c.call("fs/createDirectory", md(str(nested))), {})
    assert_result(await c.call("fs/createDirectory", md(str(nested), recursive=None)), {})
    assert_error(await c.call("fs/createDirectory", md(str(nested), recursive=False)), -32603,
                 "File exists (os error 17)")
    f = ctx.tmp / "c49" / "file"
    f.write_text("x")
    assert_error(await c.call("fs/createDirectory", md(str(f))), -32603, "File exists (os error 17)")
    assert_error(await c.call("fs/createDirectory", md(str(ctx.tmp / "c49" / "x" / "y"), recursive=False)),
                 -32004, ENOENT)


@case(50, "get-metadata")
async def c50(ctx: Ctx) -> None:
    c = await ctx.conn()
    d = ctx.tmp / "c50"
    d.mkdir(exist_ok=True)
    f = d / "file"
    f.write_text("x")
    for name, target in (("lf", "file"), ("ld", "."), ("dangling", "nowhere")):
        if not (d / name).is_symlink():
            os.symlink(target, d / name)
    keys = {"isDirectory", "isFile", "isSymlink", "createdAtMs", "modifiedAtMs"}
    expect = {
        "file": (False, True, False), "": (True, False, False), "lf": (False, True, True), "ld": (True, False, True),
    }
    for name, (is_dir, is_file, is_link) in expect.items():
        path = d / name if name else d
        res = assert_result(await c.call("fs/getMetadata", md(str(path))))
        assert set(res) == keys, res
        assert (res["isDirectory"], res["isFile"], res["isSymlink"]) == (is_dir, is_file, is_link), (name, res)
        assert isinstance(res["createdAtMs"], int) and res["createdAtMs"] >= 0
        mtime_ms = int(os.stat(path).st_mtime * 1000)
        assert abs(res["modifiedAtMs"] - mtime_ms) <= 1, (res, mtime_ms)
    assert_error(await c.call("fs/getMetadata", md(str(d / "dangling"))), -32004, ENOENT)
    assert_error(await c.call("fs/getMetadata", md(str(d / "missing"))), -32004, ENOENT)


@case(51, "read-directory")
async def c51(ctx: Ctx) -> None:
    c = await ctx.conn()
    d = ctx.tmp / "c51"
    d.mkdir(exist_ok=True)
    (d / "f").write_text("x")
    (d / "sub").mkdir(exist_ok=True)
    for name, target in (("lf", "f"), ("ld", "sub"), ("dangling", "nowhere")):
        if not (d / name).is_symlink():
            os.symlink(target, d / name)
    res = assert_result(await c.call("fs/readDirectory", md(str(d))))
    assert set(res) == {"entries"}
    assert sorted(res["entries"], key=lambda e: e["fileName"]) == [
        {"fileName": "f", "isDirectory": False, "isFile": True},
        {"fileName": "ld", "isDirectory": True, "isFile": False},
        {"fileName": "lf", "isDirectory": False, "isFile": True},
        {"fileName": "sub", "isDirectory": True, "isFile": False},
    ]
    assert_result(await c.call("fs/readDirectory", md(str(d / "sub"))), {"entries": []})
    assert_error(await c.call("fs/readDirectory", md(str(d / "f"))), -32603, "Not a directory (os error 20)")
    assert_error(await c.call("fs/readDirectory", md(str(d / "missing"))), -32004, ENOENT)


@case(52, "remove")
async def c52(ctx: Ctx) -> None:
    c = await ctx.conn()
    d = ctx.tmp / "c52"
    (d / "inner").mkdir(parents=True, exist_ok=True)
    (d / "inner" / "f").write_text("x")
    assert_result(await c.call("fs/remove", md(str(d / "missing"))), {})
    assert_error(await c.call("fs/remove", md(str(d / "missing"), force=False)), -32004, ENOENT)
    assert_error(await c.call("fs/remove", md(str(d), recursive=False)), -32603, "Directory not empty (os error 39)")
    assert_error(await c.call("fs/remove", md(str(d), recursive=False, force=True)), -32603,
                 "Directory not empty (os error 39)")
    (d / "empty").mkdir()
    assert_result(await c.call("fs/remove", md(str(d / "empty"), recursive=False)), {})
    target = ctx.tmp / "c52-target"
    target.write_text("keep")
    os.symlink(target, d / "link")
    assert_result(await c.call("fs/remove", md(str(d / "link"))), {})
    assert target.read_text() == "keep"
    assert_result(await c.call("fs/remove", md(str(d))), {})
    assert not d.exists()


@case(53, "copy")
async def c53(ctx: Ctx) -> None:
    c = await ctx.conn()
    d = ctx.tmp / "c53"
    (d / "src" / "sub").mkdir(parents=True, exist_ok=True)
    (d / "src" / "a.txt").write_text("A")
    (d / "src" / "sub" / "b.txt").write_text("B")
    if not (d / "src" / "link").is_symlink():
        os.symlink("a.txt", d / "src" / "link")
    cp = lambda s, t, **kw: {"sourcePath": str(s), "destinationPath": str(t), **kw}  # noqa: E731
    assert_result(await c.call("fs/copy", cp(d / "src" / "a.txt", d / "a-copy.txt", recursive=False)), {})
    assert (d / "a-copy.txt").read_text() == "A"
    assert_error(await c.call("fs/copy", cp(d / "src", d / "dst", recursive=False)), -32600,
                 "fs/copy requires recursive: true when sourcePath is a directory")
    assert_error(await c.call("fs/copy", cp(d / "src", d / "src" / "sub" / "inside", recursive=True)), -32600,
                 "fs/copy cannot copy a directory to itself or one of its descendants")
    assert_error(await c.call("fs/copy", cp(d / "src" / "a.txt", d / "x.txt")), -32602, "missing field `recursive`")
    assert_result(await c.call("fs/copy", cp(d / "src" / "link", d / "link-copy", recursive=False)), {})
    assert (d / "link-copy").is_symlink() and os.readlink(d / "link-copy") == "a.txt"
    assert_result(await c.call("fs/copy", cp(d / "src", d / "tree", recursive=True)), {})
    assert (d / "tree" / "sub" / "b.txt").read_text() == "B"
    assert os.readlink(d / "tree" / "link") == "a.txt"
    assert_error(await c.call("fs/copy", cp(d / "missing", d / "y", recursive=False)), -32004, ENOENT)
    assert_error(await c.call("fs/copy", cp(d / "src" / "a.txt", d / "src", recursive=False)), -32603,
                 "Is a directory (os error 21)")


@case(54, "sandbox-param")
async def c54(ctx: Ctx) -> None:
    c = await ctx.conn()
    d = ctx.tmp / "c54"
    f = str(d / "f")
    calls = [
        ("fs/createDirectory", {"path": str(d)}),
        ("fs/writeFile", {"path": f, "dataBase64": b64("x")}),
        ("fs/readFile", {"path": f}),
        ("fs/getMetadata", {"path": f}),
        ("fs/readDirectory", {"path": str(d)}),
        ("fs/copy", {"sourcePath": f, "destinationPath": f + "2", "recursive": False}),
        ("fs/remove", {"path": f + "2"}),
    ]
    for method, params in calls:
        assert_result(await c.call(method, {**params, "sandbox": None}))
    for method, params in calls:
        assert_error(await c.call(method, {**params, "sandbox": {}}), -32602, "missing field `permissions`")


# ---------------------------------------------------------------------------------------------
# HTTP

def _headers(res: dict[str, Any]) -> dict[str, str]:
    return {h["name"]: h["value"] for h in res["headers"]}


@case(55, "http-get")
async def c55(ctx: Ctx) -> None:
    c = await ctx.conn()
    res = assert_result(await c.call("http/request", {"method": "GET", "url": f"{ctx.http}/ok", "requestId": "g1"}))
    assert set(res) == {"status", "headers", "bodyBase64"}
    assert res["status"] == 200 and unb64(res["bodyBase64"]) == b"hello"
    for h in res["headers"]:
        assert set(h) == {"name", "value"} and h["name"] == h["name"].lower()
    assert _headers(res)["content-type"].startswith("text/plain")
    for code in (404, 500):
        res = assert_result(await c.call("http/request", {"method": "GET", "url": f"{ctx.http}/status/{code}",
                                                          "requestId": f"g{code}"}))
        assert res["status"] == code and unb64(res["bodyBase64"]) == f"status {code}".encode()


@case(56, "http-post-headers-body")
async def c56(ctx: Ctx) -> None:
    c = await ctx.conn()
    params = {"method": "POST", "url": f"{ctx.http}/echo", "requestId": "p1", "bodyBase64": b64(b"\x00body\xff"),
              "headers": [{"name": "X-A", "value": "1"}, {"name": "X-A", "value": "2"},
                          {"name": "Content-Type", "value": "application/octet-stream"}]}
    res = assert_result(await c.call("http/request", params))
    assert res["status"] == 200
    seen = json.loads(unb64(res["bodyBase64"]))
    assert seen["method"] == "POST"
    assert [v for k, v in seen["headers"] if k.lower() == "x-a"] == ["1", "2"]
    assert unb64(seen["bodyBase64"]) == b"\x00body\xff"


@case(57, "http-bad-params")
async def c57(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_error(await c.call("http/request", {"method": "GET", "url": f"{ctx.http}/ok"}), -32602,
                 "missing field `requestId`")
    assert_error(await c.call("http/request", {"method": "GET", "url": "ftp://127.0.0.1/x", "requestId": "r"}),
                 -32602, "http/request only supports http and https URLs, got ftp")
    assert_error(await c.call("http/request", {"method": "GET", "url": "not a url", "requestId": "r"}),
                 -32602, "http/request url is invalid: relative URL without a base")
    assert_error(await c.call("http/request", {"method": "BAD METHOD", "url": f"{ctx.http}/ok", "requestId": "r"}),
                 -32602, "http/request method is invalid: invalid HTTP method")
    assert_error(await c.call("http/request", {"method": "GET", "url": f"{ctx.http}/ok", "requestId": "r",
                                               "headers": [{"name": "bad name", "value": "v"}]}),
                 -32602, "http/request header name is invalid: invalid HTTP header name")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@case(58, "http-send-failure")
async def c58(ctx: Ctx) -> None:
    c = await ctx.conn()
    url = f"http://127.0.0.1:{_closed_port()}/x"
    assert_error(await c.call("http/request", {"method": "GET", "url": url, "requestId": "r"}), -32603,
                 f"http/request failed: error sending request for url ({url})")
    slow = f"{ctx.http}/slow?ms=3000"
    t0 = time.monotonic()
    assert_error(await c.call("http/request", {"method": "GET", "url": slow, "requestId": "r", "timeoutMs": 300}),
                 -32603, f"http/request failed: error sending request for url ({slow})")
    assert time.monotonic() - t0 < 2.5


@case(59, "http-stream")
async def c59(ctx: Ctx) -> None:
    c = await ctx.conn()
    res = assert_result(await c.call("http/request", {"method": "GET", "url": f"{ctx.http}/stream?n=5",
                                                      "requestId": "s1", "streamResponse": True}))
    assert res["status"] == 201 and res["bodyBase64"] == ""
    assert _headers(res)["content-type"] == "text/event-stream"
    assert not [n for n in c.notifications if n["method"] == "http/request/bodyDelta"], \
        "the response arrives before the first bodyDelta"
    deltas = await c.collect(lambda ns: any(n["params"].get("done") for n in ns
                                            if n["method"] == "http/request/bodyDelta"))
    deltas = [n["params"] for n in deltas if n["method"] == "http/request/bodyDelta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    for d in deltas:
        assert set(d) == {"requestId", "seq", "deltaBase64", "done", "error"} and d["requestId"] == "s1"
    assert all(d["done"] is False and d["error"] is None for d in deltas[:-1])
    assert deltas[-1]["done"] is True and deltas[-1]["error"] is None and deltas[-1]["deltaBase64"] == ""
    body = b"".join(unb64(d["deltaBase64"]) for d in deltas)
    assert body == b"".join(f"data: chunk{i}\n\n".encode() for i in range(5))


@case(60, "http-stream-id-reuse")
async def c60(ctx: Ctx) -> None:
    c = await ctx.conn()
    params = {"method": "GET", "url": f"{ctx.http}/stall?ms=1500", "requestId": "s2", "streamResponse": True}
    assert_result(await c.call("http/request", params))
    assert_error(await c.call("http/request", params), -32602,
                 "http/request streamResponse requestId `s2` is already active")
    await c.collect(lambda ns: any(n["params"].get("done") for n in ns if n["method"] == "http/request/bodyDelta"))
    await asyncio.sleep(0.1)
    assert_result(await c.call("http/request", {**params, "url": f"{ctx.http}/ok"}))
    # a buffered request with the id of an active stream is fine (only streaming ids are tracked)


@case(61, "http-stream-timeout")
async def c61(ctx: Ctx) -> None:
    c = await ctx.conn()
    params = {"method": "GET", "url": f"{ctx.http}/stall?ms=5000", "requestId": "s3", "streamResponse": True,
              "timeoutMs": 1000}
    res = assert_result(await c.call("http/request", params))
    assert res["status"] == 200
    await c.collect(lambda ns: any(n["params"].get("done") for n in ns if n["method"] == "http/request/bodyDelta"),
                    timeout=4)
    deltas = [n["params"] for n in c.notifications if n["method"] == "http/request/bodyDelta"]
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    last = deltas[-1]
    assert last["done"] is True and last["deltaBase64"] == "" and last["error"] == "error decoding response body"
    assert b"".join(unb64(d["deltaBase64"]) for d in deltas) == b"first\n"


# ---------------------------------------------------------------------------------------------
# Transport

def _http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@case(62, "http-routes")
async def c62(ctx: Ctx) -> None:
    base = "http://" + ctx.url.removeprefix("ws://")
    assert await asyncio.to_thread(_http_get, base + "/readyz") == (200, b"")
    status, _ = await asyncio.to_thread(_http_get, base + "/other")
    assert status == 404
    status, _ = await asyncio.to_thread(_http_get, base + "/")
    assert status == 400


@case(63, "bound-url-line")
async def c63(ctx: Ctx) -> None:
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", ctx.url), ctx.url
    assert int(ctx.url.rsplit(":", 1)[1]) != 0
    srv = ServerProcess(ctx.argv_for("ws://127.0.0.1:0"), env=isolated_env(ctx.tmp / "c63-home"),
                        log_dir=ctx.tmp, name=f"c63-{ctx.impl}")
    await asyncio.to_thread(srv.start)
    try:
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+\n", srv.stdout_lines[0]), srv.stdout_lines
        assert srv.url != ctx.url
        c = await JsonWsClient.connect(srv.url)
        await c.initialize()
        await c.close()
    finally:
        await asyncio.to_thread(srv.stop)
    # Bad listen URLs are refused.
    for bad in ("ws://localhost:1", "ws://127.0.0.1", "http://127.0.0.1:0"):
        proc = await asyncio.to_thread(subprocess.run, ctx.argv_for(bad), capture_output=True, text=True,
                                       timeout=20, env=isolated_env(ctx.tmp / "c63-home"))
        assert proc.returncode != 0 and proc.stdout == "", (bad, proc)


@case(64, "stdio")
async def c64(ctx: Ctx) -> None:
    proc = await asyncio.create_subprocess_exec(
        *ctx.argv_for("stdio"), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=isolated_env(ctx.tmp / "c64-home"), start_new_session=True)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        lines = [
            '{"id":1,"method":"initialize","params":{"clientName":"t"}}', "", "   ", "garbage",
            '{"method":"initialized","params":{}}\r',
            '{"id":2,"method":"fs/getMetadata","params":{"path":"/tmp"}}',
        ]
        proc.stdin.write(("\n".join(lines) + "\n").encode())
        await proc.stdin.drain()
        got = [json.loads(await asyncio.wait_for(proc.stdout.readline(), 10)) for _ in range(3)]
        assert normalise(got[0]) == {"id": 1, "result": {"sessionId": "<uuid>"}}
        assert got[1] == error(-32600, "failed to parse JSON-RPC message from exec-server stdio: "
                                       "expected value at line 1 column 1", -1)
        assert got[2]["id"] == 2 and got[2]["result"]["isDirectory"] is True
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        await proc.wait()


@case(65, "oversized-frame", timeout=40)
async def c65(ctx: Ctx) -> None:
    c = await ctx.conn()
    big = '{"id":1,"method":"foo/bar","params":{"pad":"' + "x" * (16 * 1024 * 1024 + 512 * 1024) + '"}}'
    try:
        await c.send(big)
    except Closed as exc:  # the server may drop TCP while the frame is still being written
        closed = exc
    else:
        closed = await c.expect_closed(timeout=20)
    # 0.131.0 drops TCP (1006, no close frame); a 1009 close frame is tolerated (FINDINGS.md F5):
    # copying this exactly is optional and clients must not rely on it.
    assert closed.code in (1006, 1009), closed.code
    # A message over 64 MiB in 8 MiB fragments (each frame under the frame limit) is dropped too.
    c3 = await ctx.conn()
    piece = "x" * (8 * 1024 * 1024)
    fragments = ['{"id":3,"method":"foo/bar","params":{"pad":"'] + [piece] * 8 + ['"}}']
    try:
        await c3.ws.send(iter(fragments))
    except Exception as exc:  # noqa: BLE001 - dropped while still sending
        assert "ConnectionClosed" in type(exc).__name__ or isinstance(exc, ConnectionError), exc
    else:
        closed = await c3.expect_closed(timeout=20)
        assert closed.code in (1006, 1009), closed.code
    # A 14 MiB frame is still fine, on a fresh connection.
    c2 = await ctx.conn()
    ok = '{"id":2,"method":"foo/bar","params":{"pad":"' + "x" * (14 * 1024 * 1024) + '"}}'
    await c2.send(ok)
    assert await c2.response(timeout=20) == error(-32601, "exec-server stub does not implement `foo/bar` yet", 2)


assert sorted(CASES) == list(range(1, 66)), sorted(set(range(1, 66)) - set(CASES))


# ---------------------------------------------------------------------------------------------
# Extra cases (beyond the 65 numbered ones): method, process and filesystem details
# (docs/exec-server.md §Methods) that the real harness can run into. Same rules: the 0.131.0
# binary is the reference.

EXTRA: dict[int, Case] = {}


extra = registrar(EXTRA)


def _exit_codes(events: list[dict[str, Any]]) -> list[int]:
    return [e["params"]["exitCode"] for e in events if e["method"] == "process/exited"]


@extra(1, "exit-code-mapping")
async def x01(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert _exit_codes(await run_to_close(c, "x300", ["/bin/sh", "-c", "exit 300"])) == [44]
    assert _exit_codes(await run_to_close(c, "x255", ["/bin/sh", "-c", "exit 255"])) == [255]
    for sig in ("KILL", "TERM", "INT", "HUP"):
        assert _exit_codes(await run_to_close(c, f"k{sig}", ["/bin/sh", "-c", f"kill -{sig} $$"])) == [-1], sig
    assert _exit_codes(await run_to_close(c, "k9t", ["/bin/sh", "-c", "kill -9 $$"], tty=True)) == [1]


@extra(2, "terminate-kills-process-group")
async def x02(ctx: Ctx) -> None:
    """0.131.0 kills the child's whole process group on terminate: a backgrounded grandchild
    dies of SIGKILL too (FINDINGS.md F4; an earlier description said it survives, which a
    zombie can fake)."""
    c = await ctx.conn()
    for pid, tty in (("gc", False), ("gct", True)):
        pidfile = ctx.tmp / f"x02-{pid}.pid"
        assert_result(await c.call("process/start", start_params(
            pid, ["/bin/sh", "-c", f"/bin/sleep 100 >/dev/null 2>&1 & echo $! > {pidfile}; exec /bin/sleep 100"],
            tty=tty)))
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.05)
        grandchild = int(pidfile.read_text())
        try:
            await asyncio.sleep(0.2)
            assert_result(await c.call("process/terminate", {"processId": pid}), {"running": True})
            events = await c.wait_process_closed(pid)
            assert _exit_codes(events) == [1 if tty else -1]
            for _ in range(40):
                if not _pid_alive(grandchild):
                    break
                await asyncio.sleep(0.05)
            assert not _pid_alive(grandchild), f"grandchild {grandchild} survived terminate (tty={tty})"
        finally:
            try:
                os.kill(grandchild, 9)
            except ProcessLookupError:
                pass


@extra(3, "copy-special-files")
async def x03(ctx: Ctx) -> None:
    c = await ctx.conn()
    fifo = ctx.tmp / "fifo"
    os.mkfifo(fifo)
    assert_error(await c.call("fs/copy", {"sourcePath": str(fifo), "destinationPath": str(ctx.tmp / "fifo2"),
                                          "recursive": False}),
                 -32600, "fs/copy only supports regular files, directories, and symlinks")
    tree = ctx.tmp / "tree"
    tree.mkdir()
    os.mkfifo(tree / "pipe")
    (tree / "a").write_text("a")
    assert_result(await c.call("fs/copy", {"sourcePath": str(tree), "destinationPath": str(ctx.tmp / "tree2"),
                                           "recursive": True}), {})
    assert sorted(os.listdir(ctx.tmp / "tree2")) == ["a"]


@extra(4, "sandbox-profiles")
async def x04(ctx: Ctx) -> None:
    c = await ctx.conn()
    (ctx.tmp / "r.txt").write_text("r")

    def restricted(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"permissions": {"type": "managed", "file_system": {"type": "restricted", "entries": entries},
                                "network": "restricted"}, "windowsSandboxLevel": "disabled"}
    read_root = [{"path": {"type": "path", "path": str(ctx.tmp)}, "access": "read"}]
    write_root = [{"path": {"type": "path", "path": str(ctx.tmp)}, "access": "write"}]
    assert_error(await c.call("fs/getMetadata", {"path": "/tmp", "sandbox": restricted([])}), -32004, ENOENT)
    assert_result(await c.call("fs/readFile", {"path": str(ctx.tmp / "r.txt"), "sandbox": restricted(read_root)}),
                  {"dataBase64": b64("r")})
    assert_error(await c.call("fs/writeFile", {"path": str(ctx.tmp / "w.txt"), "dataBase64": "",
                                               "sandbox": restricted(read_root)}),
                 -32603, "Read-only file system (os error 30)")
    assert_result(await c.call("fs/writeFile", {"path": str(ctx.tmp / "w.txt"), "dataBase64": b64("w"),
                                                "sandbox": restricted(write_root)}), {})
    assert (ctx.tmp / "w.txt").read_text() == "w"
    for perms in ({"type": "disabled"}, {"type": "external", "network": "restricted"},
                  {"type": "managed", "file_system": {"type": "unrestricted"}, "network": "restricted"}):
        res = assert_result(await c.call("fs/getMetadata", {"path": "/tmp", "sandbox": {
            "permissions": perms, "windowsSandboxLevel": "disabled"}}))
        assert res["isDirectory"] is True, perms
    assert_error(await c.call("fs/getMetadata", {"path": "/tmp", "sandbox": {
        "permissions": {"type": "bogus"}, "windowsSandboxLevel": "disabled"}}), -32602,
        "data did not match any variant of untagged enum PermissionProfileDe")


@extra(5, "notifications-while-blocked")
async def x05(ctx: Ctx) -> None:
    """A long-poll read blocks the request loop, but notifications keep flowing
    (docs/exec-server.md §Sessions)."""
    c = await ctx.conn()
    assert_result(await c.call("process/start", start_params("slow", ["/bin/sleep", "5"])))
    assert_result(await c.call("process/start", start_params("talk", ["/bin/sh", "-c", "sleep 0.3; echo hi"])))
    res = assert_result(await c.call("process/read", {"processId": "slow", "afterSeq": 0, "waitMs": 1500}))
    assert res["chunks"] == []
    assert [n["method"] for n in c.process_events("talk")][-1] == "process/closed"
    assert output_bytes(c.process_events("talk")) == b"hi\n"
    assert_result(await c.call("process/terminate", {"processId": "slow"}), {"running": True})


@extra(6, "fs-error-mapping")
async def x06(ctx: Ctx) -> None:
    c = await ctx.conn()
    assert_error(await c.call("fs/remove", md("/proc/version")), -32600, "Operation not permitted (os error 1)")
    assert_error(await c.call("fs/readFile", md("/tmp/../etc/../nonexistent-x06")), -32004, ENOENT)
    res = assert_result(await c.call("fs/readFile", md("/tmp/../etc/hostname")))
    assert unb64(res["dataBase64"]) == Path("/etc/hostname").read_bytes()


@extra(7, "duplicate-inflight-ids")
async def x07(ctx: Ctx) -> None:
    c = await ctx.conn()
    for _ in range(3):
        await c.request("fs/getMetadata", md("/tmp"), id=7)
    await c.request("foo/bar", id=7)
    replies = [await c.response() for _ in range(4)]
    assert [r["id"] for r in replies] == [7, 7, 7, 7]
    assert ["result" in r for r in replies] == [True, True, True, False]


@extra(8, "resume-notifications-before-initialized")
async def x08(ctx: Ctx) -> None:
    """Notifications reach a resumed connection right after `initialize`, before `initialized`."""
    c2 = await resume_detached(ctx, "r8", "t", count=15, every=0.2, detached=0.5)
    await c2.collect(lambda _: any(e["method"] == "process/output" for e in c2.process_events("r8")), 5)
    await c2.notify("initialized", {})
    assert_result(await c2.call("process/terminate", {"processId": "r8"}), {"running": True})


async def _run_cli(ctx: Ctx, args: list[str], env_extra: dict[str, str] | None = None,
                   drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    base = ctx.argv_for("ws://127.0.0.1:0")[:-2]  # [..., "exec-server"]
    env = isolated_env(ctx.tmp / "cli-home", env_extra)
    for name in drop:
        env.pop(name, None)
    return await asyncio.to_thread(subprocess.run, base + args, capture_output=True, text=True, timeout=20,
                                   env=env, stdin=subprocess.DEVNULL)


@extra(9, "cli-flag-conflicts")
async def x09(ctx: Ctx) -> None:
    """0.131.0 CLI: --listen conflicts with --remote; --remote requires --executor-id (clap: rc 2)."""
    p = await _run_cli(ctx, ["--listen", "ws://127.0.0.1:0", "--remote", "http://127.0.0.1:9", "--executor-id", "x"])
    assert p.returncode == 2 and p.stdout == "", p
    assert "the argument '--listen <URL>' cannot be used with '--remote <URL>'" in p.stderr, p.stderr
    p = await _run_cli(ctx, ["--remote", "http://127.0.0.1:9"])
    assert p.returncode == 2 and p.stdout == "", p
    assert "the following required arguments were not provided" in p.stderr and "--executor-id <ID>" in p.stderr


@extra(10, "remote-token-required")
async def x10(ctx: Ctx) -> None:
    """Remote mode: a missing or blank bearer token fails with rc 1 before any HTTP (0.131.0 and
    ours alike; docs/relay-protocol.md §Executor behaviour)."""
    token = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"
    prefix = f"executor registry authentication error: executor registry bearer token environment variable `{token}` is "
    p = await _run_cli(ctx, ["--remote", "http://127.0.0.1:9", "--executor-id", "x"], drop=(token,))
    assert p.returncode == 1 and p.stdout == "", p
    assert prefix + "not set" in p.stderr, p.stderr
    p = await _run_cli(ctx, ["--remote", "http://127.0.0.1:9", "--executor-id", "x"], {token: "   "})
    assert p.returncode == 1 and p.stdout == "", p
    assert prefix + "empty" in p.stderr, p.stderr


@extra(11, "sandbox-links")
async def x11(ctx: Ctx) -> None:
    """A symlink inside the roots that points outside: ``fs/remove`` removes the link and
    ``fs/copy`` copies the link itself (the link's target is never touched); a recursive copy
    into a tree holding a link to outside the roots does not write there."""
    c = await ctx.conn()
    rw, out = ctx.tmp / "rw", ctx.tmp / "out"
    rw.mkdir()
    out.mkdir()
    (out / "secret").write_text("s")
    sandbox = {"permissions": {"type": "managed", "network": "restricted", "file_system": {
        "type": "restricted", "entries": [{"path": {"type": "path", "path": str(rw)}, "access": "write"}]}},
        "windowsSandboxLevel": "disabled"}
    os.symlink(out / "secret", rw / "l")
    assert_result(await c.call("fs/copy", {"sourcePath": str(rw / "l"), "destinationPath": str(rw / "m"),
                                           "recursive": False, "sandbox": sandbox}), {})
    assert os.readlink(rw / "m") == str(out / "secret")
    assert_result(await c.call("fs/remove", {"path": str(rw / "l"), "sandbox": sandbox}), {})
    assert not os.path.lexists(rw / "l") and (out / "secret").read_text() == "s"
    (rw / "src" / "sub").mkdir(parents=True)
    (rw / "src" / "sub" / "f").write_text("payload")
    (rw / "dst").mkdir()
    os.symlink(out, rw / "dst" / "sub")
    res = await c.call("fs/copy", {"sourcePath": str(rw / "src"), "destinationPath": str(rw / "dst"),
                                   "recursive": True, "sandbox": sandbox})
    assert not (out / "f").exists(), res
