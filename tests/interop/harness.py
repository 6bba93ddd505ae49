"""Run the real ``codex exec`` (0.131.0 or 0.171.0) as a harness against an exec-server URL.

Both releases take the same config.toml and the same fake model (``fake_model.py``): 0.171.0
still sends ``exec_command`` among its tools, accepts the same SSE events and needs no extra
config (checked 2026-12 with the real binary; it only warns that ``gpt-5`` metadata is unknown
and that it will not create PATH aliases under a temporary CODEX_HOME).

``CODEX_EXEC_SERVER_URL`` selects the executor: ``ws://IP:PORT`` for a plain exec-server, or a
rendezvous URL whose query contains ``role=harness`` (relay mode, e.g.
``ws://127.0.0.1:PORT/harness?role=harness&executor_id=ID&sig=TOKEN``). Config lives in an
isolated ``CODEX_HOME`` (config.toml below) so the user's own codex setup never leaks in.
"""
from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from .procs import isolated_env

MOCK_API_KEY_ENV = "MOCK_API_KEY"


def write_codex_home(codex_home: Path, provider_url: str, workdir: Path) -> Path:
    """Write a config.toml pointing codex at the fake model, no approvals, no sandbox."""
    codex_home.mkdir(parents=True, exist_ok=True)
    workdir_s = str(workdir).replace("\\", "\\\\").replace('"', '\\"')
    (codex_home / "config.toml").write_text(
        'model = "gpt-5"\n'
        'model_provider = "mock"\n'
        'approval_policy = "never"\n'
        'sandbox_mode = "danger-full-access"\n'
        "\n"
        "[model_providers.mock]\n"
        'name = "mock"\n'
        f'base_url = "{provider_url}"\n'
        'wire_api = "responses"\n'
        f'env_key = "{MOCK_API_KEY_ENV}"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
        "\n"
        f'[projects."{workdir_s}"]\n'
        'trust_level = "trusted"\n'
        "\n"
        "# Tests talk to 127.0.0.1 only: no plugin/app sync with github.com or chatgpt.com.\n"
        "[features]\n"
        "plugins = false\n"
        "apps = false\n"
        "\n"
        "[analytics]\n"
        "enabled = false\n"
    )
    return codex_home / "config.toml"


@dataclass
class ExecResult:
    returncode: int | None  # None: killed after the timeout
    stdout: str
    stderr: str
    timed_out: bool


async def run_codex_exec(codex: Path, *, codex_home: Path, workdir: Path, exec_server_url: str | None,
                         prompt: str = "run the command", timeout: float = 90.0,
                         extra_env: dict[str, str] | None = None) -> ExecResult:
    """Run ``codex exec`` in its own process group; kill the group on timeout or cancellation."""
    env = isolated_env(codex_home, {MOCK_API_KEY_ENV: "test-key", **(extra_env or {})})
    if exec_server_url is not None:
        env["CODEX_EXEC_SERVER_URL"] = exec_server_url
    argv = [str(codex), "exec", "--skip-git-repo-check", "-C", str(workdir), prompt]
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=str(workdir), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    timed_out = False
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        timed_out = True
        _killpg(proc.pid)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        _killpg(proc.pid)
    return ExecResult(None if timed_out else proc.returncode, out.decode("utf-8", "replace"),
                      err.decode("utf-8", "replace"), timed_out)


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


TTY_PROBE = "; if [ -t 1 ]; then echo stdout-is-a-tty; fi"
TTY_MARK = "stdout-is-a-tty"


async def run_tool_call(codex_bin: Path, tmp_path: Path, harness_url: str, tty: bool | None = None,
                        timeout: float = 90.0):
    """One ``codex exec`` turn whose tool call runs ``echo <token>`` and prints the executor's
    ``EXECRELAY_TEST_EXECUTOR_TAG`` on whatever executor ``harness_url`` reaches.  Returns
    ``(token, diagnostics, model)``; ``model.tool_outputs()`` is what reached the model.
    ``tty`` (when not None) is the tool call's ``tty`` argument, and the command then also
    prints ``TTY_MARK`` when its stdout is a terminal. ``timeout`` bounds the ``codex exec`` run."""
    import uuid

    from .fake_model import FakeModel

    token = f"token-{uuid.uuid4().hex}"
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    command = f'echo {token}; echo "tag=$EXECRELAY_TEST_EXECUTOR_TAG"' + (TTY_PROBE if tty is not None else "")
    model = FakeModel(command, final_text=f"finished {token}", tty=tty).start()
    try:
        write_codex_home(tmp_path / "codex-home", model.provider_url, work)
        result = await run_codex_exec(codex_bin, codex_home=tmp_path / "codex-home", workdir=work,
                                      exec_server_url=harness_url, timeout=timeout)
    finally:
        model.stop()
    diag = exec_diag(result)
    assert result.returncode == 0, diag
    return token, diag, model


@dataclass
class ExecTurn:
    """One ``codex exec`` turn against an exec-server process, prepared by ``exec_turn_ids``."""

    executor_tag: str   # put in the executor's environment only
    token: str          # echoed by the tool call
    work: Path          # the harness's workdir


def exec_turn_ids(tmp_path: Path) -> ExecTurn:
    """Fresh tag and token, and an empty ``tmp_path/work``."""
    import uuid

    work = tmp_path / "work"
    work.mkdir()
    return ExecTurn(f"executor-{uuid.uuid4().hex}", f"token-{uuid.uuid4().hex}", work)


async def run_exec_turn(codex_bin: Path, tmp_path: Path, turn: ExecTurn, server, command: str,
                        tty: bool):
    """``codex exec`` on ``server`` (an exec-server process) whose model asks for one tool call
    running ``command``; returns ``(result, model, diagnostics)`` for the caller's assertions."""
    from .fake_model import FakeModel

    with FakeModel(command, final_text=f"finished {turn.token}", tty=tty) as model:
        write_codex_home(tmp_path / "codex-home", model.provider_url, turn.work)
        result = await run_codex_exec(codex_bin, codex_home=tmp_path / "codex-home", workdir=turn.work,
                                      exec_server_url=server.url, timeout=90)
    return result, model, exec_diag(result) + server_diag(server)


def exec_diag(result) -> str:
    """What a failed ``codex exec`` run left behind (exit, timeout, output tails), for messages."""
    return (f"rc={result.returncode} timed_out={result.timed_out}\nstdout:\n{result.stdout[-3000:]}\n"
            f"stderr:\n{result.stderr[-4000:]}")


def server_diag(server) -> str:
    """The tail of an exec-server process's stderr, to append to ``exec_diag``."""
    return f"\nserver stderr:\n{server.stderr_text()[-3000:]}"


def assert_tool_call_ran(result, model, diag: str, token: str, tag: str) -> str:
    """The turn completed with exactly one tool call whose output carries ``token`` and the
    executor's ``tag`` (only the executor's environment has it: the command ran there).
    Returns that output."""
    assert not result.timed_out, diag
    assert result.returncode == 0, diag
    # First request asks for the tool call; the second carries its output back.
    assert len(model.requests) == 2, diag
    outputs = model.tool_outputs()
    assert len(outputs) == 1, (outputs, diag)
    assert token in outputs[0], (outputs, diag)
    assert f"tag={tag}" in outputs[0], (outputs, diag)
    return outputs[0]
