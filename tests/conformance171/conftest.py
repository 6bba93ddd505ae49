"""Fixtures for the codex 0.171.0 differential conformance suite (see FINDINGS.md).

Every case runs against ``real`` (``codex exec-server`` 0.171.0 from npm) and ``ours``
(``python -m execrelay exec-server --compat 0.171``). One server per implementation serves the
whole session, started in its own directory with an isolated CODEX_HOME so that the
``environmentInfo`` and ``environmentConfig/read`` values the cases compare are known.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest


_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # so `interop.*` / `conformance.*` helpers import however pytest was invoked
    sys.path.insert(0, _TESTS)

from interop.codex import CODEX_171, CodexUnavailable, ensure_codex  # noqa: E402
from interop.procs import ServerProcess, impl_fixture, shared_server  # noqa: E402

# EXECRELAY_CONFORMANCE171_IMPLS=real|ours|real,ours restricts the suite; as in the 0.131 suite,
# the real binary's half runs only in the accelerated pass by default (see selected_impls).
impl = impl_fixture("EXECRELAY_CONFORMANCE171_IMPLS")


def server_argv(impl: str, listen: str) -> list[str]:
    if impl == "ours":
        return [sys.executable, "-m", "execrelay", "exec-server", "--compat", "0.171", "--listen", listen]
    try:
        codex = ensure_codex(CODEX_171)
    except CodexUnavailable as exc:
        pytest.skip(f"codex {CODEX_171} unavailable: {exc}")
    return [str(codex), "exec-server", "--listen", listen]


@dataclass
class Server171:
    """A running server plus the directories its environment reports (cwd, CODEX_HOME)."""

    proc: ServerProcess
    cwd: Path
    codex_home: Path

    @property
    def url(self) -> str:
        assert self.proc.url is not None
        return self.proc.url


@pytest.fixture(scope="session")
def conformance171_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance171")


@pytest.fixture(scope="session")
def exec_server171(impl: str, conformance171_tmp: Path) -> Iterator[Server171]:
    """The shared server for ``impl``; a start failure fails every case of that half."""
    cwd = conformance171_tmp / f"{impl}-cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    home = conformance171_tmp / f"{impl}-home"
    with shared_server(server_argv(impl, "ws://127.0.0.1:0"), home=home, cwd=cwd, log_dir=conformance171_tmp,
                       name=f"{impl}-171-shared") as srv:
        yield Server171(srv, cwd, home)
