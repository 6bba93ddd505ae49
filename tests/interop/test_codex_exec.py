"""The real ``codex exec`` 0.131.0 harness runs an ``exec_command`` tool call on an exec-server.

``ours`` is the point of the test; ``real`` (codex's own exec-server) is the control that proves
the harness setup itself works. The command prints a token only the executor's environment
holds, so the output can only come from a process the executor spawned, and it must reach the
fake model in the follow-up /v1/responses request.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from .fake_model import FakeModel
from .harness import assert_tool_call_ran, exec_diag, run_codex_exec, server_diag, write_codex_home

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
@pytest.mark.parametrize("impl", ["ours", "real"])
async def test_codex_exec_tool_call_runs_on_executor(impl: str, tty: bool, codex_bin: Path, tmp_path: Path,
                                                      exec_server_factory) -> None:
    executor_tag = f"executor-{uuid.uuid4().hex}"
    token = f"token-{uuid.uuid4().hex}"
    work = tmp_path / "work"
    work.mkdir()
    marker = work / "marker.txt"
    command = f'echo {token}; echo "$EXECRELAY_TEST_EXECUTOR_TAG" > {marker}; echo "tag=$EXECRELAY_TEST_EXECUTOR_TAG"'
    server = exec_server_factory(impl, {"EXECRELAY_TEST_EXECUTOR_TAG": executor_tag})
    if tty:
        command += '; if [ -t 1 ]; then echo stdout-is-a-tty; fi'
    with FakeModel(command, final_text=f"finished {token}", tty=tty) as model:
        write_codex_home(tmp_path / "codex-home", model.provider_url, work)
        result = await run_codex_exec(codex_bin, codex_home=tmp_path / "codex-home", workdir=work,
                                      exec_server_url=server.url, timeout=90)
        diag = exec_diag(result) + server_diag(server)
        output = assert_tool_call_ran(result, model, diag, token, executor_tag)
        assert marker.read_text().strip() == executor_tag
        assert ("stdout-is-a-tty" in output) is tty, (output, diag)
        assert f"finished {token}" in result.stdout, diag
