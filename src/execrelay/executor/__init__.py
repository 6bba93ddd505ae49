"""The exec-server: a Codex 0.131.0-compatible JSON-RPC executor.

``ExecServer`` holds the state shared by every connection; ``RpcConnection`` is one
transport-independent JSON-RPC connection (local websocket, stdio or relay stream).
"""
from __future__ import annotations

from .connection import RpcConnection
from .errors import RpcError
from .methods import METHODS, Handler
from .results import Deferred, Encoded, PostSend
from .server import ExecServer, ExecServerConfig

__all__ = ["ExecServer", "ExecServerConfig", "RpcConnection", "RpcError", "Deferred", "Encoded",
           "PostSend", "METHODS", "Handler"]
