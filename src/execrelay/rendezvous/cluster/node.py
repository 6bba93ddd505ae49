"""One rendezvous node in a cluster: the glue between the router and NATS
(docs/rendezvous.md §Several nodes).

The router is unchanged: it routes to :class:`~.links.RemoteExecutor` and
:class:`~.links.RemoteHarness` objects as it routes to sockets.  This module decides when they
exist:

- **Owner side.**  A local executor socket is claimed: subscribe ``rdv.x.<eid>`` and
  ``rdv.ctl.<eid>``, ``put own.<eid>`` in the ``rdv_owner`` bucket (its revision is the
  fencing epoch), announce ``{op: own, node, r}`` on ``rdv.ctl.<eid>``.  A Resume request on
  ``rdv.x.<eid>`` binds the stream to a RemoteHarness (the harness's credential travels in a
  header and must match the stream's) and is answered ``{ok, r, node}``.  When the socket
  leaves, the key is deleted (compare-and-delete on ``r``) and ``{op: leave}`` announced.
  An announcement with a newer revision closes the local socket ("superseded").
- **Harness side.**  A harness whose executor is not local gets a RemoteExecutor as its hub's
  executor; streams subscribe ``rdv.s.<sid>`` before their first request.  "No responders",
  a timeout, a ``leave``, or the owner's heartbeats stopping retire it: the streams wait the
  executor grace (the router's pending queue) for an ``own`` announcement, then Reset.
- **Liveness.**  Heartbeats every second on ``rdv.node.<id>``; a node silent for 3 periods is
  dead (its executors' streams wait, its harnesses' streams on this owner go orphaned).  A
  process that finds itself stalled (SIGSTOP) stops publishing executor frames until it has
  checked its claims against the KV; one cut off from NATS for ``fence_after`` seconds closes
  its executor sockets so they re-home.
"""
from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any, Coroutine

import nats.errors
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError

from ...wire import FrameError, peek_stream_id
from ..router import EXECUTOR_UNAVAILABLE, QUEUE_FULL, STREAM_IN_USE, Hub
from ..server import RendezvousServer
from . import subjects
from .bus import Bus, Subscriptions
from .config import ClusterConfig, ClusterError
from .inbox import Inboxes
from .links import RemoteExecutor, RemoteHarness
from .liveness import Liveness
from .metrics import ClusterMetrics
from .registrations import SharedRegistrations
from .state import ClusterDirectory, ClusterStreamTable

log = logging.getLogger("execrelay.rendezvous.cluster")

#: the answer of a node that no longer holds the executor a request named
NOT_OWNER = "not_owner"


class Claim:
    """This node's ownership of one executor id: its socket and the KV revision (0: pending)."""

    __slots__ = ("link", "registration", "revision", "superseded", "writing")

    def __init__(self, link: Any, registration: str = "") -> None:
        self.link = link
        self.registration = registration
        self.revision = 0
        self.superseded = False
        self.writing = False


