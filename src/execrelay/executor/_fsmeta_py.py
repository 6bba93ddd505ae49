"""``fs/getMetadata`` result from one lstat (and one stat for a symlink).

Pure twin of ``ext/executor/_fsmeta_c.pyx`` (selected by :mod:`execrelay.executor.fs`).
:func:`metadata_171` is 0.171's result, with ``size``.
``isDirectory``/``isFile`` follow a symlink, ``isSymlink`` describes the link itself, and
``createdAtMs`` is 0 as in 0.131.0's musl build (docs/exec-server.md §Methods).
"""
from __future__ import annotations

import os
import stat as _stat
from typing import Any

_lstat = os.lstat
_stat_fn = os.stat
_S_ISLNK = _stat.S_ISLNK
_S_ISDIR = _stat.S_ISDIR
_S_ISREG = _stat.S_ISREG


def metadata(path: str) -> dict:
    """The 0.131.0 ``fs/getMetadata`` result for ``path``; raises OSError like os.lstat."""
    st = _lstat(path)
    mode = st.st_mode
    if _S_ISLNK(mode):
        target = _stat_fn(path)
        tmode = target.st_mode
        return {"isDirectory": _S_ISDIR(tmode), "isFile": _S_ISREG(tmode), "isSymlink": True,
                "createdAtMs": 0, "modifiedAtMs": target.st_mtime_ns // 1000000}
    return {"isDirectory": _S_ISDIR(mode), "isFile": _S_ISREG(mode), "isSymlink": False,
            "createdAtMs": 0, "modifiedAtMs": st.st_mtime_ns // 1000000}


def metadata_171(path: str) -> dict:
    """0.171.0's ``fs/getMetadata`` result: 0.131's members plus ``size`` (of the target for a
    symlink, as ``isDirectory``/``isFile``); raises OSError like os.lstat."""
    st = _lstat(path)
    link = _S_ISLNK(st.st_mode)
    if link:
        st = _stat_fn(path)
    mode = st.st_mode
    return {"isDirectory": _S_ISDIR(mode), "isFile": _S_ISREG(mode), "isSymlink": link, "size": st.st_size,
            "createdAtMs": 0, "modifiedAtMs": st.st_mtime_ns // 1000000}


def uri_fast_path(uri: str) -> str | None:
    """The native path of a plain ``file:///`` URI, or None when it needs the full parser.

    Plain: no percent-escape, backslash, query, fragment, control character the URL parser
    strips, dot segment (any "/."), trailing space or drive letter (docs/dialects.md §Paths
    and URIs)."""
    if uri[:8] != "file:///":
        return None
    path = uri[7:]
    if ("%" in path or "\\" in path or "?" in path or "#" in path or "/." in path or "\t" in path
            or "\n" in path or "\r" in path or "\0" in path or path[-1] == " "
            or path[2:3] == ":" or path[2:3] == "|"):
        return None
    return path


def get_metadata_fast(conn: Any, params: Any) -> dict | None:
    """The whole ``fs/getMetadata`` request in its common case, or None for the full handler.

    Common: params a dict with no ``sandbox``, the connection's own initialized session, and a
    native absolute path that needs no normalizing (dialect 0.131) or a plain ``file:///`` URI
    (0.171), the session already in that dialect under ``--compat auto``, and the lstat
    succeeding.  Anything else (errors included: the full handler redoes them, with its
    error order and texts) returns None.  ``executor/fs.py`` ``get_metadata`` tries this first
    (compiled, it saves the handler's and ``path_arg``'s interpreter frames)."""
    if type(params) is not dict:
        return None
    v = params.get("path")
    if type(v) is not str or params.get("sandbox") is not None:
        return None
    session = conn.session
    if session is None or not conn.initialized or session.conn is not conn:
        return None
    compat = conn.server.config.compat
    try:
        if v[:1] == "/" and compat != "0.171":
            if ((compat == "auto" and session.dialect != "0.131") or (len(v) > 1 and v[-1] == "/")
                    or "/." in v or "//" in v):
                return None
            return metadata(v)
        if compat != "0.131" and v.startswith("file:///"):
            if compat == "auto" and session.dialect != "0.171":
                return None
            path = uri_fast_path(v)
            return None if path is None else metadata_171(path)
    except (OSError, ValueError):
        return None
    return None
