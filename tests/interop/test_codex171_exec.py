"""The real ``codex exec`` 0.171.0 harness runs an ``exec_command`` tool call on an exec-server.

``real171`` (codex 0.171.0's own ``codex exec-server``) is the control that proves the harness
setup works with the new dialect; ``ours`` (``execrelay exec-server``, default flags) is the point. As in
``test_codex_exec.py`` the command prints a tag only the executor's environment holds and writes
it to a file in the work directory, so the output can only come from a process the executor
spawned (in the cwd the harness sent as a ``file://`` URI), and it must reach the fake model.

The last test is the point of ``--compat auto``: one ``execrelay exec-server`` serves a real
0.131.0 and a real 0.171.0 harness at the same time (no upstream release can: each refuses the
other's paths).
"""
from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from .harness import (TTY_MARK, TTY_PROBE, assert_tool_call_ran, exec_turn_ids, run_exec_turn, run_tool_call,
                      server_diag)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

TAG_ENV = "EXECRELAY_TEST_EXECUTOR_TAG"


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
@pytest.mark.parametrize("impl", ["real171", "ours"])
async def test_codex171_exec_tool_call_runs_on_executor(impl: str, tty: bool, codex171_bin: Path, tmp_path: Path,
                                                         exec_server_factory) -> None:
    turn = exec_turn_ids(tmp_path)
    executor_tag, token, marker = turn.executor_tag, turn.token, turn.work / "marker.txt"
    # A relative path: only a process started in the cwd the harness sent can write it there.
    command = f'echo {token}; echo "${TAG_ENV}" > marker.txt; echo "tag=${TAG_ENV}"' + TTY_PROBE
    server = exec_server_factory(impl, {TAG_ENV: executor_tag})
    result, model, diag = await run_exec_turn(codex171_bin, tmp_path, turn, server, command, tty)
    output = assert_tool_call_ran(result, model, diag, token, executor_tag)
    assert "exec_command" in [t.get("name") for t in model.requests[0].get("tools", [])], diag
    assert marker.read_text().strip() == executor_tag, diag
    assert (TTY_MARK in output) is tty, (output, diag)
    assert f"finished {token}" in result.stdout, diag


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
