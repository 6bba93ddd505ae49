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
                           real_exec_server_argv)

from .httpfixture import start_http_fixture  # noqa: E402

# EXECRELAY_CONFORMANCE_IMPLS=ours (or real) restricts the suite.  By default the real binary's
# half runs only in the accelerated pass: it does not depend on our build, so the
# EXECRELAY_PURE=1 pass of the README's test command would only repeat it.
_DEFAULT_IMPLS = "ours" if os.environ.get("EXECRELAY_PURE", "") not in ("", "0") else "real,ours"
IMPLS = [i.strip() for i in os.environ.get("EXECRELAY_CONFORMANCE_IMPLS", _DEFAULT_IMPLS).split(",") if i.strip()]


def server_argv(impl: str, listen: str) -> list[str]:
    if impl == "ours":
        # the 0.131.0 suite pins the 0.131 dialect; auto mode has its own tests
        return ours_exec_server_argv(listen)[:-2] + ["--compat", "0.131", "--listen", listen]
    try:
        codex = ensure_codex()
    except CodexUnavailable as exc:
        pytest.skip(f"codex 0.131.0 unavailable: {exc}")
    return real_exec_server_argv(listen, codex)


@pytest.fixture(scope="session")
def conformance_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(scope="session", params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def exec_server(impl: str, conformance_tmp: Path) -> Iterator[ServerProcess]:
    """The shared server for ``impl``; a start failure fails every case of that half."""
    argv = server_argv(impl, "ws://127.0.0.1:0")
    home = conformance_tmp / f"{impl}-home"
    srv = ServerProcess(argv, env=isolated_env(home), cwd=str(conformance_tmp),
                        log_dir=conformance_tmp, name=f"{impl}-shared")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def http_fixture() -> Iterator[ThreadedApp]:
    app = start_http_fixture()
    yield app
    app.stop()


def server_env(tmp: Path, impl: str) -> dict[str, str]:
    return isolated_env(tmp / f"{impl}-home-{os.getpid()}")
