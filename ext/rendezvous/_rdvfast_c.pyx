# cython: language_level=3, boundscheck=False, wraparound=False
"""The rendezvous listener's per-frame entry, compiled against picows's ``picows.pxd``.

Twin: ``src/execrelay/rendezvous/_rdvfast_py.py`` (same class, same behaviour).  picows calls
``on_ws_frame`` through its C vtable; here the common frame is routed without a Python call:

* a whole (fin) binary frame, no fragment in progress, the socket's link attached, (harness)
  not held and its byte budget not spent;
* whose RelayMessageFrame is laid out canonically (``08 01 12 <len> <stream_id> [18 <ack>]
  [20 <ack_bits>] <body tag> <body len> <body>``, the body running to the end of the frame)
  with a body other than Reset;
* for a stream already bound to a route: from a harness, bound to this very socket, with the
  executor attached; from the executor, with a harness attached.

Such a frame is appended to the other socket's :class:`~execrelay.rendezvous.link.Link`
queue by ``LinkCore.send`` (this module's C version of the pure twin's: same header, same flush
scheduling, the same room / overflow check through ``Link._past_room``) and counted in the
same ``Metrics`` fields.  Anything else (the first frame of a stream, Reset, other layouts,
absent peers, oversize, fragments, text, close, a spent budget, held frames) goes to the
twin's Python code unchanged: ``Router.from_harness`` / ``from_executor`` and the listener's
own methods.  The router's state is read where it lives: the fields the path reads are C
fields of the cores defined here (``LinkCore``, ``HubCore``, ``RouteCore``, ``MetricsCore``;
``Link``, ``Hub``, ``Route`` and ``Metrics`` derive from the selected twin's), so C reads them
without an attribute lookup and nothing is duplicated.

Like ``_picows_c`` this module refuses to import unless the installed picows is the release
it was built against (``setup.py`` compiles it in), so ``_accel.select`` falls back to the
twin.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

import picows as _picows

from execrelay import _accel

from execrelay._wsframe import SMALL_BINARY as _SMALL_BINARY, binary_header as _binary_header
from execrelay.wire import RESET as _RESET_PY, FrameError as _FrameError, peek_stream_id as _peek_stream_id

cdef extern from *:
    """
    #ifndef EXECRELAY_PICOWS_VERSION
    #define EXECRELAY_PICOWS_VERSION ""
    #endif
    """
    const char* EXECRELAY_PICOWS_VERSION

#: the picows release this module was compiled against (``setup.py`` passes it)
BUILT_AGAINST = (<bytes>EXECRELAY_PICOWS_VERSION).decode()
_accel.require_release(_picows, BUILT_AGAINST)

#: True here; False in the pure twin
COMPILED = True

cdef list SMALL = list(_SMALL_BINARY)
#: execrelay.rendezvous.link.Link, looked up on first use (link.py imports this module);
#: None until then, False if Link is not built on this module's LinkCore (then every frame
#: takes the Python path)
cdef object LinkType = None
cdef int RESET = _RESET_PY
cdef object FrameError = _FrameError
cdef object peek_stream_id = _peek_stream_id
cdef object _BINARY_PY = _picows.WSMsgType.BINARY

# stream-id strings by their bytes: a direct-mapped cache (a hit is checked with memcmp; a miss
# asks the codec's peek_stream_id, which validates the id exactly as the Python path does)
DEF SID_SLOTS = 1024
cdef list _sids = [None] * SID_SLOTS


cdef inline Py_ssize_t _skip_varint(const uint8_t* p, Py_ssize_t pos, Py_ssize_t n) noexcept:
    """Position after a varint of at most 5 bytes at ``pos``, or -1."""
    cdef int i
    for i in range(5):
        if pos >= n:
            return -1
        if not (p[pos] & 0x80):
            return pos + 1
        pos += 1
    return -1


cdef inline int _canonical(const uint8_t* p, Py_ssize_t n) noexcept:
    """Body field number (5..10) of a frame in the canonical layout whose body ends the
    frame, else -1 (the caller then takes the Python path, which handles every layout)."""
    cdef Py_ssize_t pos, sid_n, i
    cdef uint64_t blen = 0
    cdef uint8_t t, b
    cdef int f, shift = 0
    if n < 7 or p[0] != 0x08 or p[1] != 0x01 or p[2] != 0x12:
        return -1
    sid_n = p[3]
    if sid_n == 0 or sid_n >= 0x80:
        return -1
    pos = 4 + sid_n
    if pos >= n:
        return -1
    t = p[pos]
    if t == 0x18:
        pos = _skip_varint(p, pos + 1, n)
        if pos < 0 or pos >= n:
            return -1
        t = p[pos]
    if t == 0x20:
        pos = _skip_varint(p, pos + 1, n)
        if pos < 0 or pos >= n:
            return -1
        t = p[pos]
    if (t & 7) != 2:
        return -1
    f = t >> 3
    if f < 5 or f > 10:
        return -1
    pos += 1
    for i in range(4):
        if pos >= n:
            return -1
        b = p[pos]
        pos += 1
        blen |= (<uint64_t>(b & 0x7F)) << shift
        shift += 7
        if not (b & 0x80):
            break
    else:
        return -1
    if blen != <uint64_t>(n - pos):
        return -1
    return f


include "../wire/_sidhash.pxi"


cdef object _stream_id(bytes data):
    """The frame's stream id (a canonical frame: its bytes are at offset 4), None if invalid."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(data) + 4
    cdef Py_ssize_t n = (<const uint8_t*>PyBytes_AS_STRING(data))[3]
    cdef uint32_t slot = sid_hash(p, n) & (SID_SLOTS - 1)
    cdef object cached = _sids[slot]
    cdef const char* cp
    cdef Py_ssize_t cn
    if cached is not None:
        cp = PyUnicode_AsUTF8AndSize(cached, &cn)
        if cn == n and memcmp(cp, p, n) == 0:
            return cached
    try:
        sid = peek_stream_id(data)
    except FrameError:
        return None
    _sids[slot] = sid
    return sid


