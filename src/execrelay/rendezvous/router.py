"""Routing of relay frames between harness sockets and executor sockets.

Frames travel unmodified.  The router reads only the stream_id (``peek_stream_id``) and,
through :func:`execrelay.wire.peek.body_kind`, the body's field number from the canonical
prefix of the frame.  A full ``decode`` happens only for the first frame of a new stream, for
Reset frames and for frames in an unusual layout: rare events.

No socket I/O happens here: a :class:`~execrelay.rendezvous.link.Link` queues what the router
sends and flushes it.  The router does own time, though: the grace periods
(docs/rendezvous.md §Grace periods) are timers on the running asyncio loop
(``call_later``/``call_at``, deadlines in loop time), so attach/detach/routing calls must come
from inside that loop, and tests drive the grace periods with short configured values.

State per executor id is a :class:`Hub`: the executor's link (or None while absent), a
:class:`~execrelay.rendezvous.directory.StreamTable` of routes, and frames pending for an
absent executor.  Ownership goes through the
:class:`~execrelay.rendezvous.directory.ExecutorDirectory`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Callable

from ..wire import DATA, RESET, RESUME, FrameError, decode, encode_control, peek_stream_id
from ..wire.peek import body_kind, clip_reason
from .config import RendezvousConfig
from .directory import ExecutorDirectory, LocalExecutorDirectory, LocalStreamTable, StreamTable
from .link import Link, rdvfast
from .metrics import Metrics

if TYPE_CHECKING:  # pragma: no cover
    from ._rdvfast_py import HubCore, RouteCore
else:
    HubCore, RouteCore = rdvfast.HubCore, rdvfast.RouteCore

log = logging.getLogger("execrelay.rendezvous")

# Reset reasons the rendezvous generates (all non-empty, <= 256 bytes: valid for 0.131.0).
HARNESS_DISCONNECTED = "harness_disconnected"
EXECUTOR_UNAVAILABLE = "executor_unavailable"
STREAM_IN_USE = "stream_in_use"
HARNESS_TOO_SLOW = "harness_too_slow"
FRAME_TOO_LARGE = "frame_too_large"
QUEUE_FULL = "queue_full"
PROTOCOL_ERROR = "protocol_error"
TOO_MANY_STREAMS = "too_many_streams"
#: Reset reason of a stream opened while the rendezvous drains (open it again elsewhere)
RENDEZVOUS_DRAINING = "rendezvous_draining"
STREAM_RATE_LIMITED = "stream_rate_limited"
#: why a harness socket that kept opening refused streams was dropped
STREAM_FLOOD = "stream_flood"


class Route(RouteCore):
    """One stream: the harness socket it is bound to (None while orphaned) and its mode."""

    __slots__ = ("sid", "reliable", "absent_deadline", "orphan_handle", "owner")

    def __init__(self, sid: str, link: Link | None, reliable: bool, owner: str = "") -> None:
        self.sid = sid
        self.link = link
        self.reliable = reliable
        #: credential of the socket that opened the stream: only it may resume the stream.
        self.owner = owner
        #: loop time at which the stream is Reset if the executor is still absent (0: n/a).
        self.absent_deadline = 0.0
        self.orphan_handle: asyncio.TimerHandle | None = None


class Hub(HubCore):
    """Routing state of one executor id."""

    __slots__ = ("executor_id", "pending", "pending_bytes", "pending_sids",
                 "harnesses", "absent_handle", "absent_queue", "congested")

    def __init__(self, executor_id: str, table: StreamTable) -> None:
        self.executor_id = executor_id
        self.executor: Link | None = None
        self.table = table
        #: the table's dict when it is the single-node one (the compiled frame path reads it)
        self.local_routes = table.routes_dict() if isinstance(table, LocalStreamTable) else None
        self.pending: deque[tuple[str, bytes]] = deque()
        self.pending_bytes = 0
        #: stream_id -> number of its frames in ``pending`` (cheap "anything to drop?").
        self.pending_sids: dict[str, int] = {}
        self.harnesses: dict[Link, None] = {}
        self.absent_handle: asyncio.TimerHandle | None = None
        #: (deadline, route) in deadline order: the grace is constant, so appending keeps
        #: it sorted and expiry pops from the left (O(1) per stream, no rescans).
        self.absent_queue: deque[tuple[float, Route]] = deque()
        #: the executor's queue crossed its limit this tick (harness budgets already zeroed).
        self.congested = False


class Router:
    """All hubs of one rendezvous process plus the per-frame routing functions."""

    def __init__(self, config: RendezvousConfig | None = None, metrics: Metrics | None = None,
                 directory: ExecutorDirectory | None = None,
                 table_factory: Callable[[], StreamTable] = LocalStreamTable) -> None:
        self.config = config or RendezvousConfig()
        self.metrics = metrics or Metrics()
        self.directory: ExecutorDirectory = directory or LocalExecutorDirectory()
        self._table_factory = table_factory
        self.hubs: dict[str, Hub] = {}
        #: executor id -> reliable stream ids ended while that executor was absent; Reset to
        #: it when it returns (it keeps reliable streams across reconnects).  Bounded: at
        #: most ``expired_memory`` ids per executor and as many executors.
        self.expired: dict[str, dict[str, str]] = {}
        self._max_frame = self.config.max_frame_bytes
        self._bad_log: dict[str, float] = {}
        #: set by a graceful drain: new streams are refused with RENDEZVOUS_DRAINING
        self.draining = False
        self.metrics.set_gauge_source("streams", self.stream_count)
        self.metrics.set_gauge_source("executors_connected",
                                      lambda: sum(1 for h in self.hubs.values()
                                                  if h.executor is not None and not h.executor.remote))
        self.metrics.set_gauge_source("pending_frames",
                                      lambda: sum(len(h.pending) for h in self.hubs.values()))

    def use_state(self, directory: ExecutorDirectory,
                  table_factory: Callable[[], StreamTable]) -> None:
        """Swap in another executor directory and stream-table factory (the cluster's,
        docs/rendezvous.md §Several nodes); only before any socket attached."""
        if self.hubs:
            raise RuntimeError("use_state after sockets attached")
        self.directory = directory
        self._table_factory = table_factory

    # -- bookkeeping --------------------------------------------------------------------
    def stream_count(self) -> int:
        return sum(len(h.table) for h in self.hubs.values())

    def hub(self, executor_id: str) -> Hub:
        hub = self.hubs.get(executor_id)
        if hub is None:
            hub = self.hubs[executor_id] = Hub(executor_id, self._table_factory())
        return hub

    def _maybe_forget(self, hub: Hub) -> None:
        if hub.executor is None and not hub.harnesses and not len(hub.table) and not hub.pending:
            if hub.absent_handle is not None:
                hub.absent_handle.cancel()
            if self.hubs.get(hub.executor_id) is hub:
                del self.hubs[hub.executor_id]

    def _bad(self, link: Link, reason: str, detail: str, stream_id: str | None = None) -> None:
        """Count a refused frame; log at most once per peer per minute (with the ids as
        fields, docs/operations.md §Logs; ``stream_id`` when the frame named one).

        See docs/relay-protocol.md §Frames.
        """
        self.metrics.bad_frames[reason] += 1
        key = f"{link.role}:{link.executor_id}:{id(link)}"
        now = time.monotonic()
        if now - self._bad_log.get(key, -1e9) >= 60.0:
            if len(self._bad_log) > 10_000:
                self._bad_log.clear()
            self._bad_log[key] = now
            fields = {"reason": reason, "role": link.role, "executor_id": link.executor_id}
            if stream_id:
                fields["stream_id"] = stream_id
            log.warning("refused %s frame from %s %r: %s", reason, link.role, link.executor_id,
                        detail, extra={"fields": fields})

    def _undecodable(self, hub: Hub, link: Link, exc: FrameError) -> None:
        """Count and drop; if the error names a stream this socket may speak for, reset it."""
        sid = getattr(exc, "stream_id", None)
        self._bad(link, "undecodable", str(exc), sid)
        if not sid:
            return
        route = hub.table.get(sid)
        if route is not None and (link.role == "executor" or route.link is link):
            self._kill_stream(hub, route, f"{PROTOCOL_ERROR}: {exc}")

    def _reset_to(self, link: Link, sid: str, reason: str) -> None:
        link.send(encode_control(RESET, sid, reason=clip_reason(reason)))
        self.metrics.reset_sent(reason, link.role)

    def _reset_to_executor(self, hub: Hub, sid: str, reason: str) -> None:
        """Tell the executor a stream is gone.

        With the executor absent, its frames still pending are dropped instead: a 0.131.0
        executor forgets every stream when its socket drops, so there is nothing to reset.
        """
        ex = hub.executor
        if ex is not None:
            self._reset_to(ex, sid, reason)
        else:
            self._drop_pending(hub, sid)

    def _drop_pending(self, hub: Hub, sid: str) -> None:
        if sid not in hub.pending_sids:
            return
        self._drop_pending_many(hub, {sid})

    def _drop_pending_many(self, hub: Hub, sids: set[str]) -> None:
        if not sids or not hub.pending:
            return
        kept = deque(item for item in hub.pending if item[0] not in sids)
        hub.pending = kept
        hub.pending_bytes = sum(len(f) for _, f in kept)
        for sid in sids:
            hub.pending_sids.pop(sid, None)

    def _unbind(self, hub: Hub, route: Route) -> None:
        if hub.table.get(route.sid) is route:
            hub.table.unbind(route.sid)
        if route.orphan_handle is not None:
            route.orphan_handle.cancel()
            route.orphan_handle = None
        link = route.link
        if link is not None:
            link.streams.pop(route.sid, None)

    def _kill_stream(self, hub: Hub, route: Route, reason: str, *, to_harness: bool = True,
                     to_executor: bool = True) -> None:
        """End a stream on both sides (each side that is still there)."""
        self._unbind(hub, route)
        if hub.executor is None and route.reliable:
            self._remember_expired(hub.executor_id, route.sid, reason)
        if to_harness and route.link is not None and not route.link.closed:
            self._reset_to(route.link, route.sid, reason)
        if to_executor:
            self._reset_to_executor(hub, route.sid, reason)

    def _remember_expired(self, executor_id: str, sid: str, reason: str) -> None:
        cap = self.config.expired_memory
        sids = self.expired.get(executor_id)
        if cap <= 0:
            return
        if sids is None:
            if len(self.expired) >= cap:
                self.expired.pop(next(iter(self.expired)))
            sids = self.expired[executor_id] = {}
        if len(sids) >= cap:
            sids.pop(next(iter(sids)))
        sids[sid] = reason

    # -- harness -> executor ------------------------------------------------------------
    def harness_attached(self, link: Link) -> None:
        hub = self.hub(link.executor_id)
        hub.harnesses[link] = None
        link.hub = hub
        link.rate_tokens = float(self.config.stream_burst)
        link.rate_at = asyncio.get_running_loop().time()

    def from_harness(self, link: Link, data: bytes) -> None:
        """Route one binary message from a harness socket (the per-frame path)."""
        hub = link.hub
        if hub is None or link.closed:
            return
        try:  # inline prelude (size limit, stream id): a call here costs ~5% per frame
            sid = peek_stream_id(data) if len(data) <= self._max_frame else None
        except FrameError as exc:
            return self._undecodable(hub, link, exc)
        if sid is None:
            return self._refuse_oversized(hub, link, data)
        route = hub.table.get(sid)
        if route is None or route.link is not link:
            self._from_harness_new(hub, link, route, sid, data)
            return
        kind = body_kind(data)
        if kind == RESET or kind < 0:
            self._forward_checked(hub, link, route, data, self._forward_to_executor)
            return
        # _forward_to_executor, inlined: this is the per-frame path (one call less per frame).
        ex = hub.executor
        if ex is not None:
            ex.send(data)
            m = self.metrics
            m.frames_to_executor += 1
            m.bytes_to_executor += len(data)
        else:
            self._queue_pending(hub, route, data)

    def _forward_checked(self, hub: Hub, link: Link, route: Route, data: bytes,
                         forward: Callable[[Hub, Route, bytes], None]) -> None:
        """A bound stream's frame that is a Reset or not in canonical layout: decode it first.

        Either direction: an invalid frame is fatal to a 0.131.0 peer, so it ends the stream
        instead of being forwarded; a Reset is forwarded and unbinds the stream.
        """
        try:
            frame = decode(data)
        except FrameError as exc:
            self._bad(link, "invalid", str(exc), route.sid)
            self._kill_stream(hub, route, f"{PROTOCOL_ERROR}: {exc}")
            return
        forward(hub, route, data)
        if frame.kind == RESET:
            self._unbind(hub, route)

    def _from_harness_new(self, hub: Hub, link: Link, route: Route | None, sid: str,
                          data: bytes) -> None:
        """First frame of a stream on this socket: bind, rebind (Resume) or refuse."""
        try:
            frame = decode(data)
        except FrameError as exc:
            self._bad(link, "invalid", str(exc), sid)
            return
        if route is not None:
            if (route.link is None and route.reliable and frame.kind == RESUME
                    and route.owner == link.credential):
                # The harness came back within the grace period and resumes its stream.
                self.rebind(route, link)
                self._forward_to_executor(hub, route, data)
                return
            # Someone else's stream (live, or orphaned but opened with another credential):
            # refuse the intruder; the owner is not disturbed.
            self.metrics.dropped["stream_in_use"] += 1
            self._reset_to(link, sid, STREAM_IN_USE)
            return
        if frame.kind == RESET:
            # A Reset for a stream nobody holds: nothing to tear down.
            self.metrics.dropped["no_route"] += 1
            return
        # docs/relay-protocol.md §Stream modes: reliable iff opened with Resume{next_seq>=1}, or (the Resume was lost on the
        # way) with Data seq >= 1, which a 0.131.0 harness never sends first.
        reliable = ((frame.kind == RESUME and frame.next_seq >= 1)
                    or (frame.kind == DATA and frame.seq >= 1))
        refused = self._refuse_new_stream(hub, link)
        if refused:
            self.metrics.streams_refused[refused] += 1
            # refusals drain at the creation rate (a leaky bucket): a client that keeps opening
            # streams faster than it may fills it, one that slipped over the rate once does not
            now = asyncio.get_running_loop().time()
            link.refused = max(0.0, link.refused - (now - link.refused_at) * self.config.stream_rate) + 1.0
            link.refused_at = now
            if link.refused > self.config.max_refused_streams:
                # a flood: drop the socket rather than answer every frame (its streams end
                # as on any harness disconnect)
                if not link.closed:
                    self.metrics.connections_dropped[STREAM_FLOOD] += 1
                    link.abort(STREAM_FLOOD)
                return
            self._reset_to(link, sid, refused)
            return
        route = Route(sid, link, reliable, link.credential)
        hub.table.bind(sid, route)
        link.streams[sid] = None
        self.metrics.streams_opened += 1
        self._forward_to_executor(hub, route, data)

    def rebind(self, route: Route, link: Link) -> None:
        """Bind an orphaned stream to ``link``: a Resume from a new socket within the harness
        grace, or a cluster node bringing the stream back (docs/rendezvous.md §Several nodes)."""
        if route.orphan_handle is not None:
            route.orphan_handle.cancel()
            route.orphan_handle = None
        route.link = link
        link.streams[route.sid] = None

    def _refuse_new_stream(self, hub: Hub, link: Link) -> str | None:
        """Why a new stream on ``link`` is refused (None: it may open).

        Caps per harness socket and per executor, and a token bucket per harness socket
        against create-and-reset floods; checked only when a stream opens, never per frame.
        """
        if self.draining:  # docs/operations.md §Graceful drain
            return RENDEZVOUS_DRAINING
        cfg = self.config
        if (len(link.streams) >= cfg.max_streams_per_harness
                or len(hub.table) >= cfg.max_streams_per_executor):
            return TOO_MANY_STREAMS
        now = asyncio.get_running_loop().time()
        tokens = min(float(cfg.stream_burst), link.rate_tokens + (now - link.rate_at) * cfg.stream_rate)
        link.rate_at = now
        if tokens < 1.0:
            link.rate_tokens = tokens
            return STREAM_RATE_LIMITED
        link.rate_tokens = tokens - 1.0
        return None

    def _forward_to_executor(self, hub: Hub, route: Route, data: bytes) -> None:
        ex = hub.executor
        if ex is not None:
            ex.send(data)
            self.metrics.frames_to_executor += 1
            self.metrics.bytes_to_executor += len(data)
        else:
            self._queue_pending(hub, route, data)

    def _queue_pending(self, hub: Hub, route: Route, data: bytes) -> None:
        """Hold a frame for an absent executor (bounded); the stream waits for the grace."""
        cfg = self.config
        if (len(hub.pending) >= cfg.pending_frames
                or hub.pending_bytes + len(data) > cfg.pending_bytes):
            self.metrics.queue_drops["pending"] += 1
            self._kill_stream(hub, route, QUEUE_FULL, to_executor=False)
            self._drop_pending(hub, route.sid)
            self._maybe_forget(hub)
            return
        sid = route.sid
        hub.pending.append((sid, data))
        hub.pending_bytes += len(data)
        hub.pending_sids[sid] = hub.pending_sids.get(sid, 0) + 1
        if not route.absent_deadline:
            deadline = asyncio.get_running_loop().time() + cfg.executor_grace
            route.absent_deadline = deadline
            hub.absent_queue.append((deadline, route))
            self._arm_absent_timer(hub)

    def _refuse_oversized(self, hub: Hub, link: Link, data: bytes) -> None:
        self._bad(link, "too_large", f"{len(data)} bytes > {self.config.max_frame_bytes}")
        try:
            sid = peek_stream_id(data)
        except FrameError:
            return
        route = hub.table.get(sid)
        if route is None or (link.role == "harness" and route.link is not link):
            # Not (or not this socket's) stream: nothing to end, but the sender learns that
            # its frame went nowhere instead of waiting for an answer.
            self._reset_to(link, sid, FRAME_TOO_LARGE)
            return
        self._kill_stream(hub, route, FRAME_TOO_LARGE)

    def executor_backlog(self, executor_id: str) -> int:
        """Bytes queued toward this executor's socket (harness readers wait when high)."""
        hub = self.hubs.get(executor_id)
        if hub is None or hub.executor is None:
            return 0
        return hub.executor.queued_bytes()

    def executor_link(self, executor_id: str) -> Link | None:
        """The executor's socket, None while it is absent."""
        hub = self.hubs.get(executor_id)
        return hub.executor if hub is not None else None

    def harness_detached(self, link: Link) -> None:
        """A harness socket is gone: Reset its legacy streams now, reliable ones after grace."""
        hub = self.hubs.get(link.executor_id)
        link.closed = True
        if hub is None:
            return
        hub.harnesses.pop(link, None)
        slow = link.close_reason == HARNESS_TOO_SLOW
        loop = asyncio.get_running_loop()
        for sid in list(link.streams):
            route = hub.table.get(sid)
            if route is None or route.link is not link:
                continue
            if route.reliable and not slow:
                route.link = None
                route.orphan_handle = loop.call_later(
                    self.config.harness_grace, self._orphan_expired, hub, route)
            else:
                route.link = None
                self._kill_stream(hub, route, link.close_reason or HARNESS_DISCONNECTED,
                                  to_harness=False)
        link.streams.clear()
        self._maybe_forget(hub)

    def _orphan_expired(self, hub: Hub, route: Route) -> None:
        route.orphan_handle = None
        if route.link is None and hub.table.get(route.sid) is route:
            self._kill_stream(hub, route, HARNESS_DISCONNECTED, to_harness=False)
            self._maybe_forget(hub)

    def harness_overflow(self, link: Link) -> None:
        """A harness stopped reading: cut it off; its streams are Reset (no grace)."""
        self.metrics.queue_drops["harness"] += 1
        link.abort(HARNESS_TOO_SLOW)
        self.harness_detached(link)

    def executor_congested(self, link: Link) -> None:
        """The executor's queue crossed ``executor_high_water``: every harness of it checks
        the backlog (and waits) before routing its next frame.  Once per loop tick."""
        hub = link.hub
        if hub is None or hub.congested:
            return
        hub.congested = True
        asyncio.get_running_loop().call_soon(_uncongest, hub)
        for harness in hub.harnesses:
            harness.budget = 0

    # -- executor -> harness ------------------------------------------------------------
    def executor_claim(self, executor_id: str, registration: str) -> str:
        """Would a socket with this registration be accepted? ``new``/``takeover``/``refused``."""
        owner = self.directory.owner(executor_id)
        if owner is None:
            return "new"
        return "takeover" if owner[1] == registration else "refused"

    def executor_attached(self, link: Link, registration: str) -> Link | None | bool:
        """Install an executor socket.  Returns the replaced link, None, or False if refused."""
        outcome, old = self.directory.claim(link.executor_id, link, registration)
        if outcome == "refused":
            return False
        hub = self.hub(link.executor_id)
        hub.executor = link
        link.hub = hub
        if outcome == "takeover":
            self.metrics.takeovers += 1
        if hub.absent_handle is not None:
            hub.absent_handle.cancel()
            hub.absent_handle = None
        for _, route in hub.absent_queue:
            route.absent_deadline = 0.0
        hub.absent_queue.clear()
        pending, hub.pending = hub.pending, deque()
        hub.pending_bytes = 0
        hub.pending_sids.clear()
        expired = self.expired.pop(link.executor_id, None)
        if expired:
            # docs/rendezvous.md §Grace periods: streams that ended while the executor was
            # away are Reset now, or its sessions would live until it exits.
            for sid, reason in expired.items():
                if hub.table.get(sid) is None:
                    self._reset_to(link, sid, reason)
        m = self.metrics
        for _, frame in pending:
            link.send(frame)
            m.frames_to_executor += 1
            m.bytes_to_executor += len(frame)
        return old

    def executor_detached(self, link: Link) -> None:
        """The executor socket is gone: streams wait ``executor_grace`` for its return."""
        link.closed = True
        if not self.directory.release(link.executor_id, link):
            return  # replaced by a takeover: nothing changes for the streams
        hub = self.hubs.get(link.executor_id)
        if hub is None or hub.executor is not link:
            return
        hub.executor = None
        deadline = asyncio.get_running_loop().time() + self.config.executor_grace
        hub.absent_queue.clear()
        for route in hub.table.routes():
            route.absent_deadline = deadline
            hub.absent_queue.append((deadline, route))
        self._arm_absent_timer(hub)
        self._maybe_forget(hub)

    def _arm_absent_timer(self, hub: Hub) -> None:
        """Make sure a timer fires at the earliest absent-executor deadline."""
        if hub.absent_handle is not None or not hub.absent_queue:
            return  # an armed timer is never later than a newly appended deadline
        when = hub.absent_queue[0][0]
        hub.absent_handle = asyncio.get_running_loop().call_at(when, self._absent_expired, hub)

    def _absent_expired(self, hub: Hub) -> None:
        hub.absent_handle = None
        if hub.executor is not None:
            return
        now = asyncio.get_running_loop().time() + 1e-3
        queue = hub.absent_queue
        killed: set[str] = set()
        while queue and queue[0][0] <= now:
            deadline, route = queue.popleft()
            if route.absent_deadline != deadline or hub.table.get(route.sid) is not route:
                continue  # stale entry: the stream ended or the executor came and went
            self._kill_stream(hub, route, EXECUTOR_UNAVAILABLE, to_executor=False)
            killed.add(route.sid)
        self._drop_pending_many(hub, killed & hub.pending_sids.keys())
        if not queue and hub.pending:
            # Nothing waits any more; what is left belongs to streams already ended.
            hub.pending.clear()
            hub.pending_bytes = 0
            hub.pending_sids.clear()
        self._arm_absent_timer(hub)
        self._maybe_forget(hub)

    def from_executor(self, link: Link, data: bytes) -> None:
        """Route one binary message from an executor socket (the per-frame path)."""
        hub = link.hub
        if hub is None or hub.executor is not link:
            return
        try:  # inline prelude (size limit, stream id): a call here costs ~5% per frame
            sid = peek_stream_id(data) if len(data) <= self._max_frame else None
        except FrameError as exc:
            return self._undecodable(hub, link, exc)
        if sid is None:
            return self._refuse_oversized(hub, link, data)
        route = hub.table.get(sid)
        if route is None or route.link is None:
            self.metrics.dropped["no_route"] += 1
            return
        kind = body_kind(data)
        if kind == RESET or kind < 0:
            self._forward_checked(hub, link, route, data, self._forward_to_harness)
            return
        # _forward_to_harness, inlined (the per-frame path; route.link is set, checked above).
        route.link.send(data)
        m = self.metrics
        m.frames_to_harness += 1
        m.bytes_to_harness += len(data)

    def _forward_to_harness(self, hub: Hub, route: Route, data: bytes) -> None:
        link = route.link
        if link is not None:
            link.send(data)
            self.metrics.frames_to_harness += 1
            self.metrics.bytes_to_harness += len(data)

    # -- shutdown -----------------------------------------------------------------------
    def close(self) -> None:
        for hub in list(self.hubs.values()):
            if hub.absent_handle is not None:
                hub.absent_handle.cancel()
            for route in hub.table.routes():
                if route.orphan_handle is not None:
                    route.orphan_handle.cancel()
        self.hubs.clear()


def _uncongest(hub: Hub) -> None:
    hub.congested = False
