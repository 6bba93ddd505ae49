"""fs_handles: the 0.171.0 handle API semantics and error texts (probed from the real binary)."""
from __future__ import annotations

import asyncio
import os
from typing import Awaitable, Callable

import pytest

from execrelay.executor import fs_handles
from execrelay.executor.errors import RpcError, INVALID_PARAMS, INVALID_REQUEST, INTERNAL_ERROR, NOT_FOUND


def run(coro, timeout: float = 10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def with_table(body: Callable[[fs_handles.HandleTable], Awaitable[None]]) -> None:
    """Run ``body`` on a fresh handle table (bounded in time)."""
    run(body(fs_handles.HandleTable()))


def _err(exc: pytest.ExceptionInfo) -> tuple[int, str]:
    return exc.value.code, exc.value.message


async def _rpc_error(call: Awaitable[object]) -> tuple[int, str]:
    """The (code, message) of the RpcError that awaiting ``call`` raises."""
    with pytest.raises(RpcError) as ei:
        await call
    return _err(ei)


def test_read_blocks_and_eof(tmp_path) -> None:
    f = tmp_path / "a.txt"
    f.write_bytes(b"hello\n")

    async def body(t: fs_handles.HandleTable) -> None:
        assert await t.open("h", str(f)) == {"handleId": "h"}
        assert await t.read_block("h", 0, 3) == (b"hel", False)
        assert await t.read_block("h", 3, 100) == (b"lo\n", True)
        assert await t.read_block("h", 100, 10) == (b"", True)
        assert await t.read_block("h", 0, 6) == (b"hello\n", False)  # exactly len: not eof yet
        for bad in (0, fs_handles.MAX_BLOCK + 1):
            assert await _rpc_error(t.read_block("h", 0, bad)) == (
                INVALID_REQUEST, "file read block length must be between 1 and 1048576")
        assert await _rpc_error(t.open("h", str(f))) == (
            INVALID_REQUEST, "file handle `h` already exists")
        assert await _rpc_error(t.write_block("h", 0, b"xx")) == (
            INTERNAL_ERROR, "Bad file descriptor (os error 9)")
        assert t.close("h") == {} and t.close("h") == {}
        assert await _rpc_error(t.read_block("h", 0, 1)) == (NOT_FOUND, "unknown file handle `h`")
        assert await t.open("", str(f)) == {"handleId": ""}
    with_table(body)


def test_open_errors(tmp_path) -> None:
    os.mkfifo(tmp_path / "fifo")

    async def body(t: fs_handles.HandleTable) -> None:
        assert await _rpc_error(t.open("d", str(tmp_path))) == (
            INVALID_REQUEST, f"path `{tmp_path}` is not a file")
        code, _ = await _rpc_error(t.open("p", str(tmp_path / "fifo")))  # must not hang on a FIFO
        assert code == INVALID_REQUEST
        assert await _rpc_error(t.open("m", str(tmp_path / "missing"))) == (
            NOT_FOUND, "No such file or directory (os error 2)")
        code, _ = await _rpc_error(t.open("r", str(tmp_path / "no" / "x"), "replace"))
        assert code == NOT_FOUND
        assert await _rpc_error(t.open("r", str(tmp_path), "replace")) == (
            INTERNAL_ERROR, "Is a directory (os error 21)")
        assert len(t) == 0
    with_table(body)


def test_replace_mode(tmp_path) -> None:
    f = tmp_path / "rep.txt"
    f.write_bytes(b"original")

    async def body(t: fs_handles.HandleTable) -> None:
        await t.open("w", str(f), "replace")
        assert f.read_bytes() == b""  # truncated at open, written in place
        await t.write_block("w", 0, b"xx")
        await t.write_block("w", 5, b"yy")
        await t.write_block("w", 2, b"yy")
        assert f.read_bytes() == b"xxyy\0yy"
        for bad in (b"", b"x" * (fs_handles.MAX_BLOCK + 1)):
            assert await _rpc_error(t.write_block("w", 0, bad)) == (
                INVALID_REQUEST, "file write block length must be between 1 and 1048576")
        assert await _rpc_error(t.read_block("w", 0, 5)) == (
            INTERNAL_ERROR, "Bad file descriptor (os error 9)")
        t.close("w")
        await t.open("n", str(tmp_path / "new.txt"), "replace")
        assert (tmp_path / "new.txt").exists()
    with_table(body)


def test_limit_128_and_close_all(tmp_path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"x")

    async def body(t: fs_handles.HandleTable) -> None:
        for i in range(fs_handles.MAX_HANDLES):
            await t.open(f"n{i}", str(f))
        assert await _rpc_error(t.open("one-more", str(f))) == (
            INVALID_REQUEST, "at most 128 file handles may be open per connection")
        t.close("n0")
        await t.open("one-more", str(f))
        fds = [h.fd for h in t._handles.values()]
        t.close_all()
        assert len(t) == 0
        await asyncio.sleep(0.05)
        await asyncio.get_running_loop().run_in_executor(None, lambda: None)
        closed = 0
        for fd in fds:
            try:
                os.fstat(fd)
            except OSError:
                closed += 1
        assert closed == len(fds)
    with_table(body)


def test_close_during_read_waits_for_it(tmp_path) -> None:
    f = tmp_path / "big"
    f.write_bytes(os.urandom(fs_handles.MAX_BLOCK))

    async def body(t: fs_handles.HandleTable) -> None:
        await t.open("h", str(f))
        read = asyncio.ensure_future(t.read_block("h", 0, fs_handles.MAX_BLOCK))
        await asyncio.sleep(0)
        t.close("h")
        data, eof = await read
        assert data == f.read_bytes() and eof is False
    with_table(body)


@pytest.mark.parametrize("p,expected", [({}, "read"), ({"mode": "read"}, "read"), ({"mode": "replace"}, "replace")])
def test_parse_mode(p, expected) -> None:
    assert fs_handles.parse_mode(p) == expected


@pytest.mark.parametrize("value,message", [
    ("write", "unknown variant `write`, expected `read` or `replace`"),
    (None, "invalid type: null, expected string or map"),
    (1, "invalid type: integer `1`, expected string or map"),
])
def test_parse_mode_errors(value, message) -> None:
    with pytest.raises(RpcError) as ei:
        fs_handles.parse_mode({"mode": value})
    assert _err(ei) == (INVALID_PARAMS, message)