cdef object _link_type():
    global LinkType
    from execrelay.rendezvous.link import Link
    from execrelay.rendezvous.router import Hub, Route
    LinkType = Link if (issubclass(Link, LinkCore) and issubclass(Hub, HubCore)
                        and issubclass(Route, RouteCore)) else False
    return LinkType


cdef class LinkCore:
    """The fields of :class:`~execrelay.rendezvous.link.Link` the per-frame path reads and
    writes, as C fields (Link's base; the pure twin's has the same names)."""

    cdef public bint closed
    cdef public object hub
    cdef public Py_ssize_t budget
    cdef public list _out
    cdef public Py_ssize_t _out_bytes
    cdef public bint _scheduled
    cdef public Py_ssize_t _room

    def send(self, frame):
        """Queue one relay frame (forwarded unmodified); flushed at the end of this tick."""
        _send_core(self, frame, len(frame))


cdef class HubCore:
    """The fields of :class:`~execrelay.rendezvous.router.Hub` the per-frame path reads (the
    executor's link, the stream table, the single-node table's dict or None), as C fields."""

    cdef public object executor
    cdef public object table
    cdef public dict local_routes


cdef class RouteCore:
    """The field of :class:`~execrelay.rendezvous.router.Route` the per-frame path reads."""

    cdef public object link


cdef inline object _lookup(HubCore hub, object sid):
    """``hub.table.get(sid)``, straight from the dict for a single-node table."""
    cdef dict routes = hub.local_routes
    if routes is not None:
        return routes.get(sid)
    return hub.table.get(sid)


cdef inline object _bound_route(HubCore hub, bytes data, Py_ssize_t n):
    """The route of a canonical, non-Reset frame's stream; None: the Python path decides."""
    cdef int kind = _canonical(<const uint8_t*>PyBytes_AS_STRING(data), n)
    if kind < 0 or kind == RESET:
        return None
    sid = _stream_id(data)
    if sid is None:
        return None
    route = _lookup(hub, sid)
    return route if isinstance(route, RouteCore) else None


cdef class MetricsCore:
    """The per-frame counters of :class:`~execrelay.rendezvous.metrics.Metrics`, as C fields."""

    cdef public unsigned long long frames_to_executor
    cdef public unsigned long long frames_to_harness
    cdef public unsigned long long bytes_to_executor
    cdef public unsigned long long bytes_to_harness


cdef inline int _send_core(LinkCore core, object data, Py_ssize_t n) except -1:
    """``LinkCore.send`` of the pure twin (keep the two alike); ``n`` is ``len(data)``."""
    if core.closed:
        return 0
    core._out.append(SMALL[n] if n < 126 else _binary_header(n))
    core._out.append(data)
    core._out_bytes += n
    if not core._scheduled:
        core._scheduled = True
        (<object>core)._loop.call_soon((<object>core).flush)
    if core._out_bytes > core._room:
        (<object>core)._past_room()
    return 0


