"""Tunables of the rendezvous: the one place their defaults live.

The defaults follow docs/rendezvous.md §Grace periods and §Routing; the server, the router and
``execrelay rendezvous`` (whose options only override what is given) all read them from here.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..wire.peek import LEGACY_MAX_FRAME_BYTES

MiB = 1024 * 1024


@dataclass
class RendezvousConfig:
    #: Frames larger than this are refused at the edge (dropped, their stream Reset).
    max_frame_bytes: int = LEGACY_MAX_FRAME_BYTES
    #: A websocket message larger than this closes the socket (the reader will not buffer it).
    max_message_bytes: int = 64 * MiB
    #: Reliable streams survive a lost harness socket this long (the harness may Resume).
    harness_grace: float = 30.0
    #: Harness streams wait this long for an absent executor before ``executor_unavailable``.
    executor_grace: float = 30.0
    #: Outbound bytes queued for one harness socket (soft limit): above it for longer than
    #: ``harness_slow_after`` seconds, the harness is cut off.  Must exceed one maximal frame.
    harness_queue_bytes: int = 24 * MiB
    #: Hard limit: above it the harness is cut off at once (None: 2 x the soft limit).
    harness_queue_hard_bytes: int | None = None
    #: How long a harness may stay above the soft limit (0: cut off at the soft limit).
    harness_slow_after: float = 2.0
    #: Above this many queued bytes for the executor, harness readers wait (TCP backpressure)
    #: until the executor socket has drained below half of it.
    executor_high_water: int = 8 * MiB
    #: Frames queued per executor while it is absent (bytes and count).
    pending_bytes: int = 16 * MiB
    pending_frames: int = 10_000
    #: Lifetime of the executor URL token returned by the registry.
    url_token_ttl: float = 300.0
    #: Websocket ping interval (None: off).  aiohttp closes a socket whose pong is late.
    heartbeat: float | None = 30.0
    #: ``ws://host:port`` used in registry responses; None: derived from the request.
    public_url: str | None = None

    @property
    def harness_queue_hard_limit(self) -> int:
        """The effective hard limit: ``harness_queue_hard_bytes`` or 2 x the soft limit."""
        return self.harness_queue_hard_bytes or 2 * self.harness_queue_bytes
