"""codex 0.171.0's legacy relay harness (``CODEX_EXEC_SERVER_URL`` with ``?role=harness``).

0.171.0 kept the plaintext relay framing of 0.131.0 for the harness, so the path

    real ``codex exec`` 0.171.0 -> ``execrelay rendezvous`` -> ``execrelay exec-server --remote``

is served entirely by our pieces; the same path with the real 0.131.0 harness proves the
plumbing (our two CLIs as subprocesses, tokens, registration). There is no real 0.171 control: the 0.171.0 ``codex exec-server
--remote`` cannot serve a legacy harness. With ``--remote-transport noise`` (the default) it
registers at ``/cloud/environment/{id}/register`` and answers a plain Data frame with
``Reset{noise_relay_protocol_error}``; with ``--remote-transport direct`` (which also requires
``--aws-sigv4``) it registers at ``/cloud/environment/{id}/direct/register`` with
``{"transport": "direct_jsonrpc_v1"}`` and then speaks bare JSON-RPC text frames on the one
websocket it dials, not relay frames (both observed with the 0.171.0 binary).

The control that does exist is for the harness half: the real 0.171.0 harness in relay mode,
bridged by ``MiniRelay`` to a plain exec-server, runs its tool call on the real 0.171.0 server
(``real171``), which pins the relay framing the rendezvous path depends on.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import aiohttp
import pytest

from execrelay.rendezvous import harness_url, mint

from .harness import TTY_MARK, run_tool_call, server_diag
from .mini_relay import MiniRelay
from .procs import (REMOTE_TOKEN_ENV, RENDEZVOUS_SECRET_ENV, ours_remote_executor_argv, ours_rendezvous_argv,
                    rendezvous_base)
from .test_codex_relay import _check_harness_opening

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

TAG_ENV = "EXECRELAY_TEST_EXECUTOR_TAG"
SECRET = "interop171-rendezvous-secret-0123456789"
EXECUTOR_CONNECTED = 'execrelay_rendezvous_connections{role="executor"} 1'


@pytest.mark.parametrize("impl", ["real171", "ours"])
async def test_codex171_relay_harness_bridged_to_plain_executor(impl: str, codex171_bin: Path, tmp_path: Path,
                                                                exec_server_factory) -> None:
    """Real 0.171.0 harness (relay framing) -> MiniRelay bridge -> plain exec-server."""
    tag = f"executor-{uuid.uuid4().hex}"
    server = exec_server_factory(impl, {TAG_ENV: tag})
    with MiniRelay(bridge_to=server.url) as relay:
        token, diag, model = await run_tool_call(codex171_bin, tmp_path, relay.harness_url())
        outputs = model.tool_outputs()
        diag += server_diag(server)
        assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
        # 0.171.0 opens a relay stream exactly as 0.131.0 does.
        _check_harness_opening(relay)


async def _wait_metric(base: str, line: str, timeout: float) -> str:
    """Poll the rendezvous's /metrics until ``line`` appears; returns the last scrape."""
    url = base + "/metrics"
    deadline = time.monotonic() + timeout
    text = ""
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(url) as resp:
                text = await resp.text()
            if line in text.splitlines():
                return text
            await asyncio.sleep(0.1)
    raise AssertionError(f"{line!r} not in {url} after {timeout:.0f}s:\n{text}")


HARNESSES = [pytest.param("codex_bin", id="codex131"), pytest.param("codex171_bin", id="codex171")]


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
@pytest.mark.parametrize("harness_bin", HARNESSES)
async def test_relay_harness_via_our_rendezvous_to_our_remote_executor(
        harness_bin: str, tty: bool, tmp_path: Path, process_factory, request: pytest.FixtureRequest) -> None:
    """Real ``codex exec`` -> ``execrelay rendezvous`` -> ``execrelay exec-server --remote`` (both our
    CLIs as subprocesses, default flags). The 0.131.0 harness is the control for this plumbing;
    the 0.171.0 harness is the point (gated)."""
    codex = request.getfixturevalue(harness_bin)
    tag = f"executor-{uuid.uuid4().hex}"
    executor_id = f"exec-{uuid.uuid4().hex[:8]}"
    rendezvous = process_factory(ours_rendezvous_argv(), {RENDEZVOUS_SECRET_ENV: SECRET}, name="rendezvous")
    base = rendezvous_base(rendezvous.stdout_lines[0])
    executor = process_factory(
        ours_remote_executor_argv(base, executor_id),
        {REMOTE_TOKEN_ENV: mint(SECRET.encode(), "executor", executor_id), TAG_ENV: tag},
        wait_url=False, name="ours-remote-executor")
    try:
        await _wait_metric(base, EXECUTOR_CONNECTED, 20)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nexecutor stderr:\n{executor.stderr_text()[-3000:]}") from None
    ws_base = "ws://" + base.removeprefix("http://")
    url = harness_url(ws_base, executor_id, mint(SECRET.encode(), "harness", executor_id))
    token, diag, model = await run_tool_call(codex, tmp_path, url, tty=tty, timeout=60)
    outputs = model.tool_outputs()
    diag += (f"\nexecutor stderr:\n{executor.stderr_text()[-3000:]}"
             f"\nrendezvous stderr:\n{rendezvous.stderr_text()[-2000:]}")
    assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
    assert (TTY_MARK in outputs[0]) is tty, (outputs, diag)
    metrics = await _wait_metric(base, EXECUTOR_CONNECTED, 5)
    assert "execrelay_rendezvous_registrations_total 1" in metrics.splitlines(), metrics
    for proc in (rendezvous, executor):
        assert proc.proc is not None and proc.proc.poll() is None, proc.stderr_text()[-3000:]
