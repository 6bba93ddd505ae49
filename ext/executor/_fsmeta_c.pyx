# cython: language_level=3, boundscheck=False, wraparound=False
"""``fs/getMetadata`` result from one lstat (and one stat for a symlink), without os.stat_result.

Twin: ``src/execrelay/executor/_fsmeta_py.py`` (same function, same results and errors).
os.lstat builds a 20-field stat_result with float times (~1.5 µs); this builds the five-key
result dict straight from ``struct stat`` (~0.5 µs).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.errno cimport errno
from libc.string cimport strlen
from posix.stat cimport struct_stat, lstat as c_lstat, stat as c_stat, S_ISDIR, S_ISREG, S_ISLNK

import os


cdef extern from "Python.h":
    # os.fsencode(str) in C: the filesystem encoding with its error handler (surrogateescape),
    # the very codec os.fsencode looks up, without the Python-level call (~150 ns per request)
    bytes PyUnicode_EncodeFSDefault(object unicode)


cdef inline long long _mtime_ms(struct_stat* st) noexcept:
    return <long long>st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec // 1000000


cdef bytes _encode(str path):
    """The path as the kernel takes it; ValueError on a NUL, as os.lstat."""
    cdef bytes raw = PyUnicode_EncodeFSDefault(path)
    if <Py_ssize_t>strlen(PyBytes_AS_STRING(raw)) != PyBytes_GET_SIZE(raw):
        raise ValueError("embedded null byte")
    return raw


cdef int _raise_os(str path) except -1:
    code = errno
    raise OSError(code, os.strerror(code), path)


cdef bint _lstat_follow(str path, struct_stat* st) except -1:
    """lstat ``path`` into ``st``, then, for a symlink, stat its target into ``st`` instead;
    True for a symlink.  OSError (naming ``path``) as os.lstat / os.stat raise it."""
    cdef bytes raw = _encode(path)
    cdef const char* p = raw
    if c_lstat(p, st) != 0:
        _raise_os(path)
    if not S_ISLNK(st.st_mode):
        return False
    if c_stat(p, st) != 0:
        _raise_os(path)
    return True


def metadata(str path):
    """The 0.131.0 ``fs/getMetadata`` result for ``path``; raises OSError like os.lstat.
    A symlink reports its target's kind and mtime."""
    cdef struct_stat st
    cdef bint link = _lstat_follow(path, &st)
    return {"isDirectory": S_ISDIR(st.st_mode) != 0, "isFile": S_ISREG(st.st_mode) != 0,
            "isSymlink": link, "createdAtMs": 0, "modifiedAtMs": _mtime_ms(&st)}


def metadata_171(str path):
    """0.171.0's ``fs/getMetadata`` result: 0.131's members plus ``size`` (of the target for a
    symlink, as ``isDirectory``/``isFile``); raises OSError like os.lstat."""
    cdef struct_stat st
    cdef bint link = _lstat_follow(path, &st)
    return {"isDirectory": S_ISDIR(st.st_mode) != 0, "isFile": S_ISREG(st.st_mode) != 0,
            "isSymlink": link, "size": <long long>st.st_size, "createdAtMs": 0,
            "modifiedAtMs": _mtime_ms(&st)}


def uri_fast_path(str uri):
    """The native path of a plain ``file:///`` URI, or None when it needs the full parser.

    Plain: no percent-escape, backslash, query, fragment, control character the URL parser
    strips, dot segment (any "/."), trailing space or drive letter.  One pass over the
    characters instead of a dozen substring scans (docs/dialects.md §Paths and URIs)."""
    cdef Py_ssize_t n = len(uri)
    cdef Py_ssize_t i
    cdef Py_UCS4 ch, prev = 0
    if n < 8 or not uri.startswith("file:///"):
        return None
    for i in range(7, n):
        ch = uri[i]
        if (ch == u'%' or ch == u'\\' or ch == u'?' or ch == u'#' or ch == u'\t' or ch == u'\n'
                or ch == u'\r' or ch == 0 or (ch == u'.' and prev == u'/')):
            return None
        prev = ch
    if prev == u' ':
        return None
    if n > 9 and (uri[9] == u':' or uri[9] == u'|'):
        return None
    return uri[7:]


def get_metadata_fast(conn, params):
    """The whole ``fs/getMetadata`` request in its common case, or None for the full handler.

    Common: params a dict with no ``sandbox``, the connection's own initialized session, and a
    native absolute path that needs no normalizing (dialect 0.131) or a plain ``file:///`` URI
    (0.171), the session already in that dialect under ``--compat auto``, and the lstat
    succeeding.  Anything else (errors included: the full handler redoes them, with its
    error order and texts) returns None.  ``executor/fs.py`` ``get_metadata`` tries this first:
    the Python handler and ``path_arg`` cost two interpreter frames and a dozen attribute loads
    per request."""
    if type(params) is not dict:
        return None
    cdef dict p = <dict>params
    v = p.get("path")
    if type(v) is not str or p.get("sandbox") is not None:
        return None
    session = conn.session
    if session is None or not conn.initialized or session.conn is not conn:
        return None
    compat = conn.server.config.compat
    cdef str s = <str>v
    cdef Py_ssize_t n = len(s)
    try:
        if n and s[0] == u'/' and compat != "0.171":
            if (compat == "auto" and session.dialect != "0.131") or (n > 1 and s[n - 1] == u'/') \
                    or "/." in s or "//" in s:
                return None
            return metadata(s)
        if compat != "0.131" and s.startswith("file:///"):
            if compat == "auto" and session.dialect != "0.171":
                return None
            path = uri_fast_path(s)
            return None if path is None else metadata_171(path)
    except (OSError, ValueError):
        return None
    return None
