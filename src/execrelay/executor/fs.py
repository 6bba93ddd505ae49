"""``fs/*`` handlers.

Small operations (stat, small reads and writes of regular files, mkdir) run inline: they cost
a few microseconds and a thread hop would cost more than the work.  Work whose size is not
bounded (large files, directory listings, copies, recursive removal) goes to a thread, via
:class:`Deferred`, so the event loop is never blocked for long.

No syscall that can block runs on the loop for a path a client names: files are opened there
with ``O_NONBLOCK`` only to learn what they are, and anything but a regular file (a FIFO
waits for its other end, a device may wait forever) is reopened and read or written on a
worker thread -- only that request waits, as upstream's blocking pool does.
"""
from __future__ import annotations

import asyncio
import errno
import os
import shutil
import stat as _stat
from typing import TYPE_CHECKING, Any

from .errors import RpcError, INVALID_REQUEST, fs_error, os_error
from .params import b64decode, b64encode_bytes, opt_bool, req_bool, req_str, struct
from .pathparam import path_arg
from .results import Deferred, Encoded
from .session import gate as _session_gate
from . import sandbox as _sandbox
from .. import _accel

#: lstat -> result dict; Cython twin builds it from struct stat without os.stat_result
_fsmeta = _accel.select("fsmeta", "execrelay.executor._fsmeta_c", "execrelay.executor._fsmeta_py")
_metadata = _fsmeta.metadata
#: 0.171's form (with ``size``)
_metadata_171 = _fsmeta.metadata_171
#: the whole request in its common case (None: the full handler decides)
_metadata_fast = _fsmeta.get_metadata_fast
#: bytes.join copies joins of >= 1 MiB with the GIL released (CPython >= 3.9), so a worker
#: thread can assemble a large reply without stalling the event loop
_join = b"".join
_NUL = "file name contained an unexpected NUL byte"

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection

_lstat = os.lstat
_stat_fn = os.stat
_S_ISLNK = _stat.S_ISLNK
_S_ISDIR = _stat.S_ISDIR
_S_ISREG = _stat.S_ISREG
_EMPTY: dict = {}
#: the loop's opens: never wait for a FIFO's other end (reads) or fail ENXIO instead (writes)
_RD_PROBE = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
_WR_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_WR_PROBE = _WR_FLAGS | os.O_NONBLOCK


def _gate(conn: "RpcConnection") -> None:
    # the common case (initialized, session ours) without a call; gate() raises the errors
    session = conn.session
    if session is None or session.conn is not conn or not conn.initialized:
        _session_gate(conn, "filesystem")


def _fs_call(fn: Any, *args: Any) -> Any:
    """Worker thread: run ``fn``, OSError -> the fs error 0.131.0 sends."""
    try:
        return fn(*args)
    except OSError as exc:
        raise fs_error(exc) from None


def _submit(fn: Any, *args: Any) -> "asyncio.Future[Any]":
    """Start ``fn`` in the default thread pool NOW and return its future.

    Submitting at once (rather than from a coroutine the connection's task would start)
    means the work -- which owns resources such as an open fd -- always runs and cleans up,
    even when the connection closes before its task gets to run."""
    return asyncio.get_running_loop().run_in_executor(None, _fs_call, fn, *args)


def _in_thread(fn: Any, *args: Any) -> Deferred:
    return Deferred(_submit(fn, *args))


def _sb(p: dict) -> Any:
    v = p.get("sandbox")
    return None if v is None else _sandbox.parse(v)


def _enter(conn: "RpcConnection", sb: Any, path: str, write: bool) -> None:
    """After a handler decoded its params: the session gate, then the sandbox check."""
    _gate(conn)
    if sb is not None:
        sb.check(path, write)


# ------------------------------------------------------------------ getMetadata
def get_metadata(conn: "RpcConnection", params: Any) -> Any:
    result = _metadata_fast(conn, params)  # one compiled call does the common case
    if result is not None:
        return result
    return get_metadata_full(conn, params)


