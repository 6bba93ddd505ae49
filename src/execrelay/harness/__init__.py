"""Harness client library: sessions with an executor, directly or through a rendezvous."""
from __future__ import annotations

from .client import HarnessClient, is_relay_url
from .errors import ConnectionLost, HarnessError, RpcCallError, UnsupportedMethod
from .paths import DIALECT_131, DIALECT_171, PathArg
from .session import ExecSession

__all__ = ["HarnessClient", "ExecSession", "HarnessError", "RpcCallError", "ConnectionLost",
           "UnsupportedMethod", "DIALECT_131", "DIALECT_171", "PathArg", "is_relay_url"]
