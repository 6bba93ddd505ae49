"""The rendezvous's websocket paths on picows, beside aiohttp on the same port.

aiohttp builds a message object and resolves a future for every websocket message it
receives; at small frames that was half of the rendezvous's CPU (docs/benchmarks.md
§Rendezvous routing).  Here one listening socket accepts every connection; the first request
line decides who serves it (docs/rendezvous.md §URLs and endpoints, which stay as they are):

* ``GET /executor/{id}`` and ``GET /harness``: a picows server protocol.  Its listener
  checks the token before the upgrade (the same :meth:`RendezvousServer.admit_executor` /
  ``admit_harness`` as the aiohttp handlers, same status codes and JSON bodies) and hands each
  whole binary frame's payload to the router from picows's callback: no message object, no
  future, no task switch per frame.
* everything else (the registry, ``/readyz``, ``/metrics``, the Noise registry): aiohttp's
  request handler, unchanged.

The bounded queues, the harness backpressure, the frame and message caps, the heartbeat,
TLS and the connection guard behave as on the aiohttp path (see :class:`_RdvListener`).
Used when picows is the websocket transport (not ``EXECRELAY_PURE``) and its server protocol
takes the arguments below; otherwise the server stays on aiohttp alone.
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl, unquote

from . import _rdvfast_py
from .link import Link, rdvfast

if TYPE_CHECKING:
    from .server import RendezvousServer

log = logging.getLogger("execrelay.rendezvous")

try:
    from picows import WSCloseCode, WSMsgType, WSUpgradeResponse, WSUpgradeResponseWithListener
    from picows.picows import WSAutoPingStrategy, WSProtocol  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - picows is a dependency; the pure build never gets here
    WSProtocol = None

#: the per-frame entry: compiled against the installed picows (``ext/rendezvous/_rdvfast_c.pyx``)
#: or the Python twin (``_rdvfast_py.py``), same behaviour; chosen where Link is (its fields)
_impl = rdvfast
if TYPE_CHECKING:  # pragma: no cover
    from ._rdvfast_py import RdvListenerBase as _Base
else:
    _Base = _impl.RdvListenerBase
#: the request line must arrive within this many bytes, or aiohttp answers it (400/414)
_LINE_MAX = 8192
_CHECK_EVERY = 1 << 20


def available() -> bool:
    """True when picows's server protocol takes the arguments :func:`_protocol` passes."""
    if WSProtocol is None:
        return False
    try:
        _protocol(lambda request: None, 1024, None, logging.getLogger("execrelay.rendezvous.ws"))
    except (TypeError, RuntimeError) as exc:  # another picows release: stay on aiohttp
        log.debug("picows server protocol unusable (%s): websockets stay on aiohttp", exc)
        return False
    return True


def _protocol(factory: Callable[[Any], Any], max_frame: int, heartbeat: float | None,
              logger: Any) -> Any:
    ping = bool(heartbeat)
    return WSProtocol(host_port=None, ws_path=None, is_client_side=False,
                      ws_listener_factory=factory, logger=logger,
                      disconnect_on_exception=True, websocket_handshake_timeout=None,
                      enable_auto_ping=ping, auto_ping_idle_timeout=heartbeat or 20.0,
                      # aiohttp's rule: the pong is late after half the heartbeat
                      auto_ping_reply_timeout=(heartbeat or 40.0) / 2,
                      auto_ping_strategy=WSAutoPingStrategy.PING_WHEN_IDLE,
                      enable_auto_pong=True, max_frame_size=max_frame, extra_headers=None,
                      read_buffer_init_size=256 * 1024)


class _ParserLog:
    """picows's logger for one connection: reports a frame over the cap to the router.

    picows closes a connection with 1009 when a frame's header announces more than
    ``max_frame_size`` bytes (before buffering it) and says so only in its log; this turns
    that line into ``bad_frames_total{reason="too_large"}``, as aiohttp's 1009 error does.
    """

    __slots__ = ("on_too_large",)

    def __init__(self) -> None:
        self.on_too_large: Callable[[str], None] | None = None

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging.Logger's name
        return log.isEnabledFor(level)

    def error(self, msg: str, *args: Any, **kw: Any) -> None:
        first = args[0] if args else None
        if (isinstance(first, tuple) and first and first[0] == WSCloseCode.MESSAGE_TOO_BIG
                and self.on_too_large is not None):
            self.on_too_large(str(first[1]) if len(first) > 1 else "message too big")
            return
        log.debug(msg, *args, **kw)

    def log(self, level: int, msg: str, *args: Any, **kw: Any) -> None:
        log.log(level, msg, *args, **kw)

    def debug(self, msg: str, *args: Any, **kw: Any) -> None:
        log.debug(msg, *args, **kw)

    info = debug

    def warning(self, msg: str, *args: Any, **kw: Any) -> None:
        log.warning(msg, *args, **kw)

    def exception(self, msg: str, *args: Any, **kw: Any) -> None:
        log.error(msg, *args, exc_info=True, **kw)


