"""The picows link and listener in Python: the pure twin of ``ext/transport/_picows_c.pyx``.

:mod:`.ws_picows` uses the compiled twin when it imports (built against the installed picows
release) and this module otherwise.  Both behave the same; the compiled one reads picows's
frame fields as C values (reading ``frame.msg_type`` from Python converts a C enum to an
``IntEnum`` member, ~150 ns per frame) and frames a batch of small messages into one buffer in
C.  The rare paths (fragments, close frames, disconnect, write pauses) are the functions at the
end of this module, and the compiled twin calls these same functions.

Messages sent while picows delivers the frames of one socket read are queued and written with
ONE ``write()`` when the last frame of that read has been handled (``frame.last_in_buffer``);
messages sent from elsewhere (process output, timers) are flushed once per loop iteration.
Fragmented messages are reassembled here (picows hands over raw frames); a frame over 16 MiB or
a message over 64 MiB drops the connection, as 0.131.0 does.
"""
from __future__ import annotations

import asyncio
from typing import Any, Iterable

from picows import WSListener, WSMsgType, WSTransport

from ..wire.split import SplitFrame
from . import _frames
from .base import Payload, peer_of

_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY
_CONT = WSMsgType.CONTINUATION
_CLOSE = WSMsgType.CLOSE
#: above this many payload bytes per flush, frames are handed to writelines() instead of joined
JOIN_LIMIT = 64 * 1024


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
        if len(out) == 1 and len(out[0]) <= JOIN_LIMIT and type(out[0]) is not SplitFrame:
            data = out[0]
            self._t.send(_BINARY if self._out_bin else _TEXT, data.encode() if type(data) is str else data)
        else:
            write_batch(self._raw, out, self._out_bin, self._client)

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


class Listener(WSListener):
    """picows's listener of one connection: whole messages go to the handler's ``on_message``."""

    def __init__(self, factory: Any, client: bool, max_message: int) -> None:
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
        connected(self, PicowsLink(transport, self._client))

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
            other_frame(self, mt, frame)
        finally:
            if frame.last_in_buffer:
                link._in_read = False  # type: ignore[union-attr]
                link.flush()  # type: ignore[union-attr]

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        disconnected(self)

    def pause_writing(self) -> None:
        write_paused(self, True)

    def resume_writing(self) -> None:
        write_paused(self, False)


# --------------------------------------------------------------- shared by both twins
def write_batch(raw: Any, out: list, binary: bool, client: bool) -> None:
    """Write ``out`` (more than one message, a large one or a SplitFrame) to the socket.

    Large payloads (and SplitFrames) are never copied on the loop: picows' send() would copy
    (and, as a client, mask) them; here the header goes in front and the buffers as they are
    (docs/architecture.md §Large transfers)."""
    parts, total = _frames.frame_parts(out, 2 if binary else 1, client)
    if total > JOIN_LIMIT:
        raw.writelines(parts)  # big payloads: one writev, no copy (uvloop)
    else:
        raw.write(b"".join(parts))


def connected(listener: Any, link: Any) -> None:
    """The handshake is done: ``link`` is the connection's link; ask the factory for its handler."""
    listener.link = link
    handler = listener._factory(link)
    listener.handler = handler
    listener._on_message = handler.on_message
    link._handler = handler


def other_frame(listener: Any, mt: Any, frame: Any) -> None:
    """A frame that is not a whole text or binary message: a fragment, a close frame, a pong."""
    link = listener.link
    if mt is _TEXT or mt is _BINARY:
        listener._frag = [frame.get_payload_as_bytes()]
        listener._frag_bin = mt is _BINARY
        listener._frag_size = len(listener._frag[0])
    elif mt is _CONT:
        if listener._frag is None:
            link.close()
            return
        data = frame.get_payload_as_bytes()
        listener._frag_size += len(data)
        if listener._frag_size > listener._max:
            listener._frag = None
            link.close()
            return
        listener._frag.append(data)
        if frame.fin:
            parts, listener._frag = listener._frag, None
            listener._on_message(b"".join(parts), listener._frag_bin)
    elif mt is _CLOSE:
        if listener._client:
            link.close(graceful=True)
        else:
            # 0.131.0 answers a close frame by dropping TCP
            link.close()


def disconnected(listener: Any) -> None:
    """The connection is gone: the link is closed and the handler told, once."""
    link = listener.link
    if link is not None:
        link._closed = True
    if listener.handler is not None:
        handler, listener.handler = listener.handler, None
        handler.on_close()


def write_paused(listener: Any, paused: bool) -> None:
    """picows's transport crossed its write buffer's high (True) or low (False) mark."""
    if listener.link is not None:
        listener.link.write_paused = paused
    if listener.handler is not None:
        listener.handler.on_write_paused(paused)
