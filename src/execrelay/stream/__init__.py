"""Sans-I/O relay streams: per-stream engines (legacy and reliable modes) and a multiplexer.

- :mod:`.mux`     :class:`Multiplexer`, many streams over one websocket (start here)
- :mod:`.engine`  :class:`StreamEngine`, one stream's state machine
- :mod:`.hot`     compiled/pure hot path: receive window, send window + ack processing,
                  reassembly
- :mod:`.errors`  limits and exceptions
"""
from __future__ import annotations

from .engine import (ACCEPTOR, LEGACY, OPENER, PENDING, RELIABLE, StreamEngine)
from .errors import MessageTooLarge, ProtocolViolation, StreamClosed
from .hot import IMPLEMENTATION
from .mux import Multiplexer

__all__ = ["Multiplexer", "StreamEngine", "ACCEPTOR", "OPENER", "LEGACY", "PENDING", "RELIABLE",
           "MessageTooLarge", "ProtocolViolation", "StreamClosed", "IMPLEMENTATION"]