class _Closer:
    """``Link.ws`` for a picows socket: what :meth:`Link.close` awaits."""

    __slots__ = ("_t",)

    def __init__(self, transport: Any) -> None:
        self._t = transport

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        try:
            close_code = WSCloseCode(code)
        except ValueError:
            close_code = WSCloseCode.OK
        self._t.send_close(close_code, message)
        self._t.disconnect(graceful=True)
        await self._t.wait_disconnected()


def _json_error(status: int, body: dict[str, Any]) -> Any:
    response = WSUpgradeResponse.create_error_response(
        status, json.dumps(body).encode(), {"Content-Type": "application/json; charset=utf-8"})
    return WSUpgradeResponseWithListener(response, None)


class _Listener:
    """One executor or harness websocket: frames straight to the router.

    A whole binary frame is routed from ``on_ws_frame`` (the base class's: :mod:`._rdvfast_py`
    or its compiled twin, which routes a bound stream's frames in C); fragments are
    reassembled up to the message limit (a longer message closes the socket with 1009,
    counted ``too_large``); text is counted ``text`` and dropped; a close is answered.  A
    harness socket counts the bytes it routes and, once per MiB or when the router zeroed its
    budget, checks its executor's backlog: above ``executor_high_water`` its reads pause (TCP
    pushes back), frames already read in the same buffer are held in order, and reading
    resumes when the executor drained.

    A mixin: the classes below put it in front of either base (:class:`_RdvListener`, the
    selected twin; :class:`_RdvListenerPy`, the Python one, for ``fast_frames=False``).
    """

    if TYPE_CHECKING:  # the base's fields (RdvListenerBase)
        link: Link | None
        _frag: list[bytes] | None
        _held: list[bytes] | None
        _executor: bool
        route: Callable[[Link, bytes], None]

        def message(self, link: Link, data: bytes) -> None: ...

    def __init__(self, server: "RendezvousServer", executor_id: str, role: str, admitted: str,
                 plog: _ParserLog) -> None:
        super().__init__(server.router, role == "executor")  # type: ignore[call-arg]
        self.server = server
        self.executor_id = executor_id
        self.role = role
        self.admitted = admitted  # the executor's registration, or the harness's token
        #: the link of a socket refused for a message over the cap, until it is detached
        self._gone: Link | None = None
        self._frag_size = 0
        self._frag_text = False
        self._raw: Any = None
        self._drained: asyncio.Future[None] | None = None
        self._write_paused = False
        plog.on_too_large = self._too_large

    # -- connection -----------------------------------------------------------------------
    def on_ws_connected(self, transport: Any) -> None:
        server = self.server
        raw = self._raw = transport.underlying_transport
        peer = raw.get_extra_info("peername")
        label = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        closer = _Closer(transport)
        if self.role == "executor":
            link = server.executor_link(self.executor_id, closer, raw, label)
            link.drain = self._drain
            if not server.attach_executor(link, self.admitted):  # lost a race
                transport.send_close(WSCloseCode.POLICY_VIOLATION, b"executor id taken")
                transport.disconnect(graceful=True)
                return
        else:
            link = server.harness_link(self.executor_id, closer, raw, label, self.admitted)
            link.budget = _CHECK_EVERY
            server.attach_harness(link)
        self.link = link

    def on_ws_disconnected(self, transport: Any) -> None:
        link, self.link = self.link or self._gone, None
        self._resume_writers()
        if link is None:
            return
        if self.role == "executor":
            self.server.detach_executor(link)
        else:
            self.server.detach_harness(link)

    # -- the per-frame path: on_ws_frame is the base class's ---------------------------------
    def _congested(self, link: Link, data: bytes) -> bool:
        """Budget spent: re-check the executor's backlog; True when ``data`` is held."""
        high = self.server.config.executor_high_water
        backlog = self.server.router.executor_backlog(self.executor_id)
        if backlog <= high:
            link.budget = min(_CHECK_EVERY, high - backlog) - len(data)
            return False
        self._held = [data]
        self._raw.pause_reading()
        self.server.spawn(self._wait_and_release(link))
        return True

    async def _wait_and_release(self, link: Link) -> None:
        high = self.server.config.executor_high_water
        router = self.server.router
        try:
            while True:
                backlog = router.executor_backlog(self.executor_id)
                while backlog > high and not link.closed:
                    executor = router.executor_link(self.executor_id)
                    if executor is None:
                        break
                    await executor.wait_writable(link, 3600.0)
                    backlog = router.executor_backlog(self.executor_id)
                held, self._held = self._held or [], None
                if link.closed:
                    return
                link.budget = min(_CHECK_EVERY, high - backlog)
                for i, data in enumerate(held):
                    link.budget -= len(data)
                    self.route(link, data)
                    if link.budget <= 0 and i + 1 < len(held) and not link.closed:
                        self._held = held[i + 1:]
                        break
                if self._held is None:
                    break
        finally:
            raw = self._raw
            if self._held is None and raw is not None and not raw.is_closing():
                raw.resume_reading()

    def _other_frame(self, transport: Any, link: Link, mt: Any, frame: Any) -> None:
        if mt is WSMsgType.TEXT or mt is WSMsgType.BINARY or mt is WSMsgType.CONTINUATION:
            self._fragment(transport, link, mt, frame)
        elif mt is WSMsgType.CLOSE:
            transport.send_close(WSCloseCode.OK)
            transport.disconnect(graceful=True)
        # PING is answered by picows (enable_auto_pong); PONG feeds its auto-ping

    def _fragment(self, transport: Any, link: Link, mt: Any, frame: Any) -> None:
        if mt is WSMsgType.CONTINUATION:
            if self._frag is None:
                self._protocol_error(transport, "continuation without a first fragment")
                return
        else:
            if self._frag is not None:
                self._protocol_error(transport, "new message inside a fragmented one")
                return
            self._frag, self._frag_size, self._frag_text = [], 0, mt is WSMsgType.TEXT
        part = frame.get_payload_as_bytes()
        self._frag_size += len(part)
        limit = self.server.config.message_limit
        if self._frag_size > limit:
            self._frag = None
            self._too_large(f"message over {limit} bytes")
            transport.send_close(WSCloseCode.MESSAGE_TOO_BIG)
            transport.disconnect(graceful=True)
            return
        self._frag.append(part)
        if not frame.fin:
            return
        parts, self._frag = self._frag, None
        if self._frag_text:
            self.server.router._bad(link, "text", "text websocket message")  # noqa: SLF001
            return
        self.message(link, b"".join(parts))

    def _protocol_error(self, transport: Any, what: str) -> None:
        self._frag = None
        log.debug("websocket protocol error from %r: %s", self.link, what)
        transport.send_close(WSCloseCode.PROTOCOL_ERROR)
        transport.disconnect(graceful=True)

    def _too_large(self, detail: str) -> None:
        """Count the refused message and stop reading: the socket is closing with 1009.

        picows keeps parsing what arrives until it drops the connection; nothing more is read
        or routed from this socket (the reader never buffers more than the cap).
        """
        link = self.link
        if link is None:
            return
        self.server.router._bad(link, "too_large", detail)  # noqa: SLF001
        self._gone, self.link = link, None
        if self._raw is not None and not self._raw.is_closing():
            self._raw.pause_reading()

    # -- the executor's drain (Link.drain) ------------------------------------------------
    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._resume_writers()

    def _resume_writers(self) -> None:
        fut, self._drained = self._drained, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def _drain(self) -> None:
        """Return once the transport's buffer is below its low-water mark."""
        if not self._write_paused or self.link is None:
            return
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        await self._drained


