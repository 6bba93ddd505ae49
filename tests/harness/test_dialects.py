"""The harness session against real and our exec-servers of both dialects (``_harness_servers.py``).

Every check that a path arrived right is made on the local disk (the servers run on this
machine), so a conversion that merely round-trips inside the client cannot pass.
"""
from __future__ import annotations

import asyncio
import base64
import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import pytest

from execrelay.harness import DIALECT_171, ExecSession, HarnessClient, RpcCallError, UnsupportedMethod

from _harness_servers import DIALECT


pytestmark = [pytest.mark.interop, pytest.mark.timeout(90)]

ALL = ["real171", "real131", "ours-0.131", "ours-0.171"]
V171 = ["real171", "ours-0.171"]
V131 = ["real131", "ours-0.131"]
#: a name that needs percent-encoding in every way a URI can (space, UTF-8, ``#``, ``%``, ``?``, ``\``)
ODD = "d ü #%41?x\\y"


@asynccontextmanager
async def _session(start_server, impl: str) -> AsyncIterator[ExecSession]:
    """A session on a fresh ``impl`` server (``start_server`` is the fixture)."""
    async with HarnessClient(start_server(impl).url) as client:
        yield await client.open_session()


@pytest.mark.parametrize("impl", ALL)
async def test_dialect_detected_from_initialize(impl: str, start_server, tmp_path: Path) -> None:
    server = start_server(impl)
    async with HarnessClient(server.url) as client:
        session = await client.open_session()
        assert session.dialect == DIALECT[impl]
        info = session.environment_info
        if DIALECT[impl] != DIALECT_171:
            assert info is None
            return
        assert info is not None
        assert info["cwd"] == str(tmp_path / "server cwd ü")  # was a percent-encoded URI
        assert info["userHomeDir"] == os.path.expanduser("~")
        assert os.path.isdir(info["tempDir"])
        assert all(p.startswith("/") for p in info["prependPathDirs"] + info["temporaryDirectories"])
        assert isinstance(info["capabilities"]["fsWatchMissing"], bool)
        assert await session.refresh_environment_info() == info
        assert await session.environment_status() == "ready"


@pytest.mark.parametrize("impl", ALL)
async def test_paths_with_spaces_and_unicode(impl: str, start_server, tmp_path: Path) -> None:
    root = tmp_path / ODD
    async with _session(start_server, impl) as session:
        await session.fs_create_directory(root / "sub ç")
        assert (root / "sub ç").is_dir()
        await session.fs_write_file(root / "f ü.txt", b"payload")
        assert (root / "f ü.txt").read_bytes() == b"payload"
        assert await session.fs_read_file(str(root / "f ü.txt")) == b"payload"
        assert (await session.fs_get_metadata(root))["isDirectory"] is True
        names = sorted(e["fileName"] for e in await session.fs_read_directory(root))
        assert names == ["f ü.txt", "sub ç"]
        await session.fs_copy(root / "f ü.txt", root / "sub ç" / "copy #1.txt")
        assert (root / "sub ç" / "copy #1.txt").read_bytes() == b"payload"
        code, out, err = await session.run(["pwd"], cwd=root / "sub ç")
        assert (code, out.decode()) == (0, str(root / "sub ç") + "\n"), err
        await session.fs_remove(root / "sub ç")
        assert not (root / "sub ç").exists()


@pytest.mark.parametrize("impl", V171)
async def test_canonicalize_and_walk(impl: str, start_server, tmp_path: Path) -> None:
    root = tmp_path / ODD
    (root / "a b" / "ü").mkdir(parents=True)
    (root / "a b" / "f #1").write_text("x")
    (root / "link ü").symlink_to(root / "a b")
    async with _session(start_server, impl) as session:
        assert await session.fs_canonicalize(root / "link ü" / "ü") == str(root / "a b" / "ü")
        walk = await session.fs_walk(root, max_depth=2, max_directories=10, max_entries=10)
        assert walk["truncated"] is False and walk["errors"] == []
        assert [(e["path"], e["kind"]) for e in walk["entries"]] == [
            (str(root / "a b"), "directory"), (str(root / "a b" / "f #1"), "file"),
            (str(root / "a b" / "ü"), "directory")]
        with pytest.raises(RpcCallError):
            await session.fs_canonicalize(root / "missing")


