"""The 0.171 file-handle API: ``fs/open``, ``fs/readBlock``, ``fs/writeBlock``, ``fs/close``.

(docs/dialects.md §File handles.)  A :class:`HandleTable` belongs to one connection: at most
:data:`MAX_HANDLES` open at once, and :meth:`HandleTable.close_all` runs when the connection
goes away (handles never outlive it, unlike sessions).  Every syscall that may block (open,
pread, pwrite, close) runs on an executor thread, so a 1 MiB block never stalls the event loop.
The error codes and texts are the real 0.171.0 binary's (probed).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import stat as _stat
from typing import Any, Callable

from .errors import RpcError, INVALID_PARAMS, INVALID_REQUEST, NOT_FOUND, fs_error
from .params import bad_type

_ABSENT = object()

MAX_HANDLES = 128
MAX_BLOCK = 1 << 20
MODES = ("read", "replace")

TOO_MANY = f"at most {MAX_HANDLES} file handles may be open per connection"
READ_LEN = f"file read block length must be between 1 and {MAX_BLOCK}"
WRITE_LEN = f"file write block length must be between 1 and {MAX_BLOCK}"

_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO must not hang open
_REPLACE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def parse_mode(p: dict) -> str:
    """``mode`` of ``fs/open``: absent means read; serde's texts otherwise (null is refused)."""
    value = p.get("mode", _ABSENT)
    if value is _ABSENT:
        return "read"
    if type(value) is not str:
        raise bad_type(value, "string or map")
    if value not in MODES:
        raise RpcError(INVALID_PARAMS, f"unknown variant `{value}`, expected `read` or `replace`")
    return value


def _open(path: str, mode: str) -> int:
    """Worker thread: open ``path``; a read handle must be a regular file (0.171's rule)."""
    try:
        if mode == "read":
            fd = os.open(path, _READ_FLAGS)
            try:
                if not _stat.S_ISREG(os.fstat(fd).st_mode):
                    raise RpcError(INVALID_REQUEST, f"path `{path}` is not a file")
                os.set_blocking(fd, True)
            except BaseException:
                os.close(fd)
                raise
            return fd
        return os.open(path, _REPLACE_FLAGS, 0o666)
    except OSError as exc:
        raise fs_error(exc) from None


def _pread(fd: int, length: int, offset: int) -> bytes:
    try:
        out = os.pread(fd, length, offset)
        if 0 < len(out) < length:  # short read before EOF (pipes, NFS): keep reading
            parts = [out]
            got = len(out)
            while got < length:
                more = os.pread(fd, length - got, offset + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            out = b"".join(parts)
        return out
    except OSError as exc:
        raise fs_error(exc) from None


def _pwrite(fd: int, data: bytes, offset: int) -> None:
    try:
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, offset)
            view = view[n:]
            offset += n
    except OSError as exc:
        raise fs_error(exc) from None


class _Handle:
    """An open fd plus the count of operations using it, so close never races a pread."""

    __slots__ = ("fd", "mode", "busy", "closed")

    def __init__(self, fd: int, mode: str) -> None:
        self.fd = fd
        self.mode = mode
        self.busy = 0
        self.closed = False


class HandleTable:
    """One connection's handles: ``handleId`` (client-chosen string, empty allowed) -> fd."""

    def __init__(self, executor: concurrent.futures.Executor | None = None) -> None:
        self._handles: dict[str, _Handle] = {}
        self._reserved: set[str] = set()  # ids whose open is in flight
        self._executor = executor
        self._dead = False

    def __len__(self) -> int:
        return len(self._handles)

    def _run(self, fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def open(self, handle_id: str, path: str, mode: str = "read") -> dict[str, str]:
        """``fs/open``: ``{"handleId"}``; the id must be free and the table below 128."""
        if handle_id in self._handles or handle_id in self._reserved:
            raise RpcError(INVALID_REQUEST, f"file handle `{handle_id}` already exists")
        if len(self._handles) + len(self._reserved) >= MAX_HANDLES:
            raise RpcError(INVALID_REQUEST, TOO_MANY)
        self._reserved.add(handle_id)
        try:
            fd = await self._run(_open, path, mode)
        finally:
            self._reserved.discard(handle_id)
        h = _Handle(fd, mode)
        if self._dead:  # the connection closed while the open ran: nobody can close it later
            h.closed = True
            self._release(h)
            raise RpcError(INVALID_REQUEST, f"file handle `{handle_id}` was closed")
        self._handles[handle_id] = h
        return {"handleId": handle_id}

    def _get(self, handle_id: str) -> _Handle:
        h = self._handles.get(handle_id)
        if h is None:
            raise RpcError(NOT_FOUND, f"unknown file handle `{handle_id}`")
        return h

    async def _use(self, h: _Handle, fn: Callable[..., Any], *args: Any) -> Any:
        h.busy += 1
        try:
            return await self._run(fn, h.fd, *args)
        finally:
            h.busy -= 1
            if h.closed and h.busy == 0:
                self._release(h)

    async def read_block(self, handle_id: str, offset: int, length: int) -> tuple[bytes, bool]:
        """``fs/readBlock``: up to ``length`` bytes at ``offset`` and whether EOF was reached.

        The caller base64-encodes ``chunk``; a write handle answers EBADF as 0.171 does."""
        if not 1 <= length <= MAX_BLOCK:
            raise RpcError(INVALID_REQUEST, READ_LEN)
        data: bytes = await self._use(self._get(handle_id), _pread, length, offset)
        return data, len(data) < length

    async def write_block(self, handle_id: str, offset: int, data: bytes) -> dict[str, Any]:
        """``fs/writeBlock``: write all of ``data`` at ``offset`` (gaps read back as zeros)."""
        if not 1 <= len(data) <= MAX_BLOCK:
            raise RpcError(INVALID_REQUEST, WRITE_LEN)
        await self._use(self._get(handle_id), _pwrite, data, offset)
        return {}

    def close(self, handle_id: str) -> dict[str, Any]:
        """``fs/close``: always ``{}``, even for an unknown id (0.171)."""
        h = self._handles.pop(handle_id, None)
        if h is not None:
            h.closed = True
            if h.busy == 0:
                self._release(h)
        return {}

    def close_all(self) -> None:
        """The connection closed: every handle goes (in-flight operations finish first)."""
        self._dead = True
        for handle_id in list(self._handles):
            self.close(handle_id)

    def _release(self, h: _Handle) -> None:
        fd, h.fd = h.fd, -1
        if fd >= 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                os.close(fd)
                return
            # close(2) of a file on a slow filesystem may block: off the loop too
            loop.run_in_executor(self._executor, os.close, fd)
