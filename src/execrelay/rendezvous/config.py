"""Tunables of the rendezvous (defaults follow profile P5)."""
from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass
class RendezvousConfig:
    #: Frames larger than this are refused at the edge (dropped, their stream Reset).
    max_frame_bytes: int = 16 * MiB
    #: A websocket message larger than this closes the socket (the reader will not buffer it).
    max_message_bytes: int = 64 * MiB
    #: Reliable streams survive a lost harness socket this long (the harness may Resume).
    harness_grace: float = 30.0
    #: Harness streams wait this long for an absent executor before ``executor_unavailable``.
    executor_grace: float = 30.0
    #: Outbound bytes queued for one harness socket before it is cut off.  Must exceed one
    #: maximal frame, or a large legitimate reply would cut the harness off.
    harness_queue_bytes: int = 24 * MiB
    #: Above this many queued bytes for the executor, harness readers wait (TCP backpressure).
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
