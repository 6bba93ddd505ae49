"""``start_server(impl)``: an exec-server of either dialect (see ``_harness_servers.py``)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest
from _harness_servers import server_argv

from interop.procs import ServerProcess, isolated_env


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[[str], ServerProcess]]:
    """``start_server(impl) -> ServerProcess`` (its cwd is ``tmp_path / "server cwd ü"``);
    every server is killed at teardown."""
    started: list[ServerProcess] = []

    def start(impl: str) -> ServerProcess:
        cwd = tmp_path / "server cwd ü"
        cwd.mkdir(exist_ok=True)
        srv = ServerProcess(server_argv(impl), env=isolated_env(tmp_path / f"{impl}-home"), cwd=str(cwd),
                            log_dir=tmp_path, name=f"{impl}-exec-server")
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
