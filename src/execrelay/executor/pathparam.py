"""Path params in either dialect: the one helper every handler with a path calls.

Why a module of its own: it needs the dialect (:mod:`.dialect`), the URI parser
(:mod:`.fileuri`), serde's texts (:mod:`.params`) and the session gate (:mod:`.session`);
:mod:`.params` stays a leaf that the session itself imports.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import fileuri
from .dialect import COMPAT_131, COMPAT_171, COMPAT_AUTO, remember
from .errors import INVALID_REQUEST, RpcError
from .params import MISSING, bad_type, missing, native_path
from .session import gate
from .. import _accel

#: plain ``file:///`` URI -> native path in one pass (Cython twin in ext/executor/_fsmeta_c.pyx)
_uri_fast_path = _accel.select("fsmeta", "execrelay.executor._fsmeta_c",
                               "execrelay.executor._fsmeta_py").uri_fast_path

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection


def path_arg(conn: "RpcConnection", p: dict, name: str, family: str = "filesystem",
             invalid_code: int = INVALID_REQUEST) -> tuple[str, bool]:
    """A path param in the connection's dialect: ``(native path, was_uri)`` (docs/dialects.md §Auto mode).

    ``--compat 0.131``: a native absolute path (:func:`abs_path`).  ``0.171``: a ``file://`` URI
    (:func:`.fileuri.to_path`).  ``auto``: whichever form the value has, and the session
    remembers it (:func:`.dialect.remember`), so the reply and the requests that carry no path
    follow the same dialect.  ``was_uri`` tells the caller to format result paths as URIs.

    Why the gate is checked here: 0.171 parses the URI syntax before the initialize gate, but
    refuses a URI naming another host (``invalid_code``, -32600 in fs methods) after it; the
    caller's gate runs later, so a host error first asks the gate of ``family``.
    ``process/start`` passes ``invalid_code=INVALID_PARAMS`` for ``cwd``.
    """
    v = p.get(name, MISSING)
    if type(v) is not str:
        if v is MISSING:
            raise missing(name)
        raise bad_type(v, "a string")
    compat = conn.server.config.compat
    if v[:1] == "/" and compat != COMPAT_171:  # a native path, the 0.131 dialect
        if compat == COMPAT_AUTO:
            session = conn.session
            if session is not None and session.dialect != COMPAT_131:
                remember(conn, COMPAT_131)
        # inline: the common path is already normal (no '.', '..', '//' or trailing '/')
        if "/." in v or "//" in v or (v[-1] == "/" and len(v) > 1):
            v = native_path(v)
        return v, False
    if v[:8] == "file:///" and compat != COMPAT_131:
        if compat == COMPAT_AUTO:
            session = conn.session
            if session is not None and session.dialect != COMPAT_171:
                remember(conn, COMPAT_171)
        # fileuri.to_path's fast path as one compiled scan (docs/dialects.md §Paths and URIs);
        # "/." sends any dot to to_path, which tells a dot segment from a name like ".git".
        # test_fileuri.py checks both agree.
        path = _uri_fast_path(v)
        if path is not None:
            return path, True
    elif compat == COMPAT_131 or (compat == COMPAT_AUTO and not fileuri.is_uri(v)):
        return native_path(v), False  # relative: 0.131's error
    elif compat == COMPAT_AUTO:
        session = conn.session
        if session is not None and session.dialect != COMPAT_171:
            remember(conn, COMPAT_171)
    try:
        return fileuri.to_path(v, invalid_code), True
    except RpcError as exc:
        if exc.code == INVALID_REQUEST:
            session = conn.session
            if session is None or session.conn is not conn or not conn.initialized:
                gate(conn, family)
        raise


def path_value(conn: "RpcConnection", v: str, family: str = "filesystem",
               invalid_code: int = INVALID_REQUEST) -> tuple[str, bool]:
    """:func:`path_arg` for a string already taken out of the params (list members)."""
    return path_arg(conn, {"path": v}, "path", family, invalid_code)
