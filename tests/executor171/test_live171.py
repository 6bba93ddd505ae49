"""Replay the committed 0.171 tables against the real codex 0.171.0 binary, when installed.

The tables in ``data/`` were probed from the binary; this keeps them honest: every row is
asked again, live, and both the binary's answer and ours must equal the table.  Skipped when
the binary is absent (``EXECRELAY_CODEX171_BIN`` or the npm cache
``~/.cache/execrelay/codex-0.171.0``); nothing is installed from here.
"""
from __future__ import annotations

import asyncio
import glob
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from execrelay.executor import fileuri, fs_walk
from execrelay.executor.errors import RpcError

from .test_fileuri import _DATA as URI_DATA, root as uri_root  # noqa: F401  (fixture)
from .test_fs_walk import _DATA as WALK_DATA, root as walk_root, _opts  # noqa: F401  (fixture)

websockets = pytest.importorskip("websockets")


def _binary() -> str | None:
    env = os.environ.get("EXECRELAY_CODEX171_BIN")
    if env:
        return env
    found = glob.glob(os.path.expanduser(
        "~/.cache/execrelay/codex-0.171.0/node_modules/@openai/codex-linux-*/vendor/*/bin/codex"))
    return found[0] if found else None


BIN = _binary()
pytestmark = pytest.mark.skipif(BIN is None, reason="codex 0.171.0 binary not installed")


async def _session(tmp_home: Path, calls: list[tuple[str, dict]]) -> list[dict]:
    proc = subprocess.Popen([BIN, "exec-server", "--listen", "ws://127.0.0.1:0"],
                            env=dict(os.environ, HOME=str(tmp_home), CODEX_HOME=str(tmp_home)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        loop = asyncio.get_running_loop()
        url = None
        while url is None:
            line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), 20)
            if not line:
                raise RuntimeError("codex exec-server exited before listening")
            m = re.search(rb"ws://127\.0\.0\.1:\d+", line)
            url = m.group(0).decode() if m else None
        out = []
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"id": 0, "method": "initialize", "params": {"clientName": "t"}}))
            await asyncio.wait_for(ws.recv(), 10)
            await ws.send(json.dumps({"method": "initialized", "params": {}}))
            for i, (method, params) in enumerate(calls, 1):
                await ws.send(json.dumps({"id": i, "method": method, "params": params}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if msg.get("id") == i:
                        out.append(msg)
                        break
        return out
    finally:
        proc.kill()
        proc.wait(10)


def _sub(value, root: str):
    return json.loads(json.dumps(value).replace("<root>", root))


def test_fileuri_table_live(uri_root: str, tmp_path: Path) -> None:  # noqa: F811
    rows = _sub(URI_DATA["rows"], uri_root)
    answers = asyncio.run(asyncio.wait_for(
        _session(tmp_path, [(r["method"], {"path": r["input"]}) for r in rows]), 120))
    for row, ans in zip(rows, answers):
        if "error" in row:
            assert ans.get("error") == row["error"], row
            if row["error"]["code"] != -32004:
                with pytest.raises(RpcError):
                    fileuri.to_path(row["input"])
        elif row["method"] == "fs/canonicalize":
            assert ans["result"]["path"] == row["canonical"], row
            assert fileuri.to_uri(os.path.realpath(fileuri.to_path(row["input"]))) == row["canonical"]
        else:
            assert ans["result"]["isDirectory"] == row["isDirectory"], row


def test_walk_table_live(walk_root: str, tmp_path: Path) -> None:  # noqa: F811
    rows = _sub(WALK_DATA["rows"], walk_root)
    answers = asyncio.run(asyncio.wait_for(_session(tmp_path, [(r["method"], r["params"]) for r in rows]), 120))
    for row, ans in zip(rows, answers):
        expected = row.get("result", row.get("error"))
        assert ans.get("result", ans.get("error")) == expected, row
        path = fileuri.to_path(row["params"]["path"])
        try:
            if row["method"] == "fs/walk":
                ours = fs_walk.walk_sync(path, _opts(row["params"]["options"]), fileuri.to_uri)
            else:
                ours = fs_walk.canonicalize_sync(path, fileuri.to_uri)
        except RpcError as exc:
            ours = {"code": exc.code, "message": exc.message}
        assert ours == expected, row
