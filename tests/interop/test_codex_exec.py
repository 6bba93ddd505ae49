"""The real ``codex exec`` 0.131.0 harness runs an ``exec_command`` tool call on an exec-server.

``ours`` is the point of the test; ``real`` (codex's own exec-server) is the control that proves
the harness setup itself works. The command prints a token only the executor's environment
holds, so the output can only come from a process the executor spawned, and it must reach the
fake model in the follow-up /v1/responses request.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .harness import assert_tool_call_ran, exec_turn_ids, run_exec_turn

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
@pytest.mark.parametrize("impl", ["ours", "real"])
async def test_codex_exec_tool_call_runs_on_executor(impl: str, tty: bool, codex_bin: Path, tmp_path: Path,
                                                      exec_server_factory) -> None:
    turn = exec_turn_ids(tmp_path)
    executor_tag, token, marker = turn.executor_tag, turn.token, turn.work / "marker.txt"
    command = f'echo {token}; echo "$EXECRELAY_TEST_EXECUTOR_TAG" > {marker}; echo "tag=$EXECRELAY_TEST_EXECUTOR_TAG"'
    server = exec_server_factory(impl, {"EXECRELAY_TEST_EXECUTOR_TAG": executor_tag})
    if tty:
        command += '; if [ -t 1 ]; then echo stdout-is-a-tty; fi'
    result, model, diag = await run_exec_turn(codex_bin, tmp_path, turn, server, command, tty)
    output = assert_tool_call_ran(result, model, diag, token, executor_tag)
    assert marker.read_text().strip() == executor_tag
    assert ("stdout-is-a-tty" in output) is tty, (output, diag)
    assert f"finished {token}" in result.stdout, diag