cdef inline int _send(object link, bytes data, Py_ssize_t n) except -1:
    """``link.send(data)``, without a call for a plain :class:`Link`."""
    if type(link) is not LinkType:
        link.send(data)          # the cluster's stand-ins for sockets on other nodes
        return 0
    return _send_core(<LinkCore>link, data, n)


cdef class RdvListenerBase(WSListener):
    """The per-frame part of a rendezvous websocket listener (executor or harness socket)."""

    cdef public object link
    cdef public object _frag
    cdef public object _held
    cdef public bint _executor
    cdef public object router
    cdef public object route
    cdef MetricsCore _metrics
    cdef Py_ssize_t _max_frame
    #: Link and Metrics are built on this module's cores: C may route (else: Python path)
    cdef bint _fast

    def __init__(self, router, bint executor):
        self.link = None
        self._frag = None
        self._held = None
        self._executor = executor
        self.router = router
        self.route = router.from_executor if executor else router.from_harness
        metrics = router.metrics
        self._metrics = metrics if isinstance(metrics, MetricsCore) else None
        self._max_frame = router._max_frame
        self._fast = (LinkType if LinkType is not None else _link_type()) is not False \
            and self._metrics is not None

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        link = self.link
        if frame.msg_type == WSMsgType.BINARY and frame.fin and self._frag is None and link is not None:
            self._binary(link, frame.get_payload_as_bytes())
            return
        if link is not None:
            f = <object>frame
            self._other_frame(transport, link, f.msg_type, f)

    def feed(self, transport, frame):
        """:meth:`on_ws_frame` for any frame-like object (``msg_type``, ``fin``,
        ``get_payload_as_bytes``): the twin tests' and benchmarks' entry."""
        link = self.link
        if frame.msg_type is _BINARY_PY and frame.fin and self._frag is None and link is not None:
            self._binary(link, frame.get_payload_as_bytes())
            return
        if link is not None:
            self._other_frame(transport, link, frame.msg_type, frame)

    def message(self, link, bytes data):
        """Route one whole binary message of this socket (a reassembled fragmented one)."""
        self._binary(link, data)

    cdef int _binary(self, object link, bytes data) except -1:
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef LinkCore core
        if not self._fast or type(link) is not LinkType:
            return self._binary_py(link, data)
        core = <LinkCore>link
        if self._executor:
            if not self._from_executor(core, data, n):
                self.route(link, data)
            return 0
        if self._held is not None:
            (<list>self._held).append(data)
            return 0
        core.budget -= n
        if core.budget <= 0 and self._congested(link, data):
            return 0
        if not self._from_harness(core, data, n):
            self.route(link, data)
        return 0

    cdef int _binary_py(self, object link, bytes data) except -1:
        """The pure twin's whole-frame path (Link or Metrics not on this module's cores)."""
        if self._executor:
            self.route(link, data)
            return 0
        if self._held is not None:
            (<list>self._held).append(data)
            return 0
        link.budget -= len(data)
        if link.budget <= 0 and self._congested(link, data):
            return 0
        self.route(link, data)
        return 0

    cdef bint _from_harness(self, LinkCore link, bytes data, Py_ssize_t n) except -1:
        """``Router.from_harness``'s common case; False (nothing done) for the Python path."""
        cdef MetricsCore m
        cdef HubCore hub
        if not isinstance(link.hub, HubCore) or link.closed or n > self._max_frame:
            return False
        hub = <HubCore>link.hub
        route = _bound_route(hub, data, n)
        if route is None or (<RouteCore>route).link is not link:
            return False
        ex = hub.executor
        if ex is None:
            return False
        _send(ex, data, n)
        m = self._metrics
        m.frames_to_executor += 1
        m.bytes_to_executor += n
        return True

    cdef bint _from_executor(self, LinkCore link, bytes data, Py_ssize_t n) except -1:
        """``Router.from_executor``'s common case; False (nothing done) for the Python path."""
        cdef MetricsCore m
        cdef HubCore hub
        if not isinstance(link.hub, HubCore) or n > self._max_frame:
            return False
        hub = <HubCore>link.hub
        if hub.executor is not link:
            return False
        route = _bound_route(hub, data, n)
        if route is None:
            return False
        harness = (<RouteCore>route).link
        if harness is None:
            return False
        _send(harness, data, n)
        m = self._metrics
        m.frames_to_harness += 1
        m.bytes_to_harness += n
        return True
