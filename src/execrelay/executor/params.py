"""Parameter decoding that reproduces serde's error texts (-32602).

The Rust server decodes ``params`` with serde before any state check, so a wrong type gets
``invalid type: integer `5`, expected a string`` and a missing member ``missing field `cwd` ``.
These helpers are tiny and branch-light: they run on every request of the hot path.
"""
from __future__ import annotations

import binascii
import os.path
import re
from typing import Any

from .errors import RpcError, INVALID_PARAMS

_BAD_NUMBER = "invalid number"
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
U64_MAX = (1 << 64) - 1
_normpath = os.path.normpath


def describe(value: Any) -> str:
    """serde's ``Unexpected`` display for a JSON value."""
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return f"boolean `{'true' if value else 'false'}`"
    if t is int:
        return f"integer `{value}`"
    if t is float:
        return f"floating point `{value!r}`"
    if t is str:
        return f'string "{value}"'
    if t is list:
        return "sequence"
    return "map"


def bad_type(value: Any, expected: str) -> RpcError:
    """serde's type error; 0.171.0's decoder calls every number just ``number``."""
    message = f"invalid type: {describe(value)}, expected {expected}"
    t = type(value)
    if t is int or t is float:
        return RpcError(INVALID_PARAMS, message, message171=f"invalid type: number, expected {expected}")
    return RpcError(INVALID_PARAMS, message)


def missing(name: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"missing field `{name}`")


def struct(params: Any, name: str) -> dict:
    """The params object itself; serde refuses null/absent for a struct."""
    if type(params) is dict:
        return params
    raise bad_type(params, f"struct {name}")


def req_str(p: dict, name: str) -> str:
    v = p.get(name, _MISSING)
    if type(v) is str:
        return v
    if v is _MISSING:
        raise missing(name)
    raise bad_type(v, "a string")


def opt_str(p: dict, name: str) -> str | None:
    v = p.get(name)
    if v is None or type(v) is str:
        return v
    raise bad_type(v, "a string")


def req_bool(p: dict, name: str) -> bool:
    v = p.get(name, _MISSING)
    if v is True or v is False:
        return v
    if v is _MISSING:
        raise missing(name)
    raise bad_type(v, "a boolean")


def opt_bool(p: dict, name: str, default: bool) -> bool:
    v = p.get(name)
    if v is None:
        return default
    if v is True or v is False:
        return v
    raise bad_type(v, "a boolean")


def opt_u64(p: dict, name: str, default: int | None) -> int | None:
    v = p.get(name)
    if v is None:
        return default
    if type(v) is int:
        if 0 <= v <= U64_MAX:
            return v
        raise RpcError(INVALID_PARAMS, f"invalid value: integer `{v}`, expected u64", message171=_BAD_NUMBER)
    if type(v) is float:  # 0.171.0 refuses a fraction while reading the number
        raise RpcError(INVALID_PARAMS, f"invalid type: {describe(v)}, expected u64", message171=_BAD_NUMBER)
    raise bad_type(v, "u64")


def req_uint(p: dict, name: str, kind: str = "u64") -> int:
    """A required unsigned integer (``kind`` is serde's name for it: ``u64``, ``usize``)."""
    v = p.get(name, _MISSING)
    if type(v) is int:
        if 0 <= v <= U64_MAX:
            return v
        raise RpcError(INVALID_PARAMS, f"invalid value: integer `{v}`, expected {kind}", message171=_BAD_NUMBER)
    if type(v) is float:  # as opt_u64: 0.171.0 refuses a fraction (or a u64 overflow) while reading it
        raise RpcError(INVALID_PARAMS, f"invalid type: {describe(v)}, expected {kind}", message171=_BAD_NUMBER)
    if v is _MISSING:
        raise missing(name)
    raise bad_type(v, kind)