class ClusterNode:
    """Joins ``server`` (not started yet, or without sockets) to a cluster; see the module
    docstring.  ``await start()`` connects, ``await close()`` leaves."""

    def __init__(self, server: RendezvousServer, servers: list[str], node_id: str,
                 config: ClusterConfig | None = None) -> None:
        self.config = cfg = config or ClusterConfig(servers, node_id)
        self.node_id = cfg.node_id
        self.server = server
        self.router = router = server.router
        self.bus = Bus(cfg)
        self.metrics = ClusterMetrics(server.metrics)
        self.liveness = Liveness(cfg.node_id, cfg.heartbeat, cfg.heartbeat_misses)
        self.inboxes = Inboxes(server.metrics, cfg.queue_frames, self._kill_queued_legacy)
        #: headers of a request or Reset this node sends on ``rdv.x.<eid>``
        self.origin_headers = {subjects.NODE: cfg.node_id}
        self.claims: dict[str, Claim] = {}
        #: executor id -> highest ownership revision seen (claims, announcements)
        self.known: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.executor_subs = Subscriptions(self.bus, self.spawn)
        self.control_subs = Subscriptions(self.bus, self.spawn)
        self.stream_subs = Subscriptions(self.bus, self.spawn)
        #: stream id -> executor id, for streams this node subscribed to (harness side)
        self.stream_owner: dict[str, str] = {}
        self._sid_by_subject: dict[str, str] = {}
        #: owner side: harness node -> its RemoteHarness links; executor id -> their stream ids
        self.by_origin: dict[str, set[RemoteHarness]] = {}
        self.remote_sids: dict[str, set[str]] = {}
        self.suspect = False
        self._verifying = False
        self._fenced = False
        self.closing = False
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: registrations valid on every node (the ``rdv_reg`` bucket)
        self.registrations = SharedRegistrations(self.bus, server._secret)  # noqa: SLF001
        server.noise.shared = self.registrations
        self.directory = ClusterDirectory(router.directory, self,  # type: ignore[arg-type]
                                          self.registrations)
        router.use_state(self.directory,
                         partial(ClusterStreamTable, self._stream_unbound))  # type: ignore[arg-type]
        server.cluster = self
        server.metrics.add_section(lambda out: self.metrics.render(out, self.bus.events))
        gauges = self.metrics.gauges
        gauges["nodes_alive"] = self.liveness.alive
        gauges["connected"] = lambda: int(self.bus.connected)
        gauges["executors_owned"] = lambda: sum(1 for c in self.claims.values() if c.revision)
        gauges["remote_executors"] = lambda: sum(
            1 for h in self.router.hubs.values() if isinstance(h.executor, RemoteExecutor))
        gauges["stream_subscriptions"] = lambda: len(self.stream_subs)
        gauges["queued_frames"] = self.inboxes.pending

    # -- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.bus.connect()
        try:
            await self.registrations.open()
        except ClusterError:
            await self.bus.close()
            raise
        self.bus.on_reconnected = self._after_reconnect
        self.bus.on_slow_consumer = self._slow_consumer
        try:
            await self.bus.subscribe(subjects.NODE_WILDCARD, self._on_heartbeat)
        except Exception as exc:  # noqa: BLE001
            await self.bus.close()
            raise ClusterError(f"cannot subscribe on NATS: {exc}") from None
        self.liveness.last_tick = self._loop.time()
        self.bus.publish(subjects.node_subject(self.node_id), b"")
        self._ticker = asyncio.ensure_future(self._tick_loop())

    def describe(self) -> str:
        """The start-up line: node id and cluster state."""
        return (f"node {self.node_id}: cluster via NATS {self.bus.server} "
                f"(servers {','.join(self.config.servers)}), ownership bucket "
                f"{self.config.bucket}, nodes alive {self.liveness.alive()}")

    async def close(self) -> None:
        """Leave: release owned executors in the KV (their harness nodes start the grace at
        once instead of after missed heartbeats), then disconnect."""
        self.closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        kv = self.bus.kv
        for eid, claim in list(self.claims.items()):
            if claim.revision and kv is not None and self.bus.connected:
                try:
                    await asyncio.wait_for(kv.delete(subjects.owner_key(eid), last=claim.revision), 1.0)
                    self._announce(eid, "leave", claim.revision)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
        for task in list(self._tasks):
            task.cancel()
        await self.bus.close()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self.closing:
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("cluster task failed: %r", task.exception())

    # -- liveness -----------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        assert self._loop is not None
        interval = self.config.heartbeat
        while True:
            await asyncio.sleep(interval)
            try:
                self._tick(self._loop.time())
            except Exception:  # noqa: BLE001 - the ticker must survive anything
                log.exception("cluster tick failed")

    def _tick(self, now: float) -> None:
        self.bus.publish(subjects.node_subject(self.node_id), b"")
        dead, stalled = self.liveness.tick(now)
        if stalled:
            self.enter_suspect()
        for node_id in dead:
            self._node_dead(node_id)
        if self.suspect and not self._verifying:
            self.spawn(self._verify_claims())
        self._check_fence()
        for eid, claim in list(self.claims.items()):
            if not claim.revision and not claim.writing and self.bus.connected:
                self.spawn(self._claim(eid, claim))

    async def _on_heartbeat(self, msg: Msg) -> None:
        node_id = msg.subject[len("rdv.node."):]
        assert self._loop is not None
        if self.liveness.seen(node_id, self._loop.time()):
            log.warning("node %s is back", node_id)
            self._reprobe()

    def stale(self) -> bool:
        """True while this node may hold ownership it lost during a stall: executor frames
        are not published until :meth:`_verify_claims` has checked the KV."""
        if self.suspect:
            return True
        assert self._loop is not None
        if self.liveness.stalled(self._loop.time()):
            self.enter_suspect()
            return True
        return False

    def enter_suspect(self) -> None:
        if not self.suspect:
            log.warning("node %s stalled: checking its executor claims", self.node_id)
            self.suspect = True
            if not self._verifying:
                self.spawn(self._verify_claims())

    async def _verify_claims(self) -> None:
        self._verifying = True
        try:
            kv = self.bus.kv
            assert kv is not None
            for eid, claim in list(self.claims.items()):
                if not claim.revision:
                    continue
                try:
                    entry = await kv.get(subjects.owner_key(eid))
                except KeyNotFoundError:
                    continue  # nobody else claimed it: ours still (re-put by the next claim)
                holder = subjects.loads(entry.value or b"").get("node")
                revision = entry.revision or 0
                if revision > claim.revision and holder != self.node_id:
                    self._note_revision(eid, revision)
                    self._supersede(eid)
            self.suspect = False
        except Exception as exc:  # noqa: BLE001 - NATS away: stay suspect, the ticker retries
            log.info("claim check failed: %s", exc)
        finally:
            self._verifying = False

    def _check_fence(self) -> None:
        since = self.bus.disconnected_since
        if not since:
            self._fenced = False
            return
        if self._fenced or time.monotonic() - since < self.config.fence_after:
            return
        self._fenced = True
        if self.claims:
            log.warning("no NATS for %.0f s: closing %d executor socket(s) so they re-home",
                        self.config.fence_after, len(self.claims))
        for claim in list(self.claims.values()):
            self.metrics.ownership["fenced"] += 1
            self.spawn(claim.link.close("fenced"))

    def _node_dead(self, node_id: str) -> None:
        log.warning("node %s missed %d heartbeats: taken for dead", node_id,
                    self.config.heartbeat_misses)
        for hub in list(self.router.hubs.values()):
            ex = hub.executor
            if isinstance(ex, RemoteExecutor) and ex.owner_node == node_id:
                self._remote_lost(ex, "node_dead")
        for rh in list(self.by_origin.pop(node_id, ())):
            if not rh.closed:
                self.router.harness_detached(rh)  # its reliable streams wait the harness grace

    def _after_reconnect(self) -> None:
        # Announcements may have been missed meanwhile: check the claims (without holding
        # frames back, unlike after a stall: a short outage moved no executor by itself).
        self._fenced = False
        self.registrations.forget_noise()
        if not self._verifying:
            self.spawn(self._verify_claims())
        self._reprobe()

    def _reprobe(self) -> None:
        """Executors absent here may be reachable again: try the owner for each hub waiting."""
        for eid, hub in list(self.router.hubs.items()):
            if hub.executor is None and (hub.harnesses or len(hub.table)):
                self._install_remote(eid, hub)

    def node_alive(self, node_id: str) -> bool:
        """Another node whose heartbeats arrive."""
        live = self.liveness
        return node_id != self.node_id and node_id in live.last_seen and node_id not in live.dead

    async def executor_admission(self, executor_id: str, url_token_fp: str) -> None:
        """The server asks before checking an executor socket (ClusterDirectory.admit)."""
        await self.directory.admit(executor_id, url_token_fp)

    # -- owner side ---------------------------------------------------------------------
    def executor_claimed(self, link: Any, registration: str = "") -> None:
        """A local executor socket was accepted (ClusterDirectory.claim): retire the remote
        stand-in its hub may have (frames it held go to the pending queue, which the router
        hands to the new socket), then write the claim."""
        eid = link.executor_id
        hub = self.router.hubs.get(eid)
        if hub is not None and isinstance(hub.executor, RemoteExecutor):
            self._retire(hub.executor, hub, "local_owner")
        claim = self.claims[eid] = Claim(link, registration)
        self.metrics.ownership["claimed"] += 1
        self.spawn(self._claim(eid, claim))

    async def _claim(self, eid: str, claim: Claim) -> None:
        kv = self.bus.kv
        if kv is None or claim.writing:
            return
        claim.writing = True
        try:
            await self.executor_subs.ensure(eid, subjects.executor_subject(eid),
                                            partial(self._on_executor_msg, eid))
            await self._watch(eid)
            value = subjects.dumps(node=self.node_id, conn=id(claim.link), reg=claim.registration)
            revision = await kv.put(subjects.owner_key(eid), value)
        except Exception as exc:  # noqa: BLE001 - NATS away: the ticker retries
            log.info("claim of %r not written yet: %s", eid, exc)
            return
        finally:
            claim.writing = False
        if self.claims.get(eid) is not claim:
            # released while the put was in flight: take the entry back
            await self._release(eid, revision)
            return
        claim.revision = revision
        if self.known.get(eid, 0) > revision:
            self._supersede(eid)  # a newer claim was announced meanwhile
            return
        self._note_revision(eid, revision)
        self._announce(eid, "own", revision)

    def _announce(self, eid: str, op: str, revision: int) -> None:
        self.bus.publish(subjects.control_subject(eid),
                         subjects.dumps(op=op, node=self.node_id, r=revision))

    def _note_revision(self, eid: str, revision: int) -> None:
        if revision > self.known.get(eid, 0):
            self.known[eid] = revision

    def executor_released(self, link: Any) -> None:
        """The local directory let go of this socket (ClusterDirectory.release)."""
        eid = link.executor_id
        claim = self.claims.get(eid)
        if claim is None or claim.link is not link:
            return
        del self.claims[eid]
        self.executor_subs.drop(eid)
        self._drop_remote_routes(eid)
        if self._loop is not None:
            self._loop.call_soon(self._maybe_unwatch, eid)
        if claim.superseded:
            return
        self.metrics.ownership["released"] += 1
        if claim.revision:
            self.spawn(self._release(eid, claim.revision))

    async def _release(self, eid: str, revision: int) -> None:
        kv = self.bus.kv
        if kv is None:
            return
        try:
            await kv.delete(subjects.owner_key(eid), last=revision)
        except Exception:  # noqa: BLE001 - a newer owner wrote the key, or NATS is away
            return
        self._announce(eid, "leave", revision)

    def _supersede(self, eid: str) -> None:
        """A newer claim exists elsewhere: close the local socket, route to the new owner."""
        claim = self.claims.get(eid)
        if claim is None:
            return
        claim.superseded = True
        self.metrics.ownership["superseded"] += 1
        link = claim.link
        log.warning("executor %r superseded by a newer claim: closing its socket here", eid)
        self.router.executor_detached(link)
        self.spawn(link.close("superseded"))
        hub = self.router.hubs.get(eid)
        if hub is not None and (hub.harnesses or len(hub.table)):
            self._install_remote(eid, hub)

    def _drop_remote_routes(self, eid: str) -> None:
        """Forget, without Resets, the streams of harnesses on other nodes: their nodes
        decide (executor grace there), a new owner binds them again on their next Resume."""
        sids = self.remote_sids.pop(eid, None)
        hub = self.router.hubs.get(eid)
        if not sids or hub is None:
            return
        for sid in sids:
            route = hub.table.get(sid)
            if route is not None and (route.link is None or route.link.remote):
                self.router._unbind(hub, route)  # noqa: SLF001 - quiet unbind, no Reset

    async def _on_executor_msg(self, eid: str, msg: Msg) -> None:
        """A frame or a Resume request for a local executor, from a harness's node."""
        self.metrics.cross_in += 1
        hub = self.router.hubs.get(eid)
        ex = hub.executor if hub is not None else None
        claim = self.claims.get(eid)
        if hub is None or ex is None or ex.remote or claim is None:
            if msg.reply:
                self.bus.reply(msg, subjects.dumps(ok=False, reason=NOT_OWNER))
            return
        data = msg.data
        try:
            sid = peek_stream_id(data)
        except FrameError:
            self.router.metrics.bad_frames["undecodable"] += 1
            if msg.reply:
                self.bus.reply(msg, subjects.dumps(ok=False, reason="undecodable"))
            return
        route = hub.table.get(sid)
        headers = msg.headers
        if msg.reply:
            self._open_stream_here(hub, ex, claim, sid, route, headers or {}, msg)
            return
        rh = route.link if route is not None else None
        if not isinstance(rh, RemoteHarness):
            self.router.metrics.dropped["no_route"] += 1
            return
        if headers and headers.get(subjects.NODE, rh.origin) != rh.origin:
            return  # a late Reset from the node the harness left: the stream lives on elsewhere
        self.inboxes.deliver(ex, route, self.router.from_harness, rh, data)

    def _open_stream_here(self, hub: Hub, ex: Any, claim: Claim, sid: str, route: Any,
                          headers: dict[str, str], msg: Msg) -> None:
        cred = headers.get(subjects.CRED, "")
        origin = headers.get(subjects.NODE, "")
        if route is not None and route.owner != cred:
            self.router.metrics.dropped["stream_in_use"] += 1
            self.bus.reply(msg, subjects.dumps(ok=False, reason=STREAM_IN_USE))
            return
        rh = route.link if route is not None else None
        if isinstance(rh, RemoteHarness) and not rh.closed:
            self._move(rh, origin)
        else:
            rh = RemoteHarness(self, hub.executor_id, sid, origin, cred)
            self.router.harness_attached(rh)
            self.by_origin.setdefault(origin, set()).add(rh)
            self.remote_sids.setdefault(hub.executor_id, set()).add(sid)
            if route is not None and route.link is None and route.reliable:
                # Orphaned here when its node was taken for dead; the credential matched, and
                # for the harness nothing happened, so its next frame is Data, not a Resume.
                self.router.rebind(route, rh)
        self.router.from_harness(rh, msg.data)
        bound = hub.table.get(sid)
        if bound is not None and bound.link is rh:
            self.bus.reply(msg, subjects.dumps(ok=True, r=claim.revision, node=self.node_id))
        else:
            self.bus.reply(msg, subjects.dumps(ok=False, reason=STREAM_IN_USE))
            assert self._loop is not None
            self._loop.call_soon(self._forget_remote_harness, rh)

    def _move(self, rh: RemoteHarness, origin: str) -> None:
        if rh.origin != origin:
            self.by_origin.get(rh.origin, set()).discard(rh)
            rh.origin = origin
            self.by_origin.setdefault(origin, set()).add(rh)

    def _forget_remote_harness(self, rh: RemoteHarness) -> None:
        """A RemoteHarness whose stream ended: out of its hub and the node's books."""
        if rh.streams:
            return
        rh.abort("stream ended")
        hub = rh.hub
        if hub is not None:
            hub.harnesses.pop(rh, None)
        self.by_origin.get(rh.origin, set()).discard(rh)

    # -- harness side -------------------------------------------------------------------
    def harness_attached(self, link: Any) -> None:
        """A local harness socket: if its executor is not here, find it through NATS."""
        self.spawn(self._watch_and_probe(link.executor_id))

    def harness_detached(self, link: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon(self._release_idle, link.executor_id)

    async def _watch(self, eid: str) -> None:
        await self.control_subs.ensure(eid, subjects.control_subject(eid),
                                       partial(self._on_control, eid))

    async def _watch_and_probe(self, eid: str) -> None:
        try:
            await self._watch(eid)
        except Exception as exc:  # noqa: BLE001 - NATS away: the probe below fails into the
            log.info("cannot watch %r yet: %s", eid, exc)  # grace; a reconnect probes again
        hub = self.router.hubs.get(eid)
        if hub is not None and hub.executor is None and (hub.harnesses or len(hub.table)):
            self._install_remote(eid, hub)

    def _install_remote(self, eid: str, hub: Hub, owner: str = "", revision: int = 0) -> None:
        """Route this hub's harness frames to the executor's owner, wherever it is."""
        old = hub.executor
        if isinstance(old, RemoteExecutor):
            if owner and old.owner_node == owner and old.revision >= revision:
                return
            self._retire(old, hub, "moved")
            hub = self.router.hubs.get(eid)  # type: ignore[assignment]
            if hub is None or not (hub.harnesses or len(hub.table)):
                return
        elif old is not None:
            return  # a local socket: affinity, nothing crosses NATS
        rx = RemoteExecutor(self, eid)
        rx.owner_node, rx.revision = owner, revision
        self.router.executor_attached(rx, "")

    def _retire(self, rx: RemoteExecutor, hub: Hub, reason: str) -> None:
        """Stop using ``rx``: its streams wait for the executor (the router's pending queue
        and grace); frames held for unanswered requests go to that queue, legacy streams
        that sent frames through it are Reset (frames may have been lost in transit)."""
        rx.reason = reason
        rx.abort(reason)
        waiting, rx.waiting = rx.waiting, {}
        self.router.executor_detached(rx)
        for sid, frames in waiting.items():
            route = hub.table.get(sid)
            if route is not None:
                for frame in frames:
                    self.router._queue_pending(hub, route, frame)  # noqa: SLF001
        for sid in rx.confirmed:
            route = hub.table.get(sid)
            if route is not None and not route.reliable:
                self.router._kill_stream(hub, route, EXECUTOR_UNAVAILABLE,  # noqa: SLF001
                                         to_executor=False)

    def _remote_lost(self, rx: RemoteExecutor, reason: str) -> None:
        hub = rx.hub
        if hub is None or hub.executor is not rx:
            return
        log.info("executor %r unreachable through NATS (%s): streams wait the executor grace",
                 rx.executor_id, reason)
        self.metrics.ownership[f"lost_{reason}"] += 1
        self._retire(rx, hub, reason)

    async def open_remote_stream(self, rx: RemoteExecutor, sid: str, route: Any) -> None:
        """Bind stream ``sid`` at the owner: subscribe ``rdv.s.<sid>``, then send its first
        frame as a request; later frames wait for the answer (RemoteExecutor.send)."""
        hub = rx.hub
        harness = route.link
        try:
            await self.stream_subs.ensure(sid, subjects.stream_subject(sid),
                                          partial(self._on_stream_msg, sid))
            self.stream_owner[sid] = rx.executor_id
            self._sid_by_subject[subjects.stream_subject(sid)] = sid
            frames = rx.waiting.get(sid)
            if not frames or rx.closed:
                return
            headers = {subjects.CRED: route.owner, subjects.NODE: self.node_id}
            reply = await self.bus.request(rx.subject, frames[0], headers,
                                           self.config.request_timeout)
        except nats.errors.NoRespondersError:
            self._remote_lost(rx, "no_responders")
            return
        except Exception as exc:  # noqa: BLE001 - timeout, connection lost
            log.info("request for stream %r failed: %r", sid, exc)
            self._remote_lost(rx, "timeout")
            return
        if rx.closed:
            return
        answer = subjects.loads(reply.data)
        if answer.get("ok") is True:
            held = rx.waiting.pop(sid, [])
            owner, revision = answer.get("node"), answer.get("r")
            if isinstance(owner, str):
                rx.owner_node = owner
            if isinstance(revision, int):
                rx.revision = max(rx.revision, revision)
            rx.confirmed[sid] = harness
            for frame in held[1:]:
                rx.send(frame)
            for frame in rx.early.pop(sid, ()):
                self.router.from_executor(rx, frame)
            return
        if answer.get("reason") == NOT_OWNER:
            self._remote_lost(rx, "not_owner")
            return
        rx.waiting.pop(sid, None)
        rx.early.pop(sid, None)
        current = hub.table.get(sid) if hub is not None else None
        if current is not None:
            self.router._kill_stream(hub, current, str(answer.get("reason") or STREAM_IN_USE),  # noqa: SLF001
                                     to_executor=False)

    async def _on_stream_msg(self, sid: str, msg: Msg) -> None:
        """A frame from the executor's owner for a stream whose harness is here."""
        self.metrics.cross_in += 1
        eid = self.stream_owner.get(sid)
        hub = self.router.hubs.get(eid) if eid is not None else None
        route = hub.table.get(sid) if hub is not None else None
        rx = hub.executor if hub is not None else None
        if route is None or route.link is None or not isinstance(rx, RemoteExecutor):
            self.router.metrics.dropped["no_route"] += 1
            if route is None or route.link is None:
                self._drop_stream_sub(sid)
            return
        if rx.confirmed.get(sid) is not route.link:
            # The owner has not answered for this harness socket yet: hold (bounded), so only a
            # harness the owner accepted ever sees the stream's frames.
            if sid not in rx.waiting:
                self.router.metrics.dropped["unconfirmed"] += 1
                return
            early = rx.early.setdefault(sid, [])
            if len(early) >= self.config.queue_frames:
                self.router.metrics.queue_drops["cross_node_early"] += 1
                if not route.reliable:
                    self._kill_queued_legacy(route.link, route)
                return
            early.append(msg.data)
            return
        self.inboxes.deliver(route.link, route, self.router.from_executor, rx, msg.data)

    def _drop_stream_sub(self, sid: str) -> None:
        self.stream_subs.drop(sid)
        self.stream_owner.pop(sid, None)
        self._sid_by_subject.pop(subjects.stream_subject(sid), None)

    async def _on_control(self, eid: str, msg: Msg) -> None:
        """``{op: own|leave, node, r}`` about ``eid`` from another node."""
        body = subjects.loads(msg.data)
        op, node_id, revision = body.get("op"), body.get("node"), body.get("r")
        if node_id == self.node_id or not isinstance(node_id, str) or not isinstance(revision, int):
            return
        if revision < self.known.get(eid, 0):
            return  # older than what we know: a stale announcement
        self.known[eid] = revision
        hub = self.router.hubs.get(eid)
        if op == "own":
            self.metrics.ownership["remote_claim"] += 1
            claim = self.claims.get(eid)
            if claim is not None:
                if not claim.revision or claim.revision > revision:
                    return  # ours is pending (compared when written) or newer
                self._supersede(eid)
                return
            if hub is not None and (hub.harnesses or len(hub.table)):
                self._install_remote(eid, hub, node_id, revision)
        elif op == "leave" and hub is not None and isinstance(hub.executor, RemoteExecutor):
            self._remote_lost(hub.executor, "left")

    # -- housekeeping -------------------------------------------------------------------
    def _stream_unbound(self, sid: str, route: Any) -> None:
        """ClusterStreamTable.unbind: a stream ended here (either side)."""
        eid = self.stream_owner.get(sid)
        if sid in self.stream_subs:
            self._drop_stream_sub(sid)
        link = route.link
        if self._loop is None:
            return
        if isinstance(link, RemoteHarness):
            sids = self.remote_sids.get(link.executor_id)
            if sids is not None:
                sids.discard(sid)
            # later: the router may still send this link the stream's Reset
            self._loop.call_soon(self._forget_remote_harness, link)
        elif eid is not None:
            self._loop.call_soon(self._release_idle, eid)

    def _release_idle(self, eid: str) -> None:
        """No local harness or stream of ``eid`` is left: drop the RemoteExecutor and watch."""
        hub = self.router.hubs.get(eid)
        if hub is not None and isinstance(hub.executor, RemoteExecutor) and not hub.harnesses \
                and not len(hub.table) and not hub.pending:
            self._retire(hub.executor, hub, "idle")
        self._maybe_unwatch(eid)

    def _maybe_unwatch(self, eid: str) -> None:
        if eid not in self.claims and eid not in self.router.hubs:
            self.control_subs.drop(eid)
            self.known.pop(eid, None)

    def _kill_queued_legacy(self, target: Any, route: Any) -> None:
        hub = target.hub
        if hub is not None and hub.table.get(route.sid) is route:
            self.router._kill_stream(hub, route, QUEUE_FULL)  # noqa: SLF001

    def _slow_consumer(self, subject: str) -> None:
        """The NATS client dropped a message of ``subject``: legacy streams cannot recover."""
        sid = self._sid_by_subject.get(subject)
        eid = self.stream_owner.get(sid) if sid is not None else None
        hub = self.router.hubs.get(eid) if eid is not None else None
        route = hub.table.get(sid) if hub is not None and sid is not None else None
        if route is not None and not route.reliable and route.link is not None:
            self._kill_queued_legacy(route.link, route)
