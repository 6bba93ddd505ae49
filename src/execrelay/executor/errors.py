"""JSON-RPC error codes and the exact error texts of codex exec-server 0.131.0.

Kept in one place because clients match on code and message prefix; the strings here are copied
from observations of the real binary (spec exec-server-rpc.md sections 1.2 and 5).
"""
from __future__ import annotations

import errno as _errno
import os

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32004


class RpcError(Exception):
    """Raised by a handler to answer its request with a JSON-RPC error object."""

    __slots__ = ("code", "message")

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"RpcError({self.code}, {self.message!r})"


def io_message(exc: OSError) -> str:
    """Rust's io::Error display: ``"<strerror> (os error N)"``."""
    code = exc.errno
    if code is None:
        return str(exc)
    return f"{os.strerror(code)} (os error {code})"


def spawn_error(exc: OSError) -> RpcError:
    """Every spawn failure is -32603 with the OS text (bad program and bad cwd alike)."""
    return RpcError(INTERNAL_ERROR, io_message(exc))


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
