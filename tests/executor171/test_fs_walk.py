"""fs_walk: fs/walk and fs/canonicalize against replies probed from the real 0.171.0 binary."""
from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from execrelay.executor import fileuri, fs_walk
from execrelay.executor.errors import RpcError, INVALID_REQUEST

from ._probe_tree import build_probe_tree

_DATA = json.loads((Path(__file__).parent / "data" / "fswalk_171.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    base = tmp_path_factory.mktemp("walk")
    build_probe_tree(base, _DATA["fixture"])
    return str(base)


def _sub(value, root: str):
    return json.loads(json.dumps(value).replace("<root>", root))


def _opts(o: dict) -> fs_walk.WalkOptions:
    return fs_walk.WalkOptions(o["maxDepth"], o["maxDirectories"], o["maxEntries"], o["followDirectorySymlinks"])


@pytest.mark.parametrize("row", _DATA["rows"], ids=[json.dumps(r["params"])[-110:] for r in _DATA["rows"]])
def test_matches_real_binary(row: dict, root: str) -> None:
    params = _sub(row["params"], root)
    path = fileuri.to_path(params["path"])

    async def call():
        if row["method"] == "fs/walk":
            return await asyncio.wait_for(fs_walk.walk(path, _opts(params["options"]), fileuri.to_uri), 10)
        return await asyncio.wait_for(fs_walk.canonicalize(path, fileuri.to_uri), 10)

    if "error" in row:
        with pytest.raises(RpcError) as ei:
            asyncio.run(call())
        assert (ei.value.code, ei.value.message) == (row["error"]["code"], row["error"]["message"])
    else:
        assert asyncio.run(call()) == _sub(row["result"], root)


def test_native_fmt_and_root_file(root: str) -> None:
    out = fs_walk.walk_sync(root, fs_walk.WalkOptions(0, 1, 10, False), lambda p: p)
    assert [e["path"] for e in out["entries"]] == [os.path.join(root, n) for n in ("a", "top", "z")]
    assert out["truncated"] is False
    assert fs_walk.walk_sync(os.path.join(root, "top"), fs_walk.WalkOptions(1, 1, 1, True), str)["entries"] == []


def test_zero_limits_checked_before_io() -> None:
    with pytest.raises(RpcError) as ei:
        asyncio.run(fs_walk.walk("/nonexistent", fs_walk.WalkOptions(1, 1, 0, False), str))
    assert (ei.value.code, ei.value.message) == (INVALID_REQUEST, fs_walk.LIMITS_ZERO)


def test_unreadable_directory_is_an_error_entry(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.scandir

    def scandir(path):
        if str(path).endswith("/z"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(fs_walk.os, "scandir", scandir)
    out = fs_walk.walk_sync(root, fs_walk.WalkOptions(1, 10, 100, False), str)
    assert out["errors"] == [{"path": os.path.join(root, "z"), "message": "Permission denied (os error 13)"}]
    assert os.path.join(root, "a", "f1") in [e["path"] for e in out["entries"]]
