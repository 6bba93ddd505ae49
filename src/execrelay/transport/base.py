"""The one small transport interface shared by websocket (picows / websockets) and stdio.

A transport turns a byte stream into whole messages.  For each peer it gives the application a
:class:`Link` (send, close, flow-control state) and asks a factory for a :class:`LinkHandler`
(message, close and write-pause callbacks).  Everything is callback based on purpose: the
exec-server answers most requests synchronously inside ``on_message``, and a link batches all
messages sent while handling one read into a single socket write (issue 8: one write per read).
"""
from __future__ import annotations

from typing import Callable, Iterable, Protocol, Union

from ..wire.peek import LEGACY_MAX_FRAME_BYTES
from ..wire.split import SplitFrame

#: What a link sends: a message's bytes or text, or a relay frame in two buffers (a link
#: writes a :class:`SplitFrame`'s head and payload without joining them when it can).
Payload = Union[bytes, bytearray, memoryview, str, SplitFrame]

#: websocket limits of 0.131.0 (axum/tungstenite defaults, docs/exec-server.md §Transports)
MAX_FRAME_BYTES = LEGACY_MAX_FRAME_BYTES
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Link(Protocol):
    """One connected peer, as seen by the application."""

    #: ``"IP:PORT"`` of the remote side (``"stdio"`` for stdio)
    peer: str
    #: True while the transport's write buffer is above its high-water mark
    write_paused: bool

    def send(self, data: Payload, binary: bool = False) -> None:
        """Queue one message (text frame unless ``binary``); flushed at the end of the current
        read batch, or in the next loop iteration when sent from outside a read."""

    def send_many(self, messages: Iterable[Payload], binary: bool = False) -> None:
        """Queue several messages; they go out in one write."""

    def flush(self) -> None:
        """Write everything queued now."""

    def pause_reading(self, paused: bool) -> None:
        """Stop (True) or restart (False) reading from the peer (backpressure).  Optional: the
        stdio link does not have it."""

    def close(self, graceful: bool = False) -> None:
        """``graceful``: send a close frame; otherwise drop the TCP connection at once
        (what 0.131.0 does on protocol violations).  Idempotent."""

    async def wait_closed(self) -> None:
        """Return once the connection is gone."""


class LinkHandler(Protocol):
    """What the application supplies for each link."""

    def on_message(self, data: bytes | str, binary: bool) -> None: ...

    def on_close(self) -> None: ...

    def on_write_paused(self, paused: bool) -> None: ...


LinkFactory = Callable[[Link], LinkHandler]


class Server(Protocol):
    host: str
    port: int
    #: the bound URL, e.g. ``ws://127.0.0.1:35661`` (``ws://[::1]:45807`` for IPv6)
    url: str
    #: "picows" or "websockets"
    impl: str

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


def format_url(host: str, port: int) -> str:
    if ":" in host:
        return f"ws://[{host}]:{port}"
    return f"ws://{host}:{port}"


def peer_of(sockname: object) -> str:
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host, port = sockname[0], sockname[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(sockname)
