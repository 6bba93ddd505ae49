"""One ``execrelay exec-server`` serves the real ``codex exec`` 0.131.0 and 0.171.0 harnesses.

The point of ``--compat auto``: one ``execrelay exec-server`` serves a real 0.131.0 and a real
0.171.0 harness at the same time (no upstream release can: each refuses the other's paths).
Each release alone, against ``ours`` and its own control, is ``test_codex_exec.py``.
"""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from .harness import TTY_MARK, run_tool_call, server_diag

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

TAG_ENV = "EXECRELAY_TEST_EXECUTOR_TAG"


async def test_one_server_serves_codex131_and_codex171_harnesses(codex_bin: Path, codex171_bin: Path,
                                                                 tmp_path: Path, exec_server_factory) -> None:
    """``execrelay exec-server`` with default flags (``--compat auto``): a 0.131.0 and a 0.171.0
    ``codex exec`` run their tool calls concurrently on the same server, then once more each
    (pipes then tty), so each dialect is served both beside the other and after it."""
    tag = f"executor-{uuid.uuid4().hex}"
    server = exec_server_factory("ours", {TAG_ENV: tag})
    for round_, tty in enumerate((False, True)):
        homes = {name: tmp_path / f"{name}-{round_}" for name in ("h131", "h171")}
        for home in homes.values():
            home.mkdir()
        runs = await asyncio.gather(run_tool_call(codex_bin, homes["h131"], server.url, tty=tty, timeout=45),
                                    run_tool_call(codex171_bin, homes["h171"], server.url, tty=tty, timeout=45))
        for name, (token, diag, model) in zip(homes, runs):
            outputs = model.tool_outputs()
            where = f"{name} tty={tty}\n{diag}" + server_diag(server)
            assert len(outputs) == 1 and token in outputs[0], (outputs, where)
            assert f"tag={tag}" in outputs[0], (outputs, where)
            assert (TTY_MARK in outputs[0]) is tty, (outputs, where)
    assert server.proc is not None and server.proc.poll() is None, server.stderr_text()[-3000:]
