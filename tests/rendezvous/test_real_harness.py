"""Real codex 0.131.0 harness (``codex exec``) -> our rendezvous -> real 0.131.0 executor.

Reuses the recipes of tests/interop (fake model server, isolated CODEX_HOME).  Skipped with a
reason when the codex binary is not cached.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from _rdv_helpers import metric, metrics_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the interop helpers

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]


async def test_real_harness_through_rendezvous_to_real_executor(make_server, http, tmp_path) -> None:
    from test_real_executor import _codex_binary

    binary = _codex_binary()
    if binary is None:
        pytest.skip("codex 0.131.0 binary not cached (run tests/interop first or set EXECRELAY_CODEX_BIN)")
    from interop.fake_model import FakeModel
    from interop.harness import run_codex_exec, write_codex_home

    server = await make_server(heartbeat=30.0)
    tag = f"executor-{uuid.uuid4().hex}"
    env = dict(os.environ, CODEX_HOME=str(tmp_path / "exec-home"), HOME=str(tmp_path),
               EXECRELAY_TEST_EXECUTOR_TAG=tag,
               CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN=server.mint_token("executor", "real-2"))
    (tmp_path / "exec-home").mkdir()
    proc = subprocess.Popen([str(binary), "exec-server", "--remote", server.url, "--executor-id", "real-2"],
                            env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while metric(await metrics_text(http, server), "executors_connected") != 1:
            assert time.monotonic() < deadline, "executor never connected"
            await asyncio.sleep(0.05)
        token = f"token-{uuid.uuid4().hex}"
        work = tmp_path / "work"
        work.mkdir()
        model = FakeModel(f'echo {token}; echo "tag=$EXECRELAY_TEST_EXECUTOR_TAG"',
                          final_text=f"finished {token}").start()
        try:
            write_codex_home(tmp_path / "codex-home", model.provider_url, work)
            result = await run_codex_exec(binary, codex_home=tmp_path / "codex-home", workdir=work,
                                          exec_server_url=server.harness_url("real-2"), timeout=90)
        finally:
            model.stop()
        diag = f"rc={result.returncode}\nstdout:{result.stdout[-2000:]}\nstderr:{result.stderr[-3000:]}"
        assert result.returncode == 0, diag
        outputs = model.tool_outputs()
        assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
        text = await metrics_text(http, server)
        assert metric(text, "frames_routed_total", '{direction="to_executor"}') >= 3
        assert "execrelay_rendezvous_bad_frames_total{" not in text  # nobody sent anything invalid
        # The harness exited: its (legacy) stream was reset toward the executor.
        deadline = time.monotonic() + 5
        while metric(await metrics_text(http, server), "streams") != 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert metric(await metrics_text(http, server), "resets_total",
                      '{reason="harness_disconnected",to="executor"}') >= 1
        assert proc.poll() is None  # the executor survived all of it
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
