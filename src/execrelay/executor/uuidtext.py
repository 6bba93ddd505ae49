"""UUID validation with the Rust ``uuid`` crate's error texts (0.171's ``metadata.threadId``).

0.171.0 decodes ``process/start.metadata.threadId`` as a ``Uuid``; a bad value is ``-32602``
with the crate's message, which depends on the input (docs/dialects.md §New methods,
tests/conformance171/FINDINGS.md G1).  Accepted: the simple (32 hex), hyphenated, braced
``{…}`` and ``urn:uuid:`` forms, any case.  A leaf module: one job, no executor imports.
"""
from __future__ import annotations

_HEX = frozenset(b"0123456789abcdefABCDEF")
_GROUP_LENS = (8, 4, 4, 4, 12)
_BLOCK_STARTS = (0, 9, 14, 19, 24)
_URN = b"urn:uuid:"


def _hyphenated_ok(s: bytes) -> bool:
    if len(s) != 36:
        return False
    for i, c in enumerate(s):
        if i in (8, 13, 18, 23):
            if c != 45:
                return False
        elif c not in _HEX:
            return False
    return True


def uuid_error(text: str) -> str | None:
    """None when ``text`` is a UUID in a form the crate accepts, else the crate's error text."""
    raw = text.encode("utf-8", "surrogatepass")
    n = len(raw)
    if n == 32 and all(c in _HEX for c in raw):
        return None
    if n == 36 and _hyphenated_ok(raw):
        return None
    if n == 38 and raw[:1] == b"{" and raw[-1:] == b"}" and _hyphenated_ok(raw[1:-1]):
        return None
    if n == 45 and raw.startswith(_URN) and _hyphenated_ok(raw[9:]):
        return None
    return _describe(raw)


def _describe(raw: bytes) -> str:
    """``InvalidUuid::into_err``: the first bad character, else the length/group shape."""
    if len(raw) >= 2 and raw[:1] == b"{" and raw[-1:] == b"}":
        s, offset, simple = raw[1:-1], 1, False
    elif raw.startswith(_URN):
        s, offset, simple = raw[len(_URN):], len(_URN), False
    else:
        s, offset, simple = raw, 0, True
    text = s.decode("utf-8", "surrogatepass")
    hyphens = 0
    bounds = [0, 0, 0, 0]
    index = 0  # byte index of the current character, as Rust's char_indices
    for ch in text:
        width = len(ch.encode("utf-8", "surrogatepass"))
        if width > 1 or (ch != "-" and ord(ch) not in _HEX):
            return ("invalid character: expected an optional prefix of `urn:uuid:` followed by "
                    f"[0-9a-fA-F-], found `{ch}` at {index + offset + 1}")
        if ch == "-":
            if hyphens < 4:
                bounds[hyphens] = index
            hyphens += 1
        index += width
    if hyphens == 0 and simple:
        return f"invalid length: expected length 32 for simple format, found {len(s)}"
    if hyphens != 4:
        return f"invalid group count: expected 5, found {hyphens + 1}"
    for i in range(4):
        if bounds[i] != _BLOCK_STARTS[i + 1] - 1:
            return (f"invalid group length in group {i}: expected {_GROUP_LENS[i]}, "
                    f"found {bounds[i] - _BLOCK_STARTS[i]}")
    return f"invalid group length in group 4: expected 12, found {len(s) - _BLOCK_STARTS[4]}"