class _RdvListener(_Listener, _Base):
    """The listener with the selected per-frame entry (compiled unless pure)."""


class _RdvListenerPy(_Listener, _rdvfast_py.RdvListenerBase):
    """The listener with the Python per-frame entry (``RendezvousServer(fast_frames=False)``)."""


class _Sniffer(asyncio.Protocol):
    """Reads a connection's request line, then hands the connection to picows or aiohttp."""

    def __init__(self, front: "FastFront") -> None:
        self.front = front
        self.transport: Any = None
        self.buf = bytearray()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.front.sniffing.add(transport)
        self.front.server.guard.arm(transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        end = buf.find(b"\r\n")
        if end < 0 and len(buf) < _LINE_MAX:
            return
        line = bytes(buf[:end]) if end >= 0 else b""
        self.front.hand_over(self.transport, line, bytes(buf))

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.transport is not None:
            self.front.sniffing.discard(self.transport)
            self.front.server.guard.disarm(self.transport)


def _websocket_target(line: bytes) -> tuple[str, str, dict[str, str]] | None:
    """``(role, executor id, query)`` when the request line names a websocket path."""
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"GET":
        return None
    target = parts[1].decode("latin-1")
    path, _, query = target.partition("?")
    if path == "/harness":
        role, executor_id = "harness", ""
    elif path.startswith("/executor/") and "/" not in path[10:] and len(path) > 10:
        role, executor_id = "executor", unquote(path[10:])
    else:
        return None
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, value)
    return role, executor_id, params


