"""Fixtures for tests that drive the real codex-cli binaries (0.131.0, and 0.171.0).

``codex_bin`` (session) installs ``@openai/codex@0.131.0`` from npm into a cache directory once
(see ``codex.py``) and skips, with the reason, only when npm cannot provide it; ``codex171_bin``
does the same for 0.171.0 (``ensure_codex(CODEX_171)``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from .codex import CODEX_171, CodexUnavailable, ensure_codex
from .procs import ServerProcess, isolated_env, ours_exec_server_argv, real_exec_server_argv


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    try:
        return ensure_codex()
    except CodexUnavailable as exc:
        pytest.skip(f"codex 0.131.0 unavailable: {exc}")


@pytest.fixture(scope="session")
def codex171_bin() -> Path:
    """The real codex 0.171.0 binary; skips (with npm's reason) only when npm cannot provide it."""
    try:
        return ensure_codex(CODEX_171)
    except CodexUnavailable as exc:
        pytest.skip(f"codex {CODEX_171} unavailable: {exc}")


def start_exec_server(impl: str, tmp: Path, codex: Path | None, extra_env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``ours``, ``real`` or ``real171`` exec-server on ws://127.0.0.1:0 with an isolated CODEX_HOME
    (``codex`` is the real binary for ``real``/``real171``)."""
    argv = ours_exec_server_argv() if impl == "ours" else real_exec_server_argv(codex=codex)
    env = isolated_env(tmp / f"{impl}-server-home", extra_env)
    return ServerProcess(argv, env=env, cwd=str(tmp), log_dir=tmp, name=f"{impl}-exec-server").start()


@pytest.fixture
def exec_server_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """``factory(impl, extra_env=None) -> ServerProcess``; every server is killed at teardown.
    ``impl``: ``ours``, ``real`` (codex 0.131.0) or ``real171`` (codex 0.171.0)."""
    started: list[ServerProcess] = []
    real_bins = {"real": "codex_bin", "real171": "codex171_bin"}

    def factory(impl: str, extra_env: dict[str, str] | None = None) -> ServerProcess:
        codex = request.getfixturevalue(real_bins[impl]) if impl in real_bins else None
        srv = start_exec_server(impl, tmp_path, codex, extra_env)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture
def process_factory(tmp_path: Path) -> Iterator:
    """``factory(argv, extra_env=None, wait_url=True, name=...) -> ServerProcess`` (killed at teardown)."""
    started: list[ServerProcess] = []

    def factory(argv: list[str], extra_env: dict[str, str] | None = None, wait_url: bool = True,
                name: str = "proc") -> ServerProcess:
        srv = ServerProcess(argv, env=isolated_env(tmp_path / f"{name}-home", extra_env), cwd=str(tmp_path),
                            log_dir=tmp_path, name=name)
        started.append(srv)
        return srv.start(wait_url=wait_url)

    yield factory
    for srv in started:
        srv.stop()
