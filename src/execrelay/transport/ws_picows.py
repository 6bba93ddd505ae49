"""Websocket server and client on picows (the fast path, used with uvloop).

Messages sent while picows delivers the frames of one socket read are queued and written with
ONE ``write()`` when the last frame of that read has been handled (``frame.last_in_buffer``);
messages sent from elsewhere (process output, timers) are flushed once per loop iteration.
Fragmented messages are reassembled here (picows hands over raw frames); a frame over 16 MiB or
a message over 64 MiB drops the connection, as 0.131.0 does.
"""
from __future__ import annotations

import asyncio
from typing import Any, Iterable

from picows import (WSListener, WSMsgType, WSTransport, WSUpgradeRequest, WSUpgradeResponse,
                    WSUpgradeResponseWithListener, ws_connect, ws_create_server)

from ..wire.split import SplitFrame
from . import _frames
from .base import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, LinkFactory, Payload, format_url, peer_of

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE
#: above this many payload bytes per flush, frames are handed to writelines() instead of joined
_JOIN_LIMIT = 64 * 1024


class PicowsLink:
    """A :class:`~execrelay.transport.base.Link` over one picows transport."""

    __slots__ = ("_t", "_raw", "_client", "peer", "write_paused", "_out", "_out_bin", "_in_read",
                 "_scheduled", "_loop", "_closed", "_handler", "__weakref__")

    def __init__(self, transport: WSTransport, client: bool) -> None:
        self._t = transport
        self._raw = transport.underlying_transport
        self._client = client
        self.peer = peer_of(self._raw.get_extra_info("peername"))
        self.write_paused = False
        self._out: list = []
        self._out_bin: bool = False
        self._in_read = False
        self._scheduled = False
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._handler: Any = None

    def send(self, data: Payload, binary: bool = False) -> None:
        if self._closed:
            return
        if self._out and binary != self._out_bin:
            self.flush()
        self._out_bin = binary
        self._out.append(data)
        if not self._in_read and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_soon)

    def send_many(self, messages: Iterable[Payload], binary: bool = False) -> None:
        for m in messages:
            self.send(m, binary)

    def write_now(self, messages: list, binary: bool = False) -> None:
        """``send_many(messages)`` + ``flush()`` without scheduling a flush callback first
        (the relay endpoint writes each batch this way: one loop callback per request less at
        window 1).  Takes ownership of ``messages``."""
        if self._closed:
            return
        out = self._out
        if out:
            if binary != self._out_bin:
                self.flush()
                self._out = messages
            else:
                out.extend(messages)
        else:
            self._out = messages
        self._out_bin = binary
        self.flush()

    def _flush_soon(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        self._out = []
        if self._closed:
            return
        opcode = _BINARY if self._out_bin else _TEXT
        if len(out) == 1 and len(out[0]) <= _JOIN_LIMIT and type(out[0]) is not SplitFrame:
            data = out[0]
            self._t.send(opcode, data.encode() if type(data) is str else data)
        else:
            # Large payloads (and SplitFrames) are never copied on the loop: picows' send()
            # would copy (and, as a client, mask) them; here the header goes in front and
            # the buffers as they are (docs/architecture.md §Large transfers).
            parts, total = _frames.frame_parts(out, 2 if self._out_bin else 1, self._client)
            if total > _JOIN_LIMIT:
                self._raw.writelines(parts)  # big payloads: one writev, no copy (uvloop)
            else:
                self._raw.write(b"".join(parts))

    def pause_reading(self, paused: bool) -> None:
        """Stop (True) or restart (False) reading from the socket: TCP backpressure to the peer."""
        if self._closed:
            return
        if paused:
            self._raw.pause_reading()
        else:
            self._raw.resume_reading()

    def close(self, graceful: bool = False) -> None:
        if self._closed:
            return
        if graceful:
            self.flush()
            self._closed = True
            self._t.send_close()
            self._t.disconnect(graceful=True)
        else:
            self._closed = True
            self._out = []
            self._raw.abort()

    async def wait_closed(self) -> None:
        await self._t.wait_disconnected()


class _Listener(WSListener):
    def __init__(self, factory: LinkFactory, client: bool, max_message: int) -> None:
        self._factory = factory
        self._client = client
        self._max = max_message
        self._frag: list[bytes] | None = None
        self._frag_bin = False
        self._frag_size = 0
        self.link: PicowsLink | None = None
        self.handler: Any = None
        self._on_message: Any = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        link = PicowsLink(transport, self._client)
        self.link = link
        self.handler = self._factory(link)
        self._on_message = self.handler.on_message
        link._handler = self.handler

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        link = self.link
        link._in_read = True  # type: ignore[union-attr]
        mt = frame.msg_type
        if (mt is _TEXT or mt is _BINARY) and frame.fin:  # the hot path: one whole message
            try:
                self._on_message(frame.get_payload_as_bytes(), mt is _BINARY)
            finally:
                if frame.last_in_buffer:
                    link._in_read = False  # type: ignore[union-attr]
                    link.flush()  # type: ignore[union-attr]
            return
        try:
            self._other_frame(mt, frame)
        finally:
            if frame.last_in_buffer:
                link._in_read = False  # type: ignore[union-attr]
                link.flush()  # type: ignore[union-attr]

    def _other_frame(self, mt: Any, frame: Any) -> None:
        link = self.link
        if mt is _TEXT or mt is _BINARY:
            self._frag = [frame.get_payload_as_bytes()]
            self._frag_bin = mt is _BINARY
            self._frag_size = len(self._frag[0])
        elif mt is _CONT:
            if self._frag is None:
                link.close()  # type: ignore[union-attr]
                return
            data = frame.get_payload_as_bytes()
            self._frag_size += len(data)
            if self._frag_size > self._max:
                self._frag = None
                link.close()  # type: ignore[union-attr]
                return
            self._frag.append(data)
            if frame.fin:
                parts, self._frag = self._frag, None
                self._on_message(b"".join(parts), self._frag_bin)
        elif mt is _CLOSE:
            if self._client:
                link.close(graceful=True)  # type: ignore[union-attr]
            else:
                # 0.131.0 answers a close frame by dropping TCP
                link.close()  # type: ignore[union-attr]

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        link = self.link
        if link is not None:
            link._closed = True
        if self.handler is not None:
            handler, self.handler = self.handler, None
            handler.on_close()

    def pause_writing(self) -> None:
        if self.link is not None:
            self.link.write_paused = True
        if self.handler is not None:
            self.handler.on_write_paused(True)

    def resume_writing(self) -> None:
        if self.link is not None:
            self.link.write_paused = False
        if self.handler is not None:
            self.handler.on_write_paused(False)


class PicowsServer:
    impl = "picows"

    def __init__(self, server: asyncio.AbstractServer) -> None:
        self._server = server
        sock = getattr(server, "sockets")[0].getsockname()  # uvloop's and asyncio's servers both have it
        self.host, self.port = sock[0], sock[1]
        self.url = format_url(self.host, self.port)

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()


async def serve(factory: LinkFactory, host: str, port: int, *, max_message: int = MAX_MESSAGE_BYTES,
                max_frame: int = MAX_FRAME_BYTES, readyz: bool = True,
                check_upgrade: Any = None) -> PicowsServer:
    """Listen on ``host:port``; ``GET /`` upgrades, ``GET /readyz`` -> 200, others -> 404.
    ``check_upgrade`` may refuse an upgrade (see ``transport.UpgradeCheck``)."""

    def route(request: WSUpgradeRequest) -> Any:
        path = request.path.split(b"?", 1)[0]
        if path == b"/":
            if check_upgrade is not None:
                refused = check_upgrade(request.headers.get("Authorization"))
                if refused is not None:
                    return WSUpgradeResponseWithListener(WSUpgradeResponse.create_error_response(
                        refused[0], refused[1].encode(), {"Content-Type": "text/plain; charset=utf-8"}), None)
            return _Listener(factory, False, max_message)
        if readyz and path == b"/readyz":
            return WSUpgradeResponseWithListener(WSUpgradeResponse.create_ok_response(b""), None)
        return None

    server = await ws_create_server(route, host, port, max_frame_size=max_frame,
                                    websocket_handshake_timeout=10, enable_auto_pong=True,
                                    use_aiofastnet=False)
    return PicowsServer(server)


async def connect(url: str, factory: LinkFactory, *, max_message: int = MAX_MESSAGE_BYTES,
                  max_frame: int = MAX_FRAME_BYTES, extra_headers: Any = None,
                  timeout: float = 10.0, keepalive: tuple[float, float] | None = None,
                  ssl_context: Any = None) -> PicowsLink:
    """Connect to ``url``; returns the link once the handshake is done.  ``keepalive =
    (interval, timeout)``: ping after ``interval`` idle seconds, drop the connection when no
    pong comes within ``timeout``."""
    ping: dict[str, Any] = {}
    if keepalive is not None:
        # picows wants the reply timeout <= the idle interval: a dead peer is then noticed
        # after at most 2 x interval (60 s for 30 s pings, stricter than the 90 s of docs/relay-protocol.md §Limits).
        ping = {"enable_auto_ping": True, "auto_ping_idle_timeout": keepalive[0],
                "auto_ping_reply_timeout": min(keepalive[1], keepalive[0])}
    transport, listener = await ws_connect(lambda: _Listener(factory, True, max_message), url,
                                           max_frame_size=max_frame, extra_headers=extra_headers,
                                           websocket_handshake_timeout=timeout, use_aiofastnet=False,
                                           ssl_context=ssl_context, **ping)
    link: PicowsLink | None = getattr(listener, "link")  # set by _Listener when the handshake completes
    if link is None:  # the server hung up right after the upgrade, before picows reported it
        transport.disconnect()
        raise ConnectionResetError("websocket closed during the opening handshake")
    return link
