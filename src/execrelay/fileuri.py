"""``file://`` URIs as the 0.171 exec-server dialect writes them (docs/dialects.md §Paths and URIs).

A neutral leaf (it imports nothing from execrelay) because both sides of the wire need it: the
exec-server formats result paths with :func:`to_uri` (``executor/fileuri.py`` re-exports it next
to its 0.171 request parser), and the harness client formats request paths with it and reads
result URIs back with :func:`from_uri`.

:func:`to_uri` reproduces the Rust ``url`` crate's ``Url::from_file_path``: ``file://`` + the
path's bytes with the *path segment* percent-encode set applied.
"""
from __future__ import annotations

import os
import re
from urllib.parse import unquote_to_bytes

# WHATWG "path percent-encode set", plus ``%`` and ``\``: the "special path segment" set that
# ``from_file_path`` applies to each component (it also has ``/``, which cannot occur inside a
# component, so a whole path is encoded at once).  ``\`` must be encoded because a parser
# reads it as ``/`` in a ``file:`` URL; the real 0.171.0 emits ``b%5Cs`` for a file ``b\s``
# (probed with ``fs/walk`` and ``fs/canonicalize``).
PATH_SET = frozenset(b" \"#<>?`{}") | frozenset(range(0x20)) | frozenset(range(0x7F, 0x100))
_SEGMENT_SET = PATH_SET | frozenset(b"%\\")


def encode_table(unsafe: frozenset) -> tuple[str, ...]:
    """Byte -> its text in a URI: ``%XX`` (upper-case hex) for the bytes in ``unsafe``."""
    return tuple(f"%{b:02X}" if b in unsafe else chr(b) for b in range(256))


_OUT_ENC = encode_table(_SEGMENT_SET)
#: characters whose presence in a native path means :func:`to_uri` must percent-encode
_OUT_SAFE = re.compile(r"[A-Za-z0-9_\-.~!$&'()*+,;=:@\[\]^|/]*")


def to_uri(path: str | bytes) -> str:
    """Format an absolute native path the way 0.171 emits it (``Url::from_file_path``)."""
    if isinstance(path, bytes):
        raw = path
    else:
        if _OUT_SAFE.fullmatch(path) is not None:
            return "file://" + path
        raw = os.fsencode(path)
    return "file://" + "".join(_OUT_ENC[b] for b in raw)


def from_uri(uri: str) -> str:
    """The native path of a URI a 0.171 server emitted (the inverse of :func:`to_uri`).

    Only the shape servers produce is accepted -- ``file://`` with an empty or ``localhost``
    host, an absolute path, no query or fragment; ``%XX`` are decoded to bytes (an undecodable
    byte becomes a surrogate, as :func:`os.fsdecode` does).  Anything else is ``ValueError``:
    request URIs typed by people are the server's business (``executor/fileuri.py``), not this.
    """
    if uri[:7].lower() != "file://":
        raise ValueError(f"not a file:// URI: {uri!r}")
    rest = uri[7:]
    if rest[:9].lower() == "localhost":
        rest = rest[9:]
    if not rest.startswith("/") or "?" in rest or "#" in rest:
        raise ValueError(f"not a local absolute file:// URI: {uri!r}")
    if "%" not in rest:
        return rest
    return os.fsdecode(unquote_to_bytes(rest))
