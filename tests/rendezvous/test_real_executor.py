"""Our rendezvous in front of the real codex 0.131.0 executor (``codex exec-server --remote``).

Uses the binary cached by tests/interop (``~/.cache/execrelay/codex-0.131.0`` or
``EXECRELAY_CODEX_BIN``); skipped with a reason when it is not there (tests/interop installs it).
"""
from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import subprocess
import time
from pathlib import Path

import pytest

from _rdv_helpers import connect_harness, data, expect_silence, metric, metrics_text, recv, resume
from execrelay.rendezvous import EXECUTOR_UNAVAILABLE, STREAM_IN_USE
from execrelay.wire import DATA, RESET

pytestmark = pytest.mark.interop


def _codex_binary() -> Path | None:
    explicit = os.environ.get("EXECRELAY_CODEX_BIN")
    if explicit:
        return Path(explicit)
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    prefix = Path(os.environ.get("EXECRELAY_CODEX_CACHE",
                                 Path.home() / ".cache" / "execrelay" / "codex-0.131.0"))
    for cand in (prefix / "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/codex/codex",
                 prefix / "node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex"):
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    return None


async def _wait_metric(http, server, name, labels, value, timeout=15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if metric(await metrics_text(http, server), name, labels) == value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} never reached {value}")
        await asyncio.sleep(0.05)


def _json(frame) -> dict:
    assert frame.kind == DATA, frame
    return json.loads(frame.payload)


async def test_real_executor_through_rendezvous(make_server, http, tmp_path) -> None:
    binary = _codex_binary()
    if binary is None:
        pytest.skip("codex 0.131.0 binary not cached (run tests/interop first or set EXECRELAY_CODEX_BIN)")
    server = await make_server(executor_grace=0.8)
    env = dict(os.environ, CODEX_HOME=str(tmp_path), HOME=str(tmp_path),
               CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=server.mint_token("executor", "real-1"))
    proc = subprocess.Popen([str(binary), "exec-server", "--remote", server.url, "--executor-id", "real-1"],
                            env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        await _wait_metric(http, server, "executors_connected", "", 1)
        h1 = await connect_harness(http, server, "real-1")
        h2 = await connect_harness(http, server, "real-1")
        init = b'{"id":1,"method":"initialize","params":{"clientName":"rdv-test"}}'
        # Two streams, each with its own session, exactly as a 0.131.0 harness opens them.
        for h, sid in ((h1, "stream-a"), (h2, "stream-b")):
            await h.send_bytes(resume(sid, 0))
            await h.send_bytes(data(sid, 0, init))
        a = await recv(h1, 10)
        b = await recv(h2, 10)
        assert (a.stream_id, b.stream_id) == ("stream-a", "stream-b")
        sa, sb = _json(a)["result"]["sessionId"], _json(b)["result"]["sessionId"]
        assert sa != sb
        # The intruder is refused by the rendezvous; the executor never sees its frame.
        await h2.send_bytes(data("stream-a", 1, b'{"id":2,"method":"test/unknown"}'))
        f = await recv(h2)
        assert (f.kind, f.reason) == (RESET, STREAM_IN_USE)
        await h1.send_bytes(data("stream-a", 1, b'{"method":"initialized","params":{}}'))
        await h1.send_bytes(data("stream-a", 2, b'{"id":2,"method":"test/unknown"}'))
        err = _json(await recv(h1, 10))
        assert err["id"] == 2 and err["error"]["code"] == -32601
        await expect_silence(h1, 0.2)
        # Harness loss -> the executor gets Reset harness_disconnected and frees the stream:
        # the same stream id later starts a fresh, uninitialised virtual stream.
        await h2.close()
        await asyncio.sleep(0.2)
        h3 = await connect_harness(http, server, "real-1")
        await h3.send_bytes(data("stream-b", 0, b'{"id":5,"method":"process/read","params":{"processId":"x"}}'))
        reply = _json(await recv(h3, 10))
        assert reply["id"] == 5 and "initialize" in reply["error"]["message"]
        # Executor killed (no re-registration): open streams end with executor_unavailable.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        for h, sid in ((h1, "stream-a"), (h3, "stream-b")):
            f = await recv(h, 5)
            assert (f.kind, f.stream_id, f.reason) == (RESET, sid, EXECUTOR_UNAVAILABLE)
        text = await metrics_text(http, server)
        assert metric(text, "resets_total", '{reason="harness_disconnected",to="executor"}') == 1
        for h in (h1, h3):
            await h.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
