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
    #: None: ``max_frame_bytes`` + 64 KiB, enough to read a slightly oversized frame's stream
    #: id and Reset it, without buffering four times the frame limit.
    max_message_bytes: int | None = None
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
    #: until the executor socket has drained below half of it.  This is a total over all
    #: harnesses of the executor: crossing it stops every harness before its next frame, so
    #: the queue exceeds it by at most one frame.
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
    #: Registry responses say ``wss://`` when the request carried ``X-Forwarded-Proto: https``
    #: (only behind a TLS-terminating proxy: anyone can send the header).
    trust_forwarded_proto: bool = False

    # -- docs/rendezvous.md §Security model: connections before and after authentication --
    #: A connection must complete its request headers (and, for a websocket, its upgrade)
    #: within this many seconds, and an idle keep-alive HTTP connection is closed after it.
    handshake_timeout: float = 10.0
    #: Connections that have not yet been authenticated, at most; beyond it the oldest is
    #: dropped (a slowloris fills the cap with its own connections, not with ours).
    max_unauthenticated: int = 1000

    # -- streams ------------------------------------------------------------------------
    #: Streams bound to one harness socket, and to one executor (all its harnesses).  Sized
    #: for the tested 10,000 streams on one socket (docs/relay-protocol.md §Executor behaviour).
    max_streams_per_harness: int = 16_384
    max_streams_per_executor: int = 65_536
    #: New streams per second one harness socket may open (token bucket of ``stream_burst``):
    #: a fresh socket may open its whole cap at once, a create-and-reset loop gets 1,000/s.
    stream_rate: float = 1000.0
    stream_burst: int = 16_384
    #: Refused new streams a harness socket may accumulate, draining at ``stream_rate`` per
    #: second; beyond it the socket is closed (``connections_dropped_total{reason="stream_flood"}``):
    #: a stream flood then costs one socket instead of a Reset per frame for as long as the client
    #: keeps going (the soak's Rapid-Reset flooder stalled the rendezvous's timers by seconds).
    max_refused_streams: int = 1024
    #: Stream ids remembered per executor, while it is absent, whose streams the rendezvous
    #: ended; Reset to the executor when it returns (docs/rendezvous.md §Grace periods).
    expired_memory: int = 10_000

    # -- /metrics -----------------------------------------------------------------------
    #: When set, ``GET /metrics`` needs ``Authorization: Bearer <metrics_token>``.
    metrics_token: str | None = None

    @property
    def message_limit(self) -> int:
        """The websocket reader's message cap (see ``max_message_bytes``)."""
        if self.max_message_bytes is None:
            return self.max_frame_bytes + 64 * 1024
        return max(self.max_message_bytes, self.max_frame_bytes + 1024)

    @property
    def harness_queue_hard_limit(self) -> int:
        """The effective hard limit: ``harness_queue_hard_bytes`` or 2 x the soft limit."""
        return self.harness_queue_hard_bytes or 2 * self.harness_queue_bytes