def get_metadata_full(conn: "RpcConnection", params: Any) -> Any:
    """``fs/getMetadata`` in every case (a dict result; errors raised in 0.131.0's order)."""
    if type(params) is not dict:
        struct(params, "FsGetMetadataParams")
    path, uri = path_arg(conn, params, "path")
    sb = params.get("sandbox")
    if sb is not None:
        sb = _sandbox.parse(sb)
    if conn.session is None or not conn.initialized or conn.session.conn is not conn:
        _gate(conn)  # raises; the common case skips the call
    if sb is not None:
        sb.check(path, False)
    try:
        return _metadata_171(path) if uri else _metadata(path)
    except OSError as exc:
        raise fs_error(exc) from None
    except ValueError:
        raise RpcError(INVALID_REQUEST, _NUL) from None


# --------------------------------------------------------------------- readFile
#: base64 is produced in pieces of this much input (a multiple of 3: the pieces concatenate
#: to the base64 of the whole): each call is short even where base64 holds the GIL
_B64_PIECE = 3 << 18  # 768 KiB in, 1 MiB out
_READ_TAIL = b'"}}'  # closes the result and the response


def _read_all(fd: int, size: int, limit: int) -> bytes:
    """Read to EOF and close ``fd``; a file that grows (or a device like /dev/zero) stops at
    the size limit.  A regular file is one read() into one buffer: no copy."""
    try:
        chunks = []
        total = 0
        while True:
            data = os.read(fd, max(size, 65536))
            if not data:
                break
            total += len(data)
            if total > limit:
                raise RpcError(INVALID_REQUEST, f"file is too large to read: limit is {limit} bytes")
            chunks.append(data)
            size = 1 << 20
        return chunks[0] if len(chunks) == 1 else _join(chunks)
    finally:
        os.close(fd)


_READ_HEAD = b'{"dataBase64":"'


def _read_fd(fd: int, size: int, limit: int) -> Encoded:
    """A small read on the loop: the result pre-encoded (see :class:`Encoded`)."""
    return Encoded((_READ_HEAD, b64encode_bytes(_read_all(fd, size, limit)), b'"}'))


def _read_reply(fd: int, size: int, limit: int, head: bytes) -> bytes:
    """Worker thread: the complete encoded response of a large read.

    ``head`` is ``{"id":<id>,"result":``.  base64 needs no JSON escaping, so the result is
    ``{"dataBase64":"<base64>"}`` by concatenation -- byte-identical to orjson's compact
    output -- and the event loop only hands the finished bytes to the transport (issue 8:
    a stream moving a big file must not add more than 1 ms to other streams' p99).
    """
    data = _read_all(fd, size, limit)
    view = memoryview(data)
    parts = [head + _READ_HEAD]
    for i in range(0, len(data), _B64_PIECE):
        parts.append(b64encode_bytes(view[i:i + _B64_PIECE]))
    view.release()
    del data
    parts.append(_READ_TAIL)
    return _join(parts)


def _read_deferred(fd: int, size: int, limit: int) -> Deferred:
    def start(head: bytes) -> "asyncio.Future[bytes]":
        return _submit(_read_reply, fd, size, limit, head)
    return Deferred(start, encoded=True)


