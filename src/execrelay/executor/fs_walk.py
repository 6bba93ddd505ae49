"""``fs/walk`` and ``fs/canonicalize`` of the 0.171 dialect (docs/dialects.md §fs/walk).

Both take native paths (the caller decoded the URI) and a ``fmt`` callable that renders a
native path for the reply (:func:`execrelay.executor.fileuri.to_uri` in the 0.171 dialect, the
identity for a request that used a native path in auto mode).  The walk is unbounded work, so
it runs whole on an executor thread; the rules below were probed from the real 0.171.0 binary:

* breadth-first; each directory's entries in byte order of their names;
* an entry is emitted as ``file`` or ``directory``; symlinks, FIFOs, sockets and devices are
  not emitted, except that with ``followDirectorySymlinks`` a symlink to a directory is
  emitted (as ``directory``) and descended through under its own (link) path;
* ``maxEntries`` counts files, directories and symlinks (not FIFOs etc.), emitted or not; the
  entry that would exceed it stops the walk with ``truncated: true``;
* ``maxDirectories`` counts directories read, the root included; the next directory beyond it
  stops the walk with ``truncated: true``;
* ``maxDepth`` stops descending without truncating: the root is depth 0 and a directory at
  depth ``d`` is read only if ``d <= maxDepth``;
* a directory whose (device, inode) was already read is listed but not read again (cycles);
* the root: missing -> the fs error; not a directory, or a symlink while not following ->
  no entries.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import stat as _stat
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from .errors import RpcError, INVALID_REQUEST, fs_error, io_message

LIMITS_ZERO = "filesystem walk limits must be greater than zero"

Fmt = Callable[[str], str]


@dataclass(frozen=True)
class WalkOptions:
    """``options`` of ``fs/walk`` (all four members are required by 0.171)."""

    max_depth: int
    max_directories: int
    max_entries: int
    follow_directory_symlinks: bool

    def check(self) -> None:
        if self.max_directories <= 0 or self.max_entries <= 0:
            raise RpcError(INVALID_REQUEST, LIMITS_ZERO)


def _name_key(entry: os.DirEntry) -> bytes:
    return os.fsencode(entry.name)


def walk_sync(root: str, opts: WalkOptions, fmt: Fmt) -> dict[str, Any]:
    """The whole walk, blocking: call it on a worker thread (see :func:`walk`)."""
    opts.check()
    try:
        st = os.stat(root)
        lst = os.lstat(root)
    except OSError as exc:
        raise fs_error(exc) from None
    entries: list[dict[str, str]] = []
    errors: list[dict[str, str]] = []
    result = {"entries": entries, "errors": errors, "truncated": False}
    if not _stat.S_ISDIR(st.st_mode) or (_stat.S_ISLNK(lst.st_mode) and not opts.follow_directory_symlinks):
        return result
    follow = opts.follow_directory_symlinks
    seen = {(st.st_dev, st.st_ino)}
    queue: deque[tuple[str, int]] = deque([(root, 0)])
    counted = 0
    dirs_read = 0
    while queue:
        path, depth = queue.popleft()
        if dirs_read >= opts.max_directories:
            result["truncated"] = True
            break
        dirs_read += 1
        try:
            with os.scandir(path) as it:
                listing = sorted(it, key=_name_key)
        except OSError as exc:
            errors.append({"path": fmt(path), "message": io_message(exc)})
            continue
        for entry in listing:
            try:
                if entry.is_symlink():
                    kind = "symlink"
                elif entry.is_dir(follow_symlinks=False):
                    kind = "directory"
                elif entry.is_file(follow_symlinks=False):
                    kind = "file"
                else:
                    continue  # FIFO, socket, device: neither emitted nor counted
            except OSError:
                continue  # vanished meanwhile
            counted += 1
            if counted > opts.max_entries:
                result["truncated"] = True
                return result
            child = os.path.join(path, entry.name)
            if kind == "symlink":
                if not follow:
                    continue
                try:
                    target = os.stat(child)
                except OSError:
                    continue  # dangling
                if not _stat.S_ISDIR(target.st_mode):
                    continue
                key = (target.st_dev, target.st_ino)
                kind = "directory"
            elif kind == "directory":
                try:
                    dst = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                key = (dst.st_dev, dst.st_ino)
            entries.append({"path": fmt(child), "kind": kind})
            if kind == "directory" and depth + 1 <= opts.max_depth and key not in seen:
                seen.add(key)
                queue.append((child, depth + 1))
    return result


async def walk(root: str, opts: WalkOptions, fmt: Fmt,
               executor: concurrent.futures.Executor | None = None) -> dict[str, Any]:
    """``fs/walk`` off the event loop (limits are checked before the thread hop)."""
    opts.check()
    return await asyncio.get_running_loop().run_in_executor(executor, walk_sync, root, opts, fmt)


def canonicalize_sync(path: str, fmt: Fmt) -> dict[str, str]:
    """``fs/canonicalize``: the real path (every component must exist), rendered by ``fmt``."""
    try:
        return {"path": fmt(os.path.realpath(path, strict=True))}
    except OSError as exc:
        raise fs_error(exc) from None


async def canonicalize(path: str, fmt: Fmt,
                       executor: concurrent.futures.Executor | None = None) -> dict[str, str]:
    """``fs/canonicalize`` off the loop: ``realpath`` may touch many inodes on a slow mount."""
    return await asyncio.get_running_loop().run_in_executor(executor, canonicalize_sync, path, fmt)
