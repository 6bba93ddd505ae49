"""Raw executor and harness websockets for the ``cluster`` benchmark (docs/benchmarks.md §Cluster).

The driver plays both ends, so it can time a frame from the moment one end writes it to the
moment the other end reads it, whichever nodes the two ends sit on.  Both ends speak LEGACY
relay frames (``Resume{next_seq 0}``, then Data seq 0, 1, 2, ...: what codex 0.131.0 sends),
encoded by the Cython codec when it is built: the node's routing is what is measured, not the
driver's protocol engine.

* :class:`Peer`: one picows client websocket; ``on_frame(bytes)`` for each binary message.
* :func:`register_executor`: ``POST /cloud/executor/ID/register`` -> the websocket URL.
* :func:`stamped`: a Data payload carrying its send time, :func:`sent_at` reads it back.
"""
from __future__ import annotations

import asyncio
import struct
import time
from typing import Callable

import aiohttp
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from .._accel import load_both
from ..wire.peek import body_kind

_fast, _pure = load_both("execrelay.wire._codec_c", "execrelay.wire._codec_py")
codec = _fast or _pure
_stamp = struct.Struct("<qI")


def stamped(i: int, size: int) -> bytes:
    """``size`` bytes (>= 12): send time in ns (``perf_counter_ns``), ``i``, zero padding."""
    return _stamp.pack(time.perf_counter_ns(), i) + bytes(size - _stamp.size)


def sent_at(payload: bytes) -> tuple[int, int]:
    """``(send time in ns, i)`` of a :func:`stamped` payload."""
    return _stamp.unpack_from(payload)


class Peer(WSListener):
    """A client websocket that hands each binary message to ``on_frame``."""

    def __init__(self, on_frame: Callable[[bytes], None]) -> None:
        super().__init__()
        self.on_frame = on_frame
        self.transport: WSTransport | None = None
        self.closed = asyncio.Event()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.closed.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.BINARY:
            self.on_frame(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.closed.is_set():
            self.transport.send(WSMsgType.BINARY, data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.disconnect()


async def connect(url: str, on_frame: Callable[[bytes], None], timeout: float = 10.0) -> Peer:
    _, peer = await asyncio.wait_for(
        ws_connect(lambda: Peer(on_frame), url, max_frame_size=32 * 1024 * 1024,
                   read_buffer_init_size=256 * 1024), timeout)
    assert isinstance(peer, Peer)
    return peer


async def register_executor(http: aiohttp.ClientSession, base: str, executor_id: str, token: str) -> str:
    """The executor websocket URL the registry at ``base`` hands out for ``executor_id``."""
    async with http.post(f"{base}/cloud/executor/{executor_id}/register",
                         headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200:
            raise RuntimeError(f"register {executor_id} at {base}: HTTP {resp.status} {body}")
        return str(body["url"])


def is_data(frame: bytes) -> bool:
    """A Data frame (the canonical layout is checked with a few byte comparisons)."""
    kind = body_kind(frame)
    if kind == -1:
        kind = codec.decode(frame).kind
    return kind == codec.DATA


class LegacyStream:
    """The harness side of one legacy stream on a :class:`Peer`: Resume{0}, then Data seq 0.."""

    def __init__(self, peer: Peer, stream_id: str) -> None:
        self.peer = peer
        self.stream_id = stream_id
        self.seq = 0
        peer.send(codec.encode_control(codec.RESUME, stream_id, next_seq=0))

    def send(self, payload: bytes) -> None:
        self.peer.send(codec.encode_data(self.stream_id, self.seq, 0, 0, payload))
        self.seq += 1
