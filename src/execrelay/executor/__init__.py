"""The exec-server: a Codex 0.131.0-compatible JSON-RPC executor.

``ExecServer`` holds the state shared by every connection; ``RpcConnection`` is one
transport-independent JSON-RPC connection (local websocket, stdio or relay stream).
"""
from __future__ import annotations

from .connection import Deferred, PostSend, RpcConnection
from .errors import RpcError
from .server import ExecServer, ExecServerConfig

__all__ = ["ExecServer", "ExecServerConfig", "RpcConnection", "RpcError", "Deferred", "PostSend"]
