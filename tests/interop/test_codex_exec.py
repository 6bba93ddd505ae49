"""The real ``codex exec`` harness (0.131.0 and 0.171.0) runs an ``exec_command`` tool call on an
exec-server.

``ours`` (``execrelay exec-server``, default flags) is the point of the test; ``real`` (the
harness release's own ``codex exec-server``) is the control that proves the harness setup itself
works with that dialect. The command prints a tag only the executor's environment holds and
writes it to a file in the work directory, so the output can only come from a process the
executor spawned (in the cwd the harness sent), and it must reach the fake model in the
follow-up /v1/responses request. One test over both releases: the steps and the checks are the
same, only the binary and the control differ.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .harness import TTY_MARK, TTY_PROBE, assert_tool_call_ran, exec_turn_ids, run_exec_turn

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]

TAG_ENV = "EXECRELAY_TEST_EXECUTOR_TAG"

# (harness binary fixture, exec-server implementation, marker path relative to the cwd):
# 0.171.0 sends its cwd as a ``file://`` URI, and a relative marker proves the command ran there.
CASES = [
    pytest.param("codex_bin", "ours", False, id="131-ours"),
    pytest.param("codex_bin", "real", False, id="131-real"),
    pytest.param("codex171_bin", "real171", True, id="171-real"),
    pytest.param("codex171_bin", "ours", True, id="171-ours"),
]


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
@pytest.mark.parametrize(("harness", "impl", "relative_marker"), CASES)
async def test_codex_exec_tool_call_runs_on_executor(harness: str, impl: str, relative_marker: bool, tty: bool,
                                                      tmp_path: Path, exec_server_factory,
                                                      request: pytest.FixtureRequest) -> None:
    codex: Path = request.getfixturevalue(harness)
    turn = exec_turn_ids(tmp_path)
    executor_tag, token, marker = turn.executor_tag, turn.token, turn.work / "marker.txt"
    target = "marker.txt" if relative_marker else str(marker)
    command = f'echo {token}; echo "${TAG_ENV}" > {target}; echo "tag=${TAG_ENV}"'
    if tty:
        command += TTY_PROBE
    server = exec_server_factory(impl, {TAG_ENV: executor_tag})
    result, model, diag = await run_exec_turn(codex, tmp_path, turn, server, command, tty)
    output = assert_tool_call_ran(result, model, diag, token, executor_tag)
    if relative_marker:
        assert "exec_command" in [t.get("name") for t in model.requests[0].get("tools", [])], diag
    assert marker.read_text().strip() == executor_tag, diag
    assert (TTY_MARK in output) is tty, (output, diag)
    assert f"finished {token}" in result.stdout, diag
