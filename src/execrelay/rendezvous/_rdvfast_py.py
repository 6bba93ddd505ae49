"""The rendezvous listener's per-frame entry, in Python: the pure twin of ``ext/rendezvous/_rdvfast_c.pyx``.

:class:`RdvListenerBase` is the base of :class:`execrelay.rendezvous.ws_fast._RdvListener`
(which adds the connection, fragment, congestion and drain logic, the same over both twins).
Here a whole binary frame goes to the router's Python per-frame function
(``Router.from_executor`` / ``from_harness``); a harness socket first spends its byte budget
and checks its executor's backlog when it is spent (``_congested``, the subclass's).  The
compiled twin routes the common case itself in C (docs/rendezvous.md §The compiled frame
path) and calls exactly this code for everything else.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .._wsframe import SMALL_BINARY, binary_header

try:
    from picows import WSListener, WSMsgType
    _BINARY: Any = WSMsgType.BINARY
except ImportError:  # pragma: no cover - picows is a dependency
    WSListener = object  # type: ignore[misc,assignment]
    _BINARY = None

if TYPE_CHECKING:
    from .link import Link
    from .router import Router

#: True in the compiled twin (``_rdvfast_c``): whole binary frames of bound streams are routed in C
COMPILED = False


class LinkCore:
    """The fields of :class:`~execrelay.rendezvous.link.Link` the per-frame path reads and
    writes (C fields in the compiled twin, so C reads them without an attribute lookup)."""

    __slots__ = ("closed", "hub", "budget", "_out", "_out_bytes", "_scheduled", "_room")

    closed: bool
    hub: Any
    budget: int
    _out: list[bytes]
    _out_bytes: int
    _scheduled: bool
    _room: int
    _loop: Any

    def send(self, frame: bytes) -> None:
        """Queue one relay frame (forwarded unmodified); flushed at the end of this tick."""
        if self.closed:
            return
        n = len(frame)
        out = self._out
        out.append(SMALL_BINARY[n] if n < 126 else binary_header(n))
        out.append(frame)
        self._out_bytes += n
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)
        if self._out_bytes > self._room:
            self._past_room()

    def flush(self) -> None:  # pragma: no cover - Link's
        raise NotImplementedError

    def _past_room(self) -> None:  # pragma: no cover - Link's
        raise NotImplementedError


class HubCore:
    """The fields of :class:`~execrelay.rendezvous.router.Hub` the per-frame path reads:
    the executor's link, the stream table and, when that is the single-node
    :class:`~execrelay.rendezvous.directory.LocalStreamTable`, its dict (else None)."""

    __slots__ = ("executor", "table", "local_routes")

    executor: Any
    table: Any
    local_routes: dict[str, Any] | None


class RouteCore:
    """The field of :class:`~execrelay.rendezvous.router.Route` the per-frame path reads."""

    __slots__ = ("link",)

    link: Any


class MetricsCore:
    """The per-frame counters of :class:`~execrelay.rendezvous.metrics.Metrics` (C fields in
    the compiled twin)."""

    __slots__ = ("frames_to_executor", "frames_to_harness", "bytes_to_executor", "bytes_to_harness")

    frames_to_executor: int
    frames_to_harness: int
    bytes_to_executor: int
    bytes_to_harness: int


class RdvListenerBase(WSListener):
    """The per-frame part of a rendezvous websocket listener (executor or harness socket)."""

    def __init__(self, router: "Router", executor: bool) -> None:
        #: the socket's router link (None before the upgrade and after a refusal)
        self.link: Link | None = None
        #: fragments of a message in progress (None: none)
        self._frag: list[bytes] | None = None
        #: frames read while the harness waits for its executor to drain (None: not waiting)
        self._held: list[bytes] | None = None
        self._executor = executor
        self.router = router
        self.route: Callable[[Link, bytes], None] = (
            router.from_executor if executor else router.from_harness)

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        # the hot path: one whole binary frame, routed at once (``message`` inlined)
        link = self.link
        if frame.msg_type is _BINARY and frame.fin and self._frag is None and link is not None:
            if self._executor:
                self.route(link, frame.get_payload_as_bytes())
                return
            data = frame.get_payload_as_bytes()
            if self._held is not None:
                self._held.append(data)
                return
            link.budget -= len(data)
            if link.budget <= 0 and self._congested(link, data):
                return
            self.route(link, data)
            return
        if link is not None:
            self._other_frame(transport, link, frame.msg_type, frame)

    def feed(self, transport: Any, frame: Any) -> None:
        """:meth:`on_ws_frame` for any frame-like object (``msg_type``, ``fin``,
        ``get_payload_as_bytes``): the twin tests' and benchmarks' entry (the compiled twin's
        ``on_ws_frame`` takes picows's C frame only)."""
        self.on_ws_frame(transport, frame)

    def message(self, link: "Link", data: bytes) -> None:
        """Route one whole binary message of this socket (a reassembled fragmented one);
        :meth:`on_ws_frame` inlines this (one Python call less per frame)."""
        if self._executor:
            self.route(link, data)
            return
        if self._held is not None:
            self._held.append(data)
            return
        link.budget -= len(data)
        if link.budget <= 0 and self._congested(link, data):
            return
        self.route(link, data)

    # the subclass's (ws_fast._RdvListener)
    def _congested(self, link: "Link", data: bytes) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def _other_frame(self, transport: Any, link: "Link", mt: Any, frame: Any) -> None:  # pragma: no cover
        raise NotImplementedError
