"""Which Codex dialect a request is answered in (docs/dialects.md).

Codex 0.131.0 and 0.171.0 speak different exec-server dialects (native paths vs ``file://``
URIs, new fields, other error codes).  One server serves both:

* ``ExecServerConfig.compat`` is ``"0.131"`` or ``"0.171"`` (fixed: every request is answered in
  that dialect) or ``"auto"`` (the default);
* in ``auto`` each session remembers the dialect its requests showed (:attr:`Session.dialect`,
  ``None`` until a request tells); where nothing tells, the newer release wins.

Handlers ask :func:`is_171` once per request; it is a couple of attribute loads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection

COMPAT_AUTO: Final = "auto"
COMPAT_131: Final = "0.131"
COMPAT_171: Final = "0.171"
#: the values of ``execrelay exec-server --compat`` (fixed names: outside checks use them)
COMPAT_CHOICES: Final = (COMPAT_AUTO, COMPAT_131, COMPAT_171)


def check_compat(value: str) -> str:
    """Validate a ``--compat`` value; a clear error names the allowed ones."""
    if value not in COMPAT_CHOICES:
        raise ValueError(f"unknown compat {value!r}: expected one of {', '.join(COMPAT_CHOICES)}")
    return value


def is_171(conn: "RpcConnection") -> bool:
    """True when ``conn``'s current request is to be answered as 0.171.0 would.

    Fixed compat wins; in ``auto`` the session's remembered dialect, else the newer release."""
    compat = conn.server.config.compat
    if compat != COMPAT_AUTO:
        return compat == COMPAT_171
    session = conn.session
    dialect = None if session is None else session.dialect
    return dialect != COMPAT_131


def remember(conn: "RpcConnection", dialect: str) -> None:
    """In ``auto``: record the dialect a request showed on the connection's session (first wins
    until a request of the other form arrives; a resumed session keeps what it had)."""
    session = conn.session
    if session is not None and conn.server.config.compat == COMPAT_AUTO:
        session.dialect = dialect
