"""Fixtures for the exec-server conformance suite (docs/exec-server.md).

Every case runs against ``ours`` (``python -m execrelay exec-server``) and ``real``
(``codex exec-server`` 0.131.0 from npm). One server per implementation serves the whole
session; cases that need their own process (stdio, startup line) start it themselves.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest


_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:  # so `interop.*` helpers import however pytest was invoked
    sys.path.insert(0, _TESTS)

from interop.aiohttp_thread import ThreadedApp  # noqa: E402
from interop.codex import CodexUnavailable, ensure_codex  # noqa: E402
from interop.procs import (ServerProcess, isolated_env, ours_exec_server_argv,  # noqa: E402
                           impl_fixture, real_exec_server_argv, shared_server)

from .httpfixture import start_http_fixture  # noqa: E402

# EXECRELAY_CONFORMANCE_IMPLS=ours (or real) restricts the suite (default: see selected_impls).
impl = impl_fixture("EXECRELAY_CONFORMANCE_IMPLS")


def server_argv(impl: str, listen: str) -> list[str]:
    if impl == "ours":
        return ours_exec_server_argv(listen, compat="0.131")  # the 0.131.0 dialect, byte for byte
    try:
        codex = ensure_codex()
    except CodexUnavailable as exc:
        pytest.skip(f"codex 0.131.0 unavailable: {exc}")
    return real_exec_server_argv(listen, codex)


@pytest.fixture(scope="session")
def conformance_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(scope="session")
def exec_server(impl: str, conformance_tmp: Path) -> Iterator[ServerProcess]:
    """The shared server for ``impl``; a start failure fails every case of that half."""
    with shared_server(server_argv(impl, "ws://127.0.0.1:0"), home=conformance_tmp / f"{impl}-home",
                       cwd=conformance_tmp, log_dir=conformance_tmp, name=f"{impl}-shared") as srv:
        yield srv


@pytest.fixture(scope="session")
def http_fixture() -> Iterator[ThreadedApp]:
    app = start_http_fixture()
    yield app
    app.stop()


def server_env(tmp: Path, impl: str) -> dict[str, str]:
    return isolated_env(tmp / f"{impl}-home-{os.getpid()}")
