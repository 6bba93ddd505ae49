"""The ``sandbox`` member of ``fs/*``, emulated in-process (docs/exec-server.md §Methods).

``null``, ``disabled``, ``external`` and managed ``unrestricted`` profiles mean direct access.
A restricted profile is a list of roots with read or write access: reads are allowed under
any root, writes only under write roots (otherwise EROFS); a path outside every root, or one
whose real path (after following symlinks) leaves the roots, is answered NotFound (-32004).
An operation on a symlink itself (``fs/remove`` of a link, ``fs/copy`` of a link) resolves
only the link's directory, as upstream does: the link may point anywhere.
"""
from __future__ import annotations

import errno
import os.path
from typing import Any

from .errors import RpcError, INVALID_PARAMS, fs_error, os_error
from .params import bad_type, missing

_UNTAGGED = "data did not match any variant of untagged enum PermissionProfileDe"
_LEVELS = ("disabled", "restricted-token", "elevated")


class Roots:
    """A restricted profile: ``[(root, writable)]``."""

    __slots__ = ("roots",)

    def __init__(self, roots: list[tuple[str, bool]]) -> None:
        self.roots = roots

    def _access(self, path: str) -> bool | None:
        """None: outside every root; False: read-only; True: writable."""
        best: bool | None = None
        for root, writable in self.roots:
            if path == root or path.startswith(root if root.endswith("/") else root + "/"):
                best = True if writable else (best or False)
        return best

    def _require(self, candidates: tuple[str, str], write: bool) -> None:
        for candidate in candidates:
            access = self._access(candidate)
            if access is None:
                raise fs_error(os_error(errno.ENOENT))
            if write and not access:
                raise fs_error(os_error(errno.EROFS))

    def check(self, path: str, write: bool) -> None:
        """``path`` and its real path (every symlink followed) must be inside the roots."""
        self._require((path, os.path.realpath(path)), write)

    def check_entry(self, path: str, write: bool) -> None:
        """Like :meth:`check`, without following the final component (for the link itself)."""
        head, tail = os.path.split(path)
        self._require((path, os.path.join(os.path.realpath(head), tail) if tail else os.path.realpath(path)), write)


def parse(value: Any) -> Roots | None:
    """Return None for direct access, or the restricted roots; -32602 on a malformed value."""
    if value is None:
        return None
    if type(value) is not dict:
        raise bad_type(value, "struct FileSystemSandboxContext")
    if "permissions" not in value:
        raise missing("permissions")
    perms = value["permissions"]
    level = value.get("windowsSandboxLevel", "disabled")
    if level not in _LEVELS:
        raise RpcError(INVALID_PARAMS, "unknown variant, expected one of `disabled`, `restricted-token`, `elevated`")
    if type(perms) is not dict:
        raise RpcError(INVALID_PARAMS, _UNTAGGED)
    kind = perms.get("type")
    if kind is None:
        if not perms:  # legacy untagged {} = restricted with no entries
            return Roots([])
        raise RpcError(INVALID_PARAMS, _UNTAGGED)
    if kind in ("disabled", "external"):
        return None
    if kind != "managed":
        raise RpcError(INVALID_PARAMS, _UNTAGGED)
    fsp = perms.get("file_system")
    if type(fsp) is not dict:
        raise RpcError(INVALID_PARAMS, _UNTAGGED)
    fs_kind = fsp.get("type")
    if fs_kind == "unrestricted":
        return None
    if fs_kind != "restricted":
        raise RpcError(INVALID_PARAMS, _UNTAGGED)
    entries = fsp.get("entries", [])
    if type(entries) is not list:
        raise RpcError(INVALID_PARAMS, _UNTAGGED)
    roots: list[tuple[str, bool]] = []
    for entry in entries:
        if type(entry) is not dict:
            raise RpcError(INVALID_PARAMS, _UNTAGGED)
        path = entry.get("path")
        access = entry.get("access")
        if access not in ("read", "write", "none"):
            raise RpcError(INVALID_PARAMS, _UNTAGGED)
        if type(path) is dict and path.get("type") == "path" and type(path.get("path")) is str:
            root = os.path.normpath(path["path"])
            if access != "none":
                roots.append((root, access == "write"))
    return Roots(roots)
