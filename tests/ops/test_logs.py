"""Structured logs: JSON lines that parse and carry ids, the access log, no secret in any line.

Real processes (the command an operator runs) on loopback; process-level, so they run in the
compiled pass only (the build does not change what is logged).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest
import websockets

from execrelay.cli._ops import REDACTED, JsonFormatter, TextFormatter, redact, register_secret
from execrelay.harness import HarnessClient

from ._procs import SECRET, await_exit, execrelay, json_lines, start, wait_log

pytestmark = pytest.mark.skipif(os.environ.get("EXECRELAY_PURE") == "1",
                                reason="process-level: the compiled pass covers it (the build does not change logs)")

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _record(msg: str, **fields: object) -> logging.LogRecord:
    rec = logging.LogRecord("execrelay.t", logging.INFO, __file__, 1, msg, (), None)
    rec.fields = fields  # type: ignore[attr-defined]
    return rec


def test_formatters_one_line_with_fields_and_redaction() -> None:
    register_secret("s3cr3t-value-for-the-test")
    rec = _record("url ws://h/x?role=harness&sig=abc.def&x=1 and Bearer tok123\nnext",
                  stream_id="st-1", session_id="se-1", note="s3cr3t-value-for-the-test")
    text = TextFormatter().format(rec)
    assert "\n" not in text and "stream_id=st-1 session_id=se-1" in text
    js = JsonFormatter().format(rec)
    assert "\n" not in js
    import json

    obj = json.loads(js)
    assert obj["stream_id"] == "st-1" and obj["level"] == "info" and obj["logger"] == "execrelay.t"
    for out in (text, js):
        assert "abc.def" not in out and "tok123" not in out and "s3cr3t-value-for-the-test" not in out
        assert REDACTED in out
    assert redact("nothing to hide") == "nothing to hide"


async def test_local_access_log_json_carries_session_and_trace(tmp_path: Path) -> None:
    p = start(execrelay("exec-server", "--listen", "ws://127.0.0.1:0", "--log-format", "json",
                        "--log-level", "info", "--access-log"), tmp_path, "exec")
    try:
        async with websockets.connect(p.url) as ws:
            await ws.send('{"id":1,"method":"initialize","params":{"clientName":"t"},'
                          f'"trace":{{"traceparent":"{TRACEPARENT}","tracestate":"k=v"}}}}')
            await asyncio.wait_for(ws.recv(), 10)
            await ws.send('{"method":"initialized"}')
            await ws.send('{"id":2,"method":"fs/getMetadata","params":{"path":"/"}}')
            await asyncio.wait_for(ws.recv(), 10)
            await ws.send('{"id":3,"method":"no/such","trace":{"traceparent":"garbage"}}')
            await asyncio.wait_for(ws.recv(), 10)
        await wait_log(p, "request")
        os.kill(p.proc.pid, signal.SIGTERM)
        assert await await_exit(p.proc, 15) == 0
    finally:
        p.stop()
    events = json_lines(p.stderr_text())
    requests = [e for e in events if e["msg"] == "request"]
    assert [(e["method"], e["request_id"], e["outcome"]) for e in requests] == [
        ("initialize", 1, "ok"), ("fs/getMetadata", 2, "ok"), ("no/such", 3, "error")]
    session = requests[0]["session_id"]
    assert session and all(e["session_id"] == session for e in requests)
    assert requests[0]["traceparent"] == TRACEPARENT and requests[0]["tracestate"] == "k=v"
    assert "traceparent" not in requests[1] and "traceparent" not in requests[2]  # absent / invalid
    assert all(e["duration_ms"] >= 0 and e["logger"] == "execrelay.executor.access" for e in requests)
    assert any(e["msg"] == "listening" for e in events)


async def test_access_log_is_off_by_default(tmp_path: Path) -> None:
    p = start(execrelay("exec-server", "--listen", "ws://127.0.0.1:0", "--log-format", "json",
                        "--log-level", "debug"), tmp_path, "exec")
    try:
        async with websockets.connect(p.url) as ws:
            await ws.send('{"id":1,"method":"initialize","params":{"clientName":"t"}}')
            await asyncio.wait_for(ws.recv(), 10)
        os.kill(p.proc.pid, signal.SIGTERM)
        assert await await_exit(p.proc, 15) == 0
    finally:
        p.stop()
    assert not [e for e in json_lines(p.stderr_text()) if e["msg"] == "request"]


async def test_remote_logs_carry_stream_ids_and_never_a_token(tmp_path: Path) -> None:
    """Rendezvous and remote executor at debug level with the access log: every JSON line
    parses; the registration bearer, the harness URL's token and the secret appear nowhere."""
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    rdv = start(execrelay("rendezvous", "--listen", "127.0.0.1:0", "--secret-file", str(secret_file),
                          "--log-format", "json", "--log-level", "debug"), tmp_path, "rdv")
    executor = None
    try:
        base = rdv.url.split()[-1]
        from execrelay.rendezvous.server import harness_url
        from execrelay.rendezvous.tokens import mint

        token = mint(SECRET.encode(), "executor", "ops-1", 600)
        htoken = mint(SECRET.encode(), "harness", "ops-1", 600)
        executor = start(execrelay("exec-server", "--remote", base, "--environment-id", "ops-1",
                                   "--log-format", "json", "--log-level", "debug", "--access-log"),
                         tmp_path, "exec", wait_url=False, CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=token)
        await wait_log(executor, "relay connected")
        url = harness_url(base.replace("http://", "ws://"), "ops-1", htoken)
        async with HarnessClient(url) as client:
            session = await client.open_session()
            await session.fs_get_metadata("/")
            stream = session.label
        os.kill(executor.proc.pid, signal.SIGTERM)
        assert await await_exit(executor.proc, 15) == 0
        os.kill(rdv.proc.pid, signal.SIGTERM)
        assert await await_exit(rdv.proc, 15) == 0
    finally:
        rdv.stop()
        if executor is not None:
            executor.stop()
    for proc in (executor, rdv):
        text = proc.stderr_text()
        for secret in (token, htoken, SECRET):
            assert secret not in text
        events = json_lines(text)
        assert events
    events = json_lines(executor.stderr_text())
    requests = [e for e in events if e["msg"] == "request"]
    assert [e["method"] for e in requests] == ["initialize", "fs/getMetadata"]
    assert all(e["stream_id"] == stream and e["session_id"] == session.session_id for e in requests)
    # the harness client sends a W3C traceparent with each request, with one trace id per session
    parents = [e["traceparent"] for e in requests]
    assert len({p.split("-")[1] for p in parents}) == 1 and len(set(parents)) == 2
    assert any(e["msg"] == "registered" and e["executor_id"] == "ops-1" for e in events)
    assert any(e["msg"] == "stream ended" and e["stream_id"] == stream and e["session_id"] == session.session_id
               for e in events)
    rdv_events = json_lines(rdv.stderr_text())
    assert {"executor connected", "harness connected", "harness disconnected"} <= {e["msg"] for e in rdv_events}
    assert all(e["executor_id"] == "ops-1" for e in rdv_events if e["msg"].startswith(("executor ", "harness ")))


