"""Relay clients notice a dead peer: ping when idle, drop the link when no pong comes (P3)."""
from __future__ import annotations

import asyncio
import base64
import hashlib

import pytest

from execrelay.transport import connect_websocket

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def silent_server():
    """Completes the websocket handshake, then never reads or answers anything again."""
    writers = []

    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        writers.append(writer)  # keep the socket open, silent

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, writers


class Sink:
    def __init__(self) -> None:
        self.closed = asyncio.Event()

    def on_message(self, data, binary) -> None:
        pass

    def on_close(self) -> None:
        self.closed.set()

    def on_write_paused(self, paused) -> None:
        pass


@pytest.mark.parametrize("impl", ["picows", "websockets"])
async def test_keepalive_drops_a_silent_peer(impl):
    server, writers = await silent_server()
    port = server.sockets[0].getsockname()[1]
    try:
        sink = Sink()
        link = await connect_websocket(f"ws://127.0.0.1:{port}/", lambda link: sink, impl=impl,
                                       keepalive=(0.2, 0.2))
        await asyncio.wait_for(sink.closed.wait(), 5)  # ping at ~0.2 s, no pong by ~0.4 s
        quiet = Sink()
        link2 = await connect_websocket(f"ws://127.0.0.1:{port}/", lambda link: quiet, impl=impl)
        await asyncio.sleep(0.8)
        assert not quiet.closed.is_set(), "without keepalive a silent peer is not dropped"
        link2.close()
        link.close()
    finally:
        for w in writers:
            w.close()
        server.close()