def _strings(p: dict, name: str, required: bool, kind: type, what: str) -> Any:
    """A ``kind`` (dict or list) of strings, in serde's order: missing, container type, members."""
    v = p.get(name, _MISSING)
    if v is _MISSING or (v is None and not required):
        if required:
            raise missing(name)
        return None
    if type(v) is not kind:
        raise bad_type(v, what)
    for item in (v.values() if kind is dict else v):
        if type(item) is not str:
            raise bad_type(item, "a string")
    return v


def str_map(p: dict, name: str, required: bool = True) -> dict[str, str] | None:
    return _strings(p, name, required, dict, "a map")


def str_list(p: dict, name: str, required: bool = True) -> list[str] | None:
    return _strings(p, name, required, list, "a sequence")


_ABS_ERR = "AbsolutePathBuf deserialized without a base path"


def native_path(v: str) -> str:
    """0.131's ``AbsolutePathBuf``: absolute, normalised lexically (``/tmp/../etc`` -> ``/etc``)."""
    if v[:1] == "/":
        # fast path: already normal (no '.', '..', '//' or trailing '/')
        if "/." in v or "//" in v or (v[-1] == "/" and len(v) > 1):
            v = _normpath(v)
            if v[:2] == "//":
                v = "/" + v.lstrip("/")
        return v
    raise RpcError(INVALID_PARAMS, _ABS_ERR)


def abs_path(p: dict, name: str) -> str:
    """An ``AbsolutePathBuf`` param (the 0.131 dialect)."""
    v = p.get(name, _MISSING)
    if type(v) is str:
        return native_path(v)
    if v is _MISSING:
        raise missing(name)
    raise bad_type(v, "a string")


#: serde_json as 0.171 builds it (numbers kept as text) names every number "number" and
#: answers "invalid number" when one does not fit an integer field
_NUMBER_AS_INT = re.compile(r"invalid (?:type|value): (?:integer|floating point) `[^`]*`, expected [ui](?:8|16|32|64|size)$")
_NUMBER_TYPE = re.compile(r"invalid type: (?:integer|floating point) `[^`]*`,")


def serde_text_171(message: str) -> str:
    """A -32602 text of the 0.131 dialect as 0.171 words it (error path only: no cost otherwise)."""
    if _NUMBER_AS_INT.match(message):
        return "invalid number"
    return _NUMBER_TYPE.sub("invalid type: number,", message, count=1)


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
MISSING = _MISSING

_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


try:  # SIMD base64: ~40x faster than binascii on 64 KiB (fs/readFile, process output)
    import pybase64 as _pybase64

    def _strict_decode(s: str) -> bytes:
        return _pybase64.b64decode(s, validate=True)

    def b64encode(data: bytes) -> str:
        return _pybase64.b64encode_as_string(data)

    #: base64 of any buffer as ASCII bytes (pybase64 releases the GIL for large inputs)
    b64encode_bytes = _pybase64.b64encode

    BASE64_IMPL = "pybase64"
except ImportError:  # pragma: no cover - optional dependency
    def _strict_decode(s: str) -> bytes:
        return binascii.a2b_base64(s, strict_mode=True)

    def b64encode(data: bytes) -> str:
        return binascii.b2a_base64(data, newline=False).decode("ascii")

    def b64encode_bytes(data: Any) -> bytes:
        return binascii.b2a_base64(data, newline=False)

    BASE64_IMPL = "binascii"


def b64decode(s: str) -> bytes:
    """Strict standard base64 with padding; raises ValueError with the Rust crate's text."""
    try:
        return _strict_decode(s)
    except (binascii.Error, ValueError, TypeError):
        pass
    raw = s.encode("utf-8", "surrogatepass")
    n = len(raw)
    for i, c in enumerate(raw):
        if c not in _B64:
            if c == 61 and i >= n - 2 and n % 4 == 0:  # '=' in a legal padding position
                continue
            raise ValueError(f"Invalid symbol {c}, offset {i}.")
    if n % 4:
        raise ValueError("Invalid input length.")
    raise ValueError("Invalid padding")



def b64_param(s: str) -> bytes:
    """:func:`b64decode` of a request param: a bad one is that request's -32602, in the
    decoder's words."""
    try:
        return b64decode(s)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, str(exc)) from None
