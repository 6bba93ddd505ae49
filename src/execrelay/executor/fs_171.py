"""The ``fs/*`` methods 0.171 added: ``fs/canonicalize``, ``fs/walk``, the handle API and
``fs/watchMissing`` (docs/dialects.md §New methods).

Handlers only decode params (serde's order: before the gate), check the gate and hand the work
to the phase-A modules (:mod:`.fs_walk`, :mod:`.fs_handles`, :mod:`.fs_watch`).  A path param
follows the request's dialect (:func:`.pathparam.path_arg`): a URI request gets URIs back.
Per-connection state (handles, the watch) lives in the connection's rarely used part and dies
with the connection (0.171: handles are not part of the session).
"""
from __future__ import annotations

import asyncio
import errno
from typing import TYPE_CHECKING, Any

from . import fs_walk
from .errors import INVALID_REQUEST, RpcError, fs_error, os_error
from .fileuri import to_uri
from .fs_handles import HandleTable, parse_mode
from .fs_watch import MissingWatch
from .params import (I64_MAX, MISSING, b64_param, b64encode_bytes, missing, req_bool, req_str, req_uint,
                     str_list, struct)
from .pathparam import path_arg, path_value
from .results import Deferred
from .session import gate

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection

_FS = "filesystem"
WRITE_RANGE = "file write range exceeds the signed 64-bit file offset limit"


def _gate(conn: "RpcConnection") -> None:
    session = conn.session
    if session is None or session.conn is not conn or not conn.initialized:
        gate(conn, _FS)


def _fmt(uri: bool) -> Any:
    return to_uri if uri else str


# ------------------------------------------------------------- canonicalize, walk
def canonicalize(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsCanonicalizeParams")
    path, uri = path_arg(conn, p, "path")
    _gate(conn)
    return Deferred(fs_walk.canonicalize(path, _fmt(uri)))


def _walk_options(p: dict) -> fs_walk.WalkOptions:
    v = p.get("options", MISSING)
    if v is MISSING:
        raise missing("options")
    o = struct(v, "WalkOptions")
    return fs_walk.WalkOptions(req_uint(o, "maxDepth", "usize"), req_uint(o, "maxDirectories", "usize"),
                               req_uint(o, "maxEntries", "usize"), req_bool(o, "followDirectorySymlinks"))


def walk(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsWalkParams")
    path, uri = path_arg(conn, p, "path")
    opts = _walk_options(p)
    _gate(conn)
    return Deferred(fs_walk.walk(path, opts, _fmt(uri)))


# ------------------------------------------------------------------ handle API
def _table(conn: "RpcConnection", create: bool) -> HandleTable | None:
    x = conn._extra() if create else conn._x
    if x is None:
        return None
    table = x.handles
    if table is None and create:
        table = x.handles = HandleTable()
    return table


def open_(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsOpenParams")
    handle_id = req_str(p, "handleId")
    path, _ = path_arg(conn, p, "path")
    mode = parse_mode(p)
    _gate(conn)
    table = _table(conn, True)
    assert table is not None
    return Deferred(table.open(handle_id, path, mode))


#: a block read's reply is built on a worker thread from the bytes up (see fs.read_file): 1 MiB
#: of base64 must not be encoded or serialised on the event loop
_CHUNK_HEAD = b'{"chunk":"'


def _block_reply(head: bytes, data: bytes, eof: bool) -> bytes:
    return b"".join((head, _CHUNK_HEAD, b64encode_bytes(data), b'","eof":true}}' if eof else b'","eof":false}}'))


def _bad_offset() -> RpcError:
    """An offset past ``off_t`` (u64 on the wire): the EINVAL 0.171's pread/pwrite get (probed)."""
    return fs_error(os_error(errno.EINVAL))


async def _read_block(table: HandleTable, handle_id: str, offset: int, length: int, head: bytes) -> bytes:
    try:
        data, eof = await table.read_block(handle_id, offset, length)
    except OverflowError:
        raise _bad_offset() from None
    if len(data) <= 65536:
        return _block_reply(head, data, eof)
    return await asyncio.get_running_loop().run_in_executor(None, _block_reply, head, data, eof)


def read_block(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsReadBlockParams")
    handle_id = req_str(p, "handleId")
    offset = req_uint(p, "offset")
    length = req_uint(p, "len", "usize")
    _gate(conn)
    table = _table(conn, True)
    assert table is not None
    return Deferred(lambda head: _read_block(table, handle_id, offset, length, head), encoded=True)


async def _write_block(table: HandleTable, handle_id: str, offset: int, chunk: str) -> Any:
    if len(chunk) <= 65536:
        data = b64_param(chunk)
    else:  # pybase64 releases the GIL: a 1 MiB block decodes off the loop
        data = await asyncio.get_running_loop().run_in_executor(None, b64_param, chunk)
    if data and offset + len(data) > I64_MAX:
        raise RpcError(INVALID_REQUEST, WRITE_RANGE)
    try:
        return await table.write_block(handle_id, offset, data)
    except OverflowError:
        raise _bad_offset() from None


def write_block(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsWriteBlockParams")
    handle_id = req_str(p, "handleId")
    offset = req_uint(p, "offset")
    chunk = req_str(p, "chunk")
    _gate(conn)
    table = _table(conn, True)
    assert table is not None
    return Deferred(_write_block(table, handle_id, offset, chunk))


_EMPTY: dict = {}


def close(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsCloseParams")
    handle_id = req_str(p, "handleId")
    _gate(conn)
    table = _table(conn, False)
    return _EMPTY if table is None else table.close(handle_id)


# --------------------------------------------------------------- watchMissing
def watch_missing(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsWatchMissingParams")
    watch_id = req_uint(p, "watchId")
    raw: list[str] = str_list(p, "missing")  # type: ignore[assignment]
    paths: list[str] = []
    watchable = True
    for item in raw:
        try:
            paths.append(path_value(conn, item)[0])
        except RpcError as exc:
            if exc.code != INVALID_REQUEST:
                raise
            watchable = False  # a URI naming another host: 0.171 answers watching:false
    _gate(conn)
    x = conn._extra()
    watch = x.watch
    if watch is None:
        watch = x.watch = MissingWatch(conn.notify)
    return watch.watch(watch_id, paths if watchable else ())
