"""The two ends a node reaches over NATS, shaped as :class:`~execrelay.rendezvous.link.Link`
so the router routes them like sockets (docs/rendezvous.md §Several nodes):

- :class:`RemoteExecutor`, on a harness's node: ``hub.executor`` when the executor is owned
  by another node.  The first frame of each (stream, harness socket) pair goes as a request on
  ``rdv.x.<executor id>`` carrying the harness's credential; the owner answers ``{ok, r}``.
  Later frames of that stream wait for the answer, then go as plain publishes in order.
- :class:`RemoteHarness`, on the owner: ``route.link`` of a stream whose harness is on another
  node; what the router sends it is published on ``rdv.s.<stream id>``.

Frame bytes are never changed.  Both are cheap objects: no socket, no buffer beyond the
frames of a stream whose request is in flight.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...wire import RESET, peek_stream_id
from ...wire.peek import body_kind
from ..link import Link
from . import subjects

if TYPE_CHECKING:
    from .node import ClusterNode

_UNBOUNDED = 1 << 62


class _NatsLink(Link):
    """What both remote ends share: no socket, so nothing is queued, flushed or closed."""

    remote = True
    __slots__ = ()

    def queued_bytes(self) -> int:
        return 0

    def flush(self) -> None:
        pass

    def abort(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._set_closed()

    async def close(self, reason: str, code: int = 1000) -> None:
        self.abort(reason)


class RemoteExecutor(_NatsLink):
    """An executor owned by another node, as seen from a harness's node."""

    __slots__ = ("node", "subject", "confirmed", "waiting", "early", "owner_node", "revision",
                 "reason")

    def __init__(self, node: "ClusterNode", executor_id: str) -> None:
        super().__init__("executor", executor_id, None, None, _UNBOUNDED, label="nats")
        self.node = node
        self.subject = subjects.executor_subject(executor_id)
        #: stream id -> the harness socket its request was answered for
        self.confirmed: dict[str, Any] = {}
        #: stream id -> frames held while that stream's request is in flight (first: the request)
        self.waiting: dict[str, list[bytes]] = {}
        #: stream id -> executor frames that arrived before the owner's answer (delivered on
        #: ``ok``, dropped otherwise: a refused harness never sees the stream's frames)
        self.early: dict[str, list[bytes]] = {}
        #: who answered last, and with which ownership revision
        self.owner_node = ""
        self.revision = 0
        #: why this link was retired ("" while in use)
        self.reason = ""

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        node = self.node
        sid = peek_stream_id(frame)  # the router peeked it already: cannot fail
        held = self.waiting.get(sid)
        if held is not None:
            held.append(frame)
            return
        route = self.hub.table.get(sid) if self.hub is not None else None
        harness = route.link if route is not None else None
        if harness is None:
            # The stream ended here (the router unbinds before it Resets the executor): only
            # a Reset goes, and only to an owner that knows the stream.
            if self.confirmed.pop(sid, None) is not None:
                node.bus.publish(self.subject, frame, node.origin_headers)
                node.metrics.cross_out += 1
            return
        if self.confirmed.get(sid) is harness:
            if body_kind(frame) == RESET:
                node.bus.publish(self.subject, frame, node.origin_headers)
            else:
                node.bus.publish(self.subject, frame)
            node.metrics.cross_out += 1
            return
        self.waiting[sid] = [frame]
        node.spawn(node.open_remote_stream(self, sid, route))

    def __repr__(self) -> str:
        return f"<RemoteExecutor {self.executor_id!r} owner={self.owner_node or '?'} r={self.revision}>"


class RemoteHarness(_NatsLink):
    """A harness socket on another node, for one stream, as seen from the executor's owner."""

    __slots__ = ("node", "subject", "sid", "origin")

    def __init__(self, node: "ClusterNode", executor_id: str, sid: str, origin: str,
                 credential: str) -> None:
        super().__init__("harness", executor_id, None, None, _UNBOUNDED, label=f"nats:{origin}")
        self.node = node
        self.sid = sid
        self.subject = subjects.stream_subject(sid)
        #: the node holding the harness socket now (a Resume from another node moves it)
        self.origin = origin
        self.credential = credential

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        node = self.node
        if node.stale():
            node.metrics.queue_drops["cross_node_fenced"] += 1
            return
        node.bus.publish(self.subject, frame)
        node.metrics.cross_out += 1

    def __repr__(self) -> str:
        return f"<RemoteHarness {self.executor_id!r} {self.sid!r} on {self.origin}>"