def _read_special_reply(path: str, limit: int, head: bytes) -> bytes:
    """Worker thread: a FIFO, device or socket, opened as upstream does (blocking)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if _S_ISDIR(st.st_mode):
            raise os_error(errno.EISDIR)
    except BaseException:
        os.close(fd)
        raise
    return _read_reply(fd, st.st_size + 1, limit, head)


def _read_special(path: str, limit: int) -> Deferred:
    def start(head: bytes) -> "asyncio.Future[bytes]":
        return _submit(_read_special_reply, path, limit, head)
    return Deferred(start, encoded=True)


def read_file(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsReadFileParams")
    path, uri = path_arg(conn, p, "path")
    sb = _sb(p)
    _enter(conn, sb, path, False)
    if uri:  # 0.171 refuses anything but a regular file up front (a FIFO must not block the open)
        try:
            if not _S_ISREG(_stat_fn(path).st_mode):
                raise RpcError(INVALID_REQUEST, f"path `{path}` is not a file")
        except OSError as exc:
            raise fs_error(exc) from None
    try:
        fd = os.open(path, _RD_PROBE)
    except OSError as exc:
        raise fs_error(exc) from None
    try:
        st = os.fstat(fd)
        if _S_ISDIR(st.st_mode):
            raise os_error(errno.EISDIR)
    except OSError as exc:
        os.close(fd)
        raise fs_error(exc) from None
    limit = conn.server.config.read_file_limit
    if not _S_ISREG(st.st_mode):
        os.close(fd)
        return _read_special(path, limit)
    if st.st_size > limit:
        os.close(fd)
        raise RpcError(INVALID_REQUEST, f"file is too large to read: limit is {limit} bytes")
    if st.st_size <= conn.server.config.inline_io_bytes:
        try:
            return _read_fd(fd, st.st_size + 1, limit)
        except OSError as exc:
            raise fs_error(exc) from None
    return _read_deferred(fd, st.st_size + 1, limit)


# -------------------------------------------------------------------- writeFile
def _write_fd(fd: int, data: bytes) -> dict:
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)
    return _EMPTY


def _write_path(path: str, data: bytes) -> dict:
    """Worker thread: open (blocking, as upstream: a FIFO waits for its reader) and write."""
    return _write_fd(os.open(path, _WR_FLAGS, 0o666), data)


def _write_inline(path: str, data: bytes) -> Any:
    """On the loop: a regular file is written at once; anything else goes to a thread."""
    try:
        fd = os.open(path, _WR_PROBE, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO without a reader (or a socket): the thread waits/fails
            return _in_thread(_write_path, path, data)
        raise
    try:
        regular = _S_ISREG(os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        return _in_thread(_write_path, path, data)
    return _write_fd(fd, data)


def _decode(data64: str) -> bytes:
    try:
        return b64decode(data64)
    except ValueError as exc:
        raise RpcError(INVALID_REQUEST, f"fs/writeFile requires valid base64 dataBase64: {exc}") from None


def _decode_write(path: str, data64: str, sb: Any) -> dict:
    """Worker thread: a large write decodes its base64 off the event loop (pybase64 releases
    the GIL), then checks the sandbox and writes -- the same order of errors as inline."""
    data = _decode(data64)
    if sb is not None:
        sb.check(path, True)
    return _write_path(path, data)


def write_file(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsWriteFileParams")
    path, _ = path_arg(conn, p, "path")
    data64 = req_str(p, "dataBase64")
    sb = _sb(p)
    _gate(conn)
    inline = conn.server.config.inline_io_bytes
    if len(data64) > (inline + 2) // 3 * 4:
        return _in_thread(_decode_write, path, data64, sb)
    data = _decode(data64)
    if sb is not None:
        sb.check(path, True)
    if len(data) <= conn.server.config.inline_io_bytes:
        try:
            return _write_inline(path, data)
        except OSError as exc:
            raise fs_error(exc) from None
    return _in_thread(_write_path, path, data)


# -------------------------------------------------------------- createDirectory
def create_directory(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsCreateDirectoryParams")
    path, _ = path_arg(conn, p, "path")
    recursive = opt_bool(p, "recursive", True)
    sb = _sb(p)
    _enter(conn, sb, path, True)
    try:
        if recursive:
            os.makedirs(path, exist_ok=True)
        else:
            os.mkdir(path)
    except OSError as exc:
        raise fs_error(exc) from None
    return _EMPTY


# ---------------------------------------------------------------- readDirectory
def _list_dir(path: str) -> dict:
    """Worker thread: a listing's size is not bounded (a directory may hold millions)."""
    entries = []
    with os.scandir(path) as it:
        for entry in it:
            try:
                is_dir = entry.is_dir()
                is_file = entry.is_file()
                if entry.is_symlink():
                    st = _stat_fn(entry.path)  # dangling -> skipped
                    is_dir = _S_ISDIR(st.st_mode)
                    is_file = _S_ISREG(st.st_mode)
            except OSError:
                continue
            entries.append({"fileName": entry.name, "isDirectory": is_dir, "isFile": is_file})
    return {"entries": entries}