class FastFront:
    """The listening socket of a :class:`RendezvousServer` on the fast path."""

    def __init__(self, server: "RendezvousServer", http_factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self.server = server
        self._http_factory = http_factory
        self._listener: asyncio.AbstractServer | None = None
        #: connections whose request line has not arrived yet (dropped by :meth:`close`)
        self.sniffing: set[Any] = set()

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(lambda: _Sniffer(self), host, port, backlog=1024,
                                                  reuse_address=True, ssl=ssl_context)
        return int(self._listener.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for transport in list(self.sniffing):
            transport.abort()
        self.sniffing.clear()

    def hand_over(self, transport: Any, line: bytes, data: bytes) -> None:
        """Give ``transport`` and the bytes read so far to picows or to aiohttp."""
        self.sniffing.discard(transport)
        target = _websocket_target(line)
        if target is not None and target[0] == "executor" and self.server.cluster is not None:
            # a cluster reads the other nodes' view of the id before the (synchronous)
            # admission: hold the socket's bytes until it is there
            transport.pause_reading()
            self.server.spawn(self._hand_over_later(transport, target, data))
            return
        self._switch(transport, target, data)

    async def _hand_over_later(self, transport: Any, target: tuple[str, str, dict[str, str]],
                               data: bytes) -> None:
        await self.server.prepare_executor_admission(target[1], target[2].get("sig"))
        if transport.is_closing():
            return
        self._switch(transport, target, data)
        if not transport.is_closing():
            transport.resume_reading()

    def _switch(self, transport: Any, target: tuple[str, str, dict[str, str]] | None, data: bytes) -> None:
        if target is None:
            self.server.guard.disarm(transport)  # aiohttp's hook arms it again
            proto: Any = self._http_factory()
        else:
            proto = self._websocket_protocol(transport, *target)
        transport.set_protocol(proto)
        proto.connection_made(transport)
        if isinstance(proto, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view and not transport.is_closing():
                buf = memoryview(proto.get_buffer(len(view)))
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                proto.buffer_updated(n)
                view = view[n:]
        else:
            proto.data_received(data)

    def _websocket_protocol(self, transport: Any, role: str, executor_id: str,
                            query: dict[str, str]) -> Any:
        server = self.server
        plog = _ParserLog()

        listener = _RdvListener if server.fast_frames else _RdvListenerPy

        def factory(request: Any) -> Any:
            # the request is complete: the guard's deadline is off (as in its middleware)
            server.guard.disarm(transport)
            sig = query.get("sig")
            if role == "executor":
                admitted = server.admit_executor(executor_id, sig)
                if isinstance(admitted, tuple):
                    return _json_error(*admitted)
                return listener(server, executor_id, role, admitted, plog)
            eid = query.get("executor_id", "")
            refused = server.admit_harness(eid, query.get("role"), sig)
            if refused is not None:
                return _json_error(*refused)
            assert sig is not None
            return listener(server, eid, role, sig, plog)

        cfg = server.config
        return _protocol(factory, cfg.message_limit, cfg.heartbeat, plog)