async def test_rendezvous_refused_frame_line_carries_ids(tmp_path: Path) -> None:
    """The router's warning for a refused frame carries stream_id, executor_id and role as
    JSON fields (a harness's first frame of stream ``st-bad`` that does not decode)."""
    from execrelay.rendezvous.server import harness_url
    from execrelay.rendezvous.tokens import mint
    from execrelay.wire import encode_data

    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    rdv = start(execrelay("rendezvous", "--listen", "127.0.0.1:0", "--secret-file", str(secret_file),
                          "--log-format", "json"), tmp_path, "rdv")
    try:
        base = rdv.url.split()[-1]
        url = harness_url(base.replace("http://", "ws://"), "ops-2", mint(SECRET.encode(), "harness", "ops-2", 600))
        async with websockets.connect(url) as ws:
            # the stream id reads, the frame does not decode (a field 1 of the wrong wire type)
            await ws.send(encode_data("st-bad", 1, 0, 0, b"x") + b"\x0a\x00")
            for _ in range(200):
                events = [e for e in json_lines(rdv.stderr_text())
                          if e["msg"].startswith("refused invalid frame from harness 'ops-2': ")]
                if events:
                    break
                await asyncio.sleep(0.05)
            assert events, rdv.stderr_text()
            event = events[0]
        os.kill(rdv.proc.pid, signal.SIGTERM)
        assert await await_exit(rdv.proc, 15) == 0
    finally:
        rdv.stop()
    assert event["level"] == "warning" and event["logger"] == "execrelay.rendezvous"
    assert {k: event[k] for k in ("reason", "role", "executor_id", "stream_id")} == {
        "reason": "invalid", "role": "harness", "executor_id": "ops-2", "stream_id": "st-bad"}