@pytest.mark.parametrize("impl", V171)
async def test_file_handles(impl: str, start_server, tmp_path: Path) -> None:
    target = tmp_path / ODD / "blocks ü.bin"
    target.parent.mkdir()
    async with _session(start_server, impl) as session:
        hid = await session.fs_open(target, mode="replace")
        await session.fs_write_block(hid, 0, b"head")
        await session.fs_write_block(hid, 8, b"tail")
        await session.fs_close(hid)
        assert target.read_bytes() == b"head\0\0\0\0tail"
        rid = await session.fs_open(target, handle_id="reader")
        assert rid == "reader"
        assert await session.fs_read_block(rid, 0, 6) == (b"head\0\0", False)
        assert await session.fs_read_block(rid, 6, 100) == (b"\0\0tail", True)
        await session.fs_close(rid)
        with pytest.raises(RpcCallError) as ei:
            await session.fs_read_block(rid, 0, 1)
        assert ei.value.code == -32004


@pytest.mark.parametrize("impl", V171)
async def test_watch_missing(impl: str, start_server, tmp_path: Path) -> None:
    missing = tmp_path / ODD / "appears ü"
    missing.parent.mkdir()
    async with _session(start_server, impl) as session:
        assert await session.fs_watch_missing(1, [tmp_path]) is False  # exists already
        assert await session.fs_watch_missing(2, [missing]) is True
        missing.write_text("now")
        assert await session.wait_missing_changed(2, timeout=20) == 2


@pytest.mark.parametrize("impl", V171)
async def test_process_signal_and_write_ids(impl: str, start_server, tmp_path: Path) -> None:
    cwd = tmp_path / ODD
    cwd.mkdir()
    async with _session(start_server, impl) as session:
        env = {"PATH": "/usr/bin:/bin"}
        await session.process_start("cat", ["cat"], cwd, env=env, pipe_stdin=True)
        assert (await session.process_write("cat", b"one\n"))["status"] == "accepted"
        assert (await session.process_write("cat", b"two\n"))["status"] == "accepted"  # a new writeId
        await session.process_write("cat", b"three\n", write_id="w-3")
        await session.process_write("cat", b"three\n", write_id="w-3")  # idempotent: not delivered again
        out = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while out != b"one\ntwo\nthree\n" and loop.time() < deadline:
            method, params = await session.next_notification(max(0.01, deadline - loop.time()))
            if method == "process/output" and params["processId"] == "cat":
                out += base64.b64decode(params["chunk"])
        assert out == b"one\ntwo\nthree\n"
        await session.process_signal("cat")  # SIGINT
        code = None
        while code is None:
            method, params = await session.next_notification(max(0.01, deadline - loop.time()))
            if method == "process/exited" and params["processId"] == "cat":
                code = params["exitCode"]
        assert code == 130


@pytest.mark.parametrize("impl", V131)
async def test_171_calls_refused_on_131_server(impl: str, start_server, tmp_path: Path) -> None:
    server = start_server(impl)
    async with HarnessClient(server.url) as client:
        session = await client.open_session()
        next_id = session._next_id
        for call in (session.refresh_environment_info(), session.environment_status(),
                     session.process_signal("p"), session.fs_canonicalize(tmp_path),
                     session.fs_walk(tmp_path, max_depth=0, max_directories=1, max_entries=1),
                     session.fs_open(tmp_path), session.fs_read_block("h", 0, 1),
                     session.fs_write_block("h", 0, b"x"), session.fs_close("h"),
                     session.fs_watch_missing(1, [tmp_path]), session.wait_missing_changed()):
            with pytest.raises(UnsupportedMethod, match="0.131"):
                await call
        assert session._next_id == next_id  # nothing was sent
        # the server really lacks them (so the refusal spares a -32601 round trip, nothing more)
        with pytest.raises(RpcCallError) as ei:
            await session.call("fs/canonicalize", {"path": str(tmp_path)})
        assert ei.value.code == -32601
        # and the session is fine: 0.131 calls with a pathlib path still work
        assert (await session.fs_get_metadata(tmp_path))["isDirectory"] is True
        await session.process_start("cat", ["cat"], tmp_path, env={"PATH": "/usr/bin:/bin"}, pipe_stdin=True)
        assert (await session.process_write("cat", b"x"))  # no writeId: 0.131 shape
        await session.process_terminate("cat")
