"""``file://`` URIs as codex exec-server 0.171.0 accepts and emits them (docs/dialects.md §Paths and URIs).

0.171 carries every path on the wire as a URI (upstream PR #27653): params are parsed with the
Rust ``url`` crate (WHATWG rules) and turned into a native path with ``to_file_path``; results
are formatted with ``from_file_path``.  This module reproduces both directions and the exact
error codes and texts the real binary answers (probed; the table is in
``tests/executor171/data/fileuri_171.json``).

The common request (``file:///`` then a path with no ``%``, no dot segment) takes a fast path
of a few substring scans and a slice, because it runs for every fs call of the 0.171 dialect.
"""
from __future__ import annotations

import os
import re

from ..fileuri import PATH_SET, encode_table, to_uri
from .errors import RpcError, INVALID_PARAMS, INVALID_REQUEST

__all__ = ["is_uri", "to_path", "to_uri", "path_param"]

RELATIVE = "invalid URI: relative URL without a base"
QUERY = "query parameters are not allowed in path URIs"
FRAGMENT = "fragments are not allowed in path URIs"
PLATFORM = "linux"

#: what ``url`` strips from both ends of its input (C0 controls and space)
_STRIP = "".join(chr(c) for c in range(0x21))
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_TAB_NL = re.compile(r"[\t\n\r]")
_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")
_DOTS = frozenset({".", "%2e", "%2E"})
_DOTDOTS = frozenset({"..", ".%2e", ".%2E", "%2e.", "%2E.", "%2e%2e", "%2E%2E", "%2e%2E", "%2E%2e"})
_DRIVE = re.compile(r"[A-Za-z][:|]$")

# WHATWG "path percent-encode set", applied by the parser to raw characters; the output side
# (``to_uri``, ``Url::from_file_path``) lives in the neutral leaf ``execrelay.fileuri``
_PATH_ENC = encode_table(PATH_SET)


#: URI -> native path for URIs that needed the slow parser (dot segments, ``%XX``,
#: ``localhost``): the mapping is a pure function of the string and a harness repeats its
#: paths.  The common shape never gets here (see :func:`to_path`).  Cleared when full.
MEMO_MAX = 4096
_memo: dict[str, str] = {}
_memo_get = _memo.get


def is_uri(value: str) -> bool:
    """The auto dialect's detector: does this path param carry a URI rather than a native path?

    Anything the URL parser would read as having a scheme counts as a URI (so an unsupported
    scheme gets 0.171's error); a native absolute path starts with ``/`` and never does.
    """
    if value.startswith("file:"):
        return True
    return _SCHEME.match(value.lstrip(_STRIP)) is not None


def to_path(uri: str, invalid_code: int = INVALID_REQUEST) -> str:
    """Parse a 0.171 path URI into a native path, or raise the 0.171 error.

    ``invalid_code`` is the code for a URI that parses but names no local path (a host, a
    drive letter): 0.171 answers -32600 from fs methods and -32602 for ``process/start.cwd``.

    Fast path (no regex, no cache): ``file:///`` followed by a path in which the URL parser
    changes nothing that survives decoding -- no ``%`` to decode, no ``\\`` (read as ``/``), no
    query or fragment, no tab/CR/LF (removed), no NUL, no dot segment, no drive letter, no
    trailing space or control (stripped).  Characters the parser percent-encodes (space,
    non-ASCII, ``"<>{}``) decode back to themselves, so the URI's path *is* the native path.
    A handful of ``in`` scans of a short string cost less than a regex match
    (docs/dialects.md §Paths and URIs: measured).
    """
    if uri[:8] == "file:///":
        path = uri[7:]
        if ("%" not in path and "\\" not in path and "?" not in path and "#" not in path
                and "\t" not in path and "\n" not in path and "\r" not in path and "\0" not in path
                and path[-1] > " " and path[2:3] != ":" and path[2:3] != "|"
                and ("/." not in path or not _has_dot_segment(path))):
            return path
    seen = _memo_get(uri)
    if seen is not None:
        return seen
    path = _slow(uri, invalid_code)
    if len(_memo) >= MEMO_MAX:
        _memo.clear()
    _memo[uri] = path
    return path


def _has_dot_segment(path: str) -> bool:
    """``.`` or ``..`` as a whole segment (``/.git`` is not one)."""
    return "/./" in path or "/../" in path or path.endswith(("/.", "/.."))


def _slow(uri: str, invalid_code: int) -> str:
    s = _TAB_NL.sub("", uri.strip(_STRIP))
    m = _SCHEME.match(s)
    if m is None:
        raise RpcError(INVALID_PARAMS, RELATIVE)
    scheme = m.group(1).lower()
    if scheme != "file":
        raise RpcError(INVALID_PARAMS, f"unsupported path URI scheme `{scheme}`")
    rest = s[m.end():].replace("\\", "/")
    fragment = None
    hash_at = rest.find("#")
    if hash_at >= 0:
        rest, fragment = rest[:hash_at], rest[hash_at + 1:]
    query = None
    q_at = rest.find("?")
    if q_at >= 0:
        rest, query = rest[:q_at], rest[q_at + 1:]
    host = ""
    if rest.startswith("//"):
        end = rest.find("/", 2)
        host, rest = (rest[2:], "") if end < 0 else (rest[2:end], rest[end:])
        host = host.lower()
        if host == "localhost":
            host = ""
    segments = _segments(rest)
    if segments and _DRIVE.match(segments[0]) and not host:
        segments[0] = segments[0][0].upper() + ":"
    path = "/" + "/".join(segments)
    if query is not None:
        raise RpcError(INVALID_PARAMS, QUERY)
    if fragment is not None:
        raise RpcError(INVALID_PARAMS, FRAGMENT)
    serialised = f"file://{host}{path}"
    if host or (segments and _DRIVE.match(segments[0])):
        raise RpcError(invalid_code, f"'{serialised}' is invalid on '{PLATFORM}'")
    raw = _PCT.sub(lambda b: bytes((int(b.group(1), 16),)), path.encode("utf-8", "surrogatepass"))
    if b"\0" in raw:
        raise RpcError(INVALID_PARAMS, f"'{serialised}' is invalid on '{PLATFORM}'")
    return os.fsdecode(raw)


def _segments(path: str) -> list[str]:
    """WHATWG path state: split, drop ``.`` segments, pop on ``..``, percent-encode raw bytes."""
    out: list[str] = []
    parts = path.split("/")
    if parts and parts[0] == "":
        parts = parts[1:]
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if part in _DOTDOTS:
            if out:
                out.pop()
            if i == last:
                out.append("")
        elif part in _DOTS:
            if i == last:
                out.append("")
        else:
            out.append("".join(_PATH_ENC[b] for b in part.encode("utf-8", "surrogatepass")))
    return out


def path_param(value: str, auto: bool, invalid_code: int = INVALID_REQUEST) -> tuple[str, bool]:
    """Decode one path param in the given dialect; return ``(native path, was_uri)``.

    In the auto dialect a native path passes through unchanged (validated later by the
    0.131 rules) and ``was_uri`` tells the caller to answer with native paths.
    """
    if auto and not is_uri(value):
        return value, False
    return to_path(value, invalid_code), True
