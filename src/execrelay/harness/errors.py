"""Errors the harness client raises."""
from __future__ import annotations


class HarnessError(Exception):
    """Base class of harness client errors."""


class RpcCallError(HarnessError):
    """The executor answered a request with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: object = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


class ConnectionLost(HarnessError):
    """The session's stream or websocket ended before the answer came (reason attached)."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(f"connection lost: {reason or 'closed'}")
        self.reason = reason


class UnsupportedMethod(HarnessError):
    """A typed call the session's server dialect does not have (e.g. ``fs/walk`` on a 0.131
    server).  Raised before anything is sent: the server would only answer -32601."""

    def __init__(self, method: str, dialect: str | None) -> None:
        where = f"a {dialect} server" if dialect else "a session that is not initialized"
        super().__init__(f"{method} is not available on {where} (0.171 method)")
        self.method = method
        self.dialect = dialect
