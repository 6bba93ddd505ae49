"""Details of the 0.171 methods probed from the real 0.171.0 binary that the differential suite
(tests/conformance171) does not cover, in process with ``--compat 0.171``."""
from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from execrelay.executor import ExecServer, ExecServerConfig
from execrelay.executor.fileuri import to_uri

from executor.conftest import Client  # tests/ is on sys.path (rootdir-relative packages)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def server() -> AsyncIterator[ExecServer]:
    srv = ExecServer(ExecServerConfig(compat="0.171"))
    yield srv
    await srv.aclose()


async def test_gates_and_param_order(server: ExecServer) -> None:
    c = Client(server)
    cfg = {"cwd": "file:///tmp", "configPaths": [], "requirementsPaths": []}
    # the value check of environmentConfig/read comes after the gate, the URI syntax before it
    assert await c.error("environmentConfig/read", cfg) == (
        -32600, "client must call initialize before using environment config methods")
    assert await c.error("environmentConfig/read", dict(cfg, cwd="/tmp")) == (
        -32602, "invalid URI: relative URL without a base")
    assert await c.error("environment/info", {"a": 1}) == (-32602, "invalid type: map, expected unit")
    assert await c.error("environment/info", 5) == (-32602, "invalid type: number, expected unit")
    assert await c.error("fs/getMetadata", {"path": 1.5}) == (-32602, "invalid type: number, expected a string")
    await c.handshake()
    assert await c.error("environmentConfig/read", cfg) == (-32602, "at least one config or requirements path is required")
    assert await c.error("fs/readBlock", {"handleId": "h", "offset": -1, "len": 1}) == (-32602, "invalid number")
    walk = {"maxDepth": "a", "maxDirectories": 1, "maxEntries": 1, "followDirectorySymlinks": False}
    assert await c.error("fs/walk", {"path": "file:///tmp", "options": walk}) == (
        -32602, 'invalid type: string "a", expected usize')


async def test_block_offsets_past_off_t(server: ExecServer, tmp_path: Path) -> None:
    c = Client(server)
    await c.handshake()
    (tmp_path / "a").write_text("x")
    assert await c.result("fs/open", {"handleId": "r", "path": to_uri(str(tmp_path / "a"))}) == {"handleId": "r"}
    assert await c.error("fs/readBlock", {"handleId": "r", "offset": (1 << 64) - 1, "len": 1}) == (
        -32600, "Invalid argument (os error 22)")
    assert await c.result("fs/open", {"handleId": "w", "path": to_uri(str(tmp_path / "w")), "mode": "replace"})
    for offset in [(1 << 64) - 1, (1 << 63) - 1]:
        assert await c.error("fs/writeBlock", {"handleId": "w", "offset": offset, "chunk": "eA=="}) == (
            -32600, "file write range exceeds the signed 64-bit file offset limit")
