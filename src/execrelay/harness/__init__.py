"""Harness client library: sessions with an executor, directly or through a rendezvous."""
from __future__ import annotations

from .client import HarnessClient, is_relay_url
from .errors import ConnectionLost, HarnessError, RpcCallError
from .session import ExecSession

__all__ = ["HarnessClient", "ExecSession", "HarnessError", "RpcCallError", "ConnectionLost",
           "is_relay_url"]
