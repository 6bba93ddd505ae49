"""Paths between the caller and the two exec-server dialects (docs/dialects.md §Paths and URIs).

The caller always deals in native paths: request paths may be ``str`` or any ``os.PathLike``,
and every path in a result comes back as a native ``str`` (the type 0.131 results always had,
so code written for either dialect sees the same thing).  On the wire a 0.131 server gets the
native path and a 0.171 server a ``file://`` URI (``execrelay.fileuri.to_uri``); URIs in 0.171
results are read back with ``execrelay.fileuri.from_uri``.

A relative path is sent unchanged to either dialect: the server answers it with its own error
(0.131: ``AbsolutePathBuf deserialized without a base path``; 0.171: ``invalid URI: relative URL
without a base``) instead of the client guessing a base.
"""
from __future__ import annotations

import os
from typing import Any, Union

from ..fileuri import from_uri, to_uri
from .errors import HarnessError

DIALECT_131 = "0.131"
DIALECT_171 = "0.171"

#: what every typed call accepts as a path
PathArg = Union[str, "os.PathLike[str]"]

#: params members that carry one path (``execrelay call --paths auto``; the typed calls know
#: their own fields)
PATH_KEYS = frozenset({"path", "cwd", "sourcePath", "destinationPath"})
#: params members that carry a list of paths
PATH_LIST_KEYS = frozenset({"missing"})

#: ``environmentInfo`` members that 0.171 sends as URIs (``shell.path`` stays native there)
_ENV_URI_KEYS = ("cwd", "userHomeDir", "tempDir")
_ENV_URI_LIST_KEYS = ("prependPathDirs", "temporaryDirectories")


def dialect_of(initialize_result: dict) -> str:
    """0.171 answers ``initialize`` with ``environmentInfo``; 0.131 with ``sessionId`` alone."""
    return DIALECT_171 if "environmentInfo" in initialize_result else DIALECT_131


def wire_path(path: PathArg, dialect: str | None) -> str:
    """``path`` as the server of ``dialect`` takes it: a URI for 0.171 when absolute."""
    native = os.fsdecode(os.fspath(path))
    if dialect == DIALECT_171 and native.startswith("/"):
        return to_uri(native)
    return native


def native_path(value: str, dialect: str | None) -> str:
    """A path from a result, native whatever the dialect."""
    if dialect != DIALECT_171:
        return value
    try:
        return from_uri(value)
    except ValueError as exc:
        raise HarnessError(f"the 0.171 server answered a path that is not a local URI: {exc}") from None


def native_environment_info(info: dict) -> dict:
    """A copy of a 0.171 ``environmentInfo`` with its URI members as native paths (a ``null``
    member, e.g. ``cwd`` of a server whose working directory was deleted, stays ``None``)."""
    out = dict(info)
    for key in _ENV_URI_KEYS:
        if isinstance(out.get(key), str):
            out[key] = native_path(out[key], DIALECT_171)
    for key in _ENV_URI_LIST_KEYS:
        if isinstance(out.get(key), list):
            out[key] = [native_path(v, DIALECT_171) for v in out[key]]
    return out


def params_to_uris(params: Any) -> Any:
    """``params`` with every absolute native path under :data:`PATH_KEYS` / :data:`PATH_LIST_KEYS`
    (at any depth) turned into a URI; values that already are URIs, or relative, stay."""
    if isinstance(params, list):
        return [params_to_uris(v) for v in params]
    if not isinstance(params, dict):
        return params
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in PATH_KEYS and isinstance(value, str):
            out[key] = wire_path(value, DIALECT_171)
        elif key in PATH_LIST_KEYS and isinstance(value, list):
            out[key] = [wire_path(v, DIALECT_171) if isinstance(v, str) else v for v in value]
        else:
            out[key] = params_to_uris(value)
    return out
