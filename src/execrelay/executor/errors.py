"""JSON-RPC error codes and the exact error texts of codex exec-server 0.131.0.

Kept in one place because clients match on code and message prefix; the strings here are copied
from observations of the real binary (docs/exec-server.md §Errors, docs/dialects.md).
"""
from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING, Any

from .dialect import is_171

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32004
#: 0.171.0: ``initialize`` resuming a session another connection holds (0.131.0: -32600)
SESSION_ATTACHED = -32010


class RpcError(Exception):
    """Raised by a handler to answer its request with a JSON-RPC error object.

    ``data`` (0.171: ``{"kind": ...}`` on spawn errors) is sent between code and message, the
    member order 0.171.0 uses; without it the object is 0.131.0's ``{code, message}``.
    ``message171``, when set, is the text 0.171.0 uses for the same error (its params decoder
    describes every number as ``number``): :meth:`wire` picks it for a 0.171 request.
    """

    __slots__ = ("code", "message", "data", "message171")

    def __init__(self, code: int, message: str, data: Any = None, message171: str | None = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        self.message171 = message171

    def wire(self, conn: "RpcConnection") -> dict[str, Any]:
        """The JSON-RPC error object for ``conn``'s current request (error path only)."""
        message = self.message
        if self.message171 is not None and is_171(conn):
            message = self.message171
        if self.data is None:
            return {"code": self.code, "message": message}
        return {"code": self.code, "data": self.data, "message": message}

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"RpcError({self.code}, {self.message!r})"


def io_message(exc: OSError) -> str:
    """Rust's io::Error display: ``"<strerror> (os error N)"``."""
    code = exc.errno
    if code is None:
        return str(exc)
    return f"{os.strerror(code)} (os error {code})"


def spawn_error(exc: OSError, v171: bool = False) -> RpcError:
    """Every spawn failure is -32603 with the OS text (bad program and bad cwd alike); 0.171
    adds ``data.kind`` (docs/dialects.md §New methods): ``spawnNotFound`` for ENOENT (program
    or cwd), ``spawnPermissionDenied`` for EACCES, else ``spawnFailed``."""
    if not v171:
        return RpcError(INTERNAL_ERROR, io_message(exc))
    code = exc.errno
    kind = ("spawnNotFound" if code == _errno.ENOENT
            else "spawnPermissionDenied" if code == _errno.EACCES else "spawnFailed")
    return RpcError(INTERNAL_ERROR, io_message(exc), {"kind": kind})


_INVALID_REQUEST_ERRNOS = frozenset({_errno.EPERM, _errno.EACCES, _errno.EINVAL})


def fs_error(exc: OSError) -> RpcError:
    """Map an I/O error the way ``file_system_handler.rs`` ``map_fs_error`` does.

    NotFound -> -32004; PermissionDenied / InvalidInput -> -32600; anything else -> -32603.
    """
    code = exc.errno
    if code == _errno.ENOENT:
        return RpcError(NOT_FOUND, io_message(exc))
    if code in _INVALID_REQUEST_ERRNOS:
        return RpcError(INVALID_REQUEST, io_message(exc))
    return RpcError(INTERNAL_ERROR, io_message(exc))


def os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))
