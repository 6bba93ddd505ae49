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
