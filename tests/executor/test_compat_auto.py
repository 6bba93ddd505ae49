"""``--compat auto``: one server answers the 0.131 and the 0.171 dialects (docs/dialects.md §Auto mode).

A request's path params tell its dialect (native path: 0.131, ``file:`` URI: 0.171), the answer
uses the same form, and the session remembers the last form it saw for requests that carry no
path.  The fixed modes are checked here only where they differ from auto; the full dialects are
tests/conformance (``--compat 0.131``) and tests/conformance171 (``--compat 0.171``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from execrelay.executor import ExecServer, ExecServerConfig
from execrelay.executor.fileuri import to_uri

from .conftest import Client

pytestmark = pytest.mark.timeout(30)

NOT_URI = "invalid URI: relative URL without a base"
NOT_ABSOLUTE = "AbsolutePathBuf deserialized without a base path"
META_131 = ["isDirectory", "isFile", "isSymlink", "createdAtMs", "modifiedAtMs"]
META_171 = ["isDirectory", "isFile", "isSymlink", "size", "createdAtMs", "modifiedAtMs"]
WALK = {"maxDepth": 3, "maxDirectories": 10, "maxEntries": 10, "followDirectorySymlinks": False}


async def _server(compat: str) -> AsyncIterator[ExecServer]:
    srv = ExecServer(ExecServerConfig(compat=compat, detached_session_ttl=5.0))
    yield srv
    await srv.aclose()


@pytest.fixture
async def auto_server() -> AsyncIterator[ExecServer]:
    async for srv in _server("auto"):
        yield srv


async def _client(server: ExecServer) -> Client:
    c = Client(server)
    await c.handshake()
    return c


def _tree(tmp: Path) -> Path:
    root = tmp / "t r"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("hello")
    (root / "sub" / "ü.txt").write_text("x")
    return root


async def test_initialize_reports_environment_info(auto_server: ExecServer) -> None:
    c = Client(auto_server)
    res = await c.result("initialize", {"clientName": "t"})
    assert list(res) == ["sessionId", "environmentInfo"]
    assert res["environmentInfo"]["capabilities"]["fsWatchMissing"] is True
    assert res["environmentInfo"]["capabilities"]["environmentConfigRead"] is False
    c.send({"method": "initialized", "params": {}})
    assert await c.result("environment/info", {}) == res["environmentInfo"]
    assert await c.result("environment/status") == {"status": "ready"}


async def test_both_dialects_on_one_server(auto_server: ExecServer, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    old, new = await _client(auto_server), await _client(auto_server)
    native = await old.result("fs/getMetadata", {"path": str(root / "a.txt")})
    assert list(native) == META_131 and native["isFile"] is True
    uri = await new.result("fs/getMetadata", {"path": to_uri(str(root / "a.txt"))})
    assert list(uri) == META_171 and uri["size"] == 5
    # the same connection may switch: every answer follows its request
    assert list(await new.result("fs/getMetadata", {"path": str(root)})) == META_131
    assert list(await new.result("fs/getMetadata", {"path": to_uri(str(root))})) == META_171
    for c in (old, new):
        assert await c.result("fs/readFile", {"path": str(root / "a.txt")}) == {"dataBase64": "aGVsbG8="}
        assert await c.result("fs/readFile", {"path": to_uri(str(root / "a.txt"))}) == {"dataBase64": "aGVsbG8="}


async def test_result_paths_take_the_request_form(auto_server: ExecServer, tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (tmp_path / "link").symlink_to(root)
    c = await _client(auto_server)
    assert await c.result("fs/canonicalize", {"path": str(tmp_path / "link")}) == {"path": str(root)}
    assert await c.result("fs/canonicalize", {"path": to_uri(str(tmp_path / "link"))}) == {
        "path": "file://" + str(tmp_path) + "/t%20r"}
    native = await c.result("fs/walk", {"path": str(root), "options": WALK})
    assert [e["path"] for e in native["entries"]] == [str(root / "a.txt"), str(root / "sub"),
                                                       str(root / "sub" / "ü.txt")]
    uri = await c.result("fs/walk", {"path": to_uri(str(root)), "options": WALK})
    assert [e["path"] for e in uri["entries"]] == [to_uri(str(root / "a.txt")), to_uri(str(root / "sub")),
                                                    to_uri(str(root / "sub" / "ü.txt"))]
    assert "%C3%BC" in uri["entries"][2]["path"]


async def test_errors_of_each_form(auto_server: ExecServer, tmp_path: Path) -> None:
    c = await _client(auto_server)
    native_errors: list[tuple[dict[str, Any], int, str]] = [
        ({"path": "rel/x"}, -32602, NOT_ABSOLUTE),
        ({"path": ""}, -32602, NOT_ABSOLUTE),
        ({"path": str(tmp_path / "nope")}, -32004, "No such file or directory (os error 2)"),
    ]
    uri_errors: list[tuple[dict[str, Any], int, str]] = [
        ({"path": "http://x/y"}, -32602, "unsupported path URI scheme `http`"),
        ({"path": "file://host/x"}, -32600, "'file://host/x' is invalid on 'linux'"),
        ({"path": to_uri(str(tmp_path)) + "?q"}, -32602, "query parameters are not allowed in path URIs"),
        ({"path": to_uri(str(tmp_path / "nope"))}, -32004, "No such file or directory (os error 2)"),
    ]
    for params, code, message in native_errors + uri_errors:
        assert await c.error("fs/getMetadata", params) == (code, message), params
    # a directory read as a file: each dialect's own answer
    assert await c.error("fs/readFile", {"path": str(tmp_path)}) == (-32603, "Is a directory (os error 21)")
    assert await c.error("fs/readFile", {"path": to_uri(str(tmp_path))}) == (
        -32600, f"path `{tmp_path}` is not a file")


async def test_resumed_session_keeps_its_dialect(auto_server: ExecServer, tmp_path: Path) -> None:
    # a request that carries no path (here: a type error) is answered in the session's dialect
    fresh = await _client(auto_server)
    assert await fresh.error("fs/getMetadata", {"path": 5}) == (-32602, "invalid type: number, expected a string")

    old = await _client(auto_server)
    sid = old.conn.session.id  # type: ignore[union-attr]
    await old.result("fs/getMetadata", {"path": str(tmp_path)})
    old.conn.close("test")
    resumed = Client(auto_server)
    assert await resumed.handshake(resume=sid) == sid
    assert await resumed.error("fs/getMetadata", {"path": 5}) == (
        -32602, "invalid type: integer `5`, expected a string")

    new = await _client(auto_server)
    sid = new.conn.session.id  # type: ignore[union-attr]
    await new.result("fs/getMetadata", {"path": to_uri(str(tmp_path))})
    new.conn.close("test")
    resumed = Client(auto_server)
    assert await resumed.handshake(resume=sid) == sid
    assert await resumed.error("fs/getMetadata", {"path": 5}) == (-32602, "invalid type: number, expected a string")


async def test_fixed_dialects_differ_from_auto(tmp_path: Path) -> None:
    async for srv in _server("0.131"):
        c = Client(srv)
        assert list(await c.result("initialize", {"clientName": "t"})) == ["sessionId"]
        c.send({"method": "initialized", "params": {}})
        assert await c.error("environment/info") == (-32601, "exec-server stub does not implement `environment/info` yet")
        assert await c.error("fs/getMetadata", {"path": to_uri(str(tmp_path))}) == (-32602, NOT_ABSOLUTE)
    async for srv in _server("0.171"):
        c = await _client(srv)
        assert await c.error("fs/getMetadata", {"path": str(tmp_path)}) == (-32602, NOT_URI)
        assert list(await c.result("fs/getMetadata", {"path": to_uri(str(tmp_path))})) == META_171


async def test_handles_and_watch_belong_to_the_connection(auto_server: ExecServer, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("abc")
    c = await _client(auto_server)
    assert await c.result("fs/open", {"handleId": "h", "path": str(tmp_path / "a.txt")}) == {"handleId": "h"}
    assert await c.result("fs/readBlock", {"handleId": "h", "offset": 1, "len": 10}) == {"chunk": "YmM=", "eof": True}
    assert await c.result("fs/watchMissing", {"watchId": 1, "missing": [str(tmp_path / "m")]}) == {"watching": True}
    x = c.conn._x
    assert x is not None and x.handles is not None and len(x.handles) == 1 and x.watch is not None
    watch = x.watch
    c.conn.close("test")
    assert len(x.handles) == 0 and watch.active_id is None