def read_directory(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsReadDirectoryParams")
    path, _ = path_arg(conn, p, "path")
    sb = _sb(p)
    _enter(conn, sb, path, False)
    return _in_thread(_list_dir, path)


# ----------------------------------------------------------------------- remove
def _rmtree(path: str) -> dict:
    shutil.rmtree(path)
    return _EMPTY


def remove(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsRemoveParams")
    path, _ = path_arg(conn, p, "path")
    recursive = opt_bool(p, "recursive", True)
    force = opt_bool(p, "force", True)
    sb = _sb(p)
    _gate(conn)
    if sb is not None:  # a link is removed, not followed: only its directory must be inside
        sb.check_entry(path, True)
    try:
        st = _lstat(path)
    except FileNotFoundError as exc:
        if force:
            return _EMPTY
        raise fs_error(exc) from None
    except OSError as exc:
        raise fs_error(exc) from None
    try:
        if _S_ISDIR(st.st_mode):
            if recursive:
                try:
                    os.rmdir(path)  # empty: done inline
                    return _EMPTY
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
                return _in_thread(_rmtree, path)
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError as exc:
        raise fs_error(exc) from None
    return _EMPTY


# ------------------------------------------------------------------------- copy
def _copy_link(src: str, dst: str) -> None:
    target = os.readlink(src)
    try:
        os.symlink(target, dst)
    except FileExistsError:
        if os.path.isdir(dst) and not os.path.islink(dst):
            raise
        os.unlink(dst)
        os.symlink(target, dst)


def _copy_tree(src: str, dst: str, sb: Any = None) -> dict:
    """Worker thread.  With a sandbox, every destination is checked before it is written: an
    existing symlink inside the destination tree must not carry the copy outside the roots."""
    if sb is not None:
        sb.check(dst, True)
    os.makedirs(dst, exist_ok=True)
    with os.scandir(src) as it:
        for entry in it:
            s = entry.path
            d = os.path.join(dst, entry.name)
            if entry.is_symlink():
                if sb is not None:
                    sb.check_entry(d, True)
                _copy_link(s, d)
            elif entry.is_dir(follow_symlinks=False):
                _copy_tree(s, d, sb)
            elif entry.is_file(follow_symlinks=False):
                if sb is not None:
                    sb.check(d, True)
                shutil.copyfile(s, d)
            # FIFOs, sockets, devices inside a tree are skipped (docs/exec-server.md §Methods)
    return _EMPTY


def _copy_file(src: str, dst: str) -> dict:
    """Worker thread: the opens may block (a destination FIFO waits for its reader)."""
    shutil.copyfile(src, dst)
    return _EMPTY


def copy(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "FsCopyParams")
    src, _ = path_arg(conn, p, "sourcePath")
    dst, _ = path_arg(conn, p, "destinationPath")
    recursive = req_bool(p, "recursive")
    sb = _sb(p)
    _gate(conn)
    if sb is not None:  # a link is copied as a link (upstream): neither end is followed
        check = sb.check_entry if os.path.islink(src) else sb.check
        check(src, False)
        check(dst, True)
    try:
        st = _lstat(src)
    except OSError as exc:
        raise fs_error(exc) from None
    mode = st.st_mode
    try:
        if _S_ISLNK(mode):
            _copy_link(src, dst)
            return _EMPTY
        if _S_ISDIR(mode):
            if not recursive:
                raise RpcError(INVALID_REQUEST, "fs/copy requires recursive: true when sourcePath is a directory")
            rs, rd = os.path.realpath(src), os.path.realpath(dst)
            if rd == rs or rd.startswith(rs.rstrip("/") + "/"):
                raise RpcError(INVALID_REQUEST, "fs/copy cannot copy a directory to itself or one of its descendants")
            return _in_thread(_copy_tree, src, dst, sb)
        if not _S_ISREG(mode):
            raise RpcError(INVALID_REQUEST, "fs/copy only supports regular files, directories, and symlinks")
        return _in_thread(_copy_file, src, dst)
    except OSError as exc:
        raise fs_error(exc) from None
