"""The websocket paths on either server side (picows beside aiohttp, or aiohttp alone).

The rest of tests/rendezvous runs on whichever side the build picks (picows in the compiled
pass, aiohttp in the pure one); these run the same checks on both sides in each pass, plus
what only the picows side does (the request-line hand-over, RFC 6455 masking).
"""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from _rdv_helpers import (SECRET, connect_executor, connect_harness, data, metric, metrics_text,
                          recv, recv_raw, register)
from execrelay._accel import FORCE_PURE
from execrelay._wsframe import OP_BINARY, header
from execrelay.rendezvous import HARNESS_DISCONNECTED, RendezvousServer


pytestmark = pytest.mark.timeout(30)

SIDES = ["aiohttp"] + ([] if FORCE_PURE else ["picows"])


@pytest.fixture
async def side_server() -> AsyncIterator[Callable[..., Awaitable[RendezvousServer]]]:
    """Servers on the websocket side named by the test's ``side`` parameter."""
    servers: list[RendezvousServer] = []

    async def make(side: str, **overrides: Any) -> RendezvousServer:
        server = RendezvousServer(SECRET, heartbeat=None, **overrides)
        server.fast_websockets = side == "picows"  # what `--websockets aiohttp` switches off
        await server.start("127.0.0.1", 0)
        servers.append(server)
        assert (server._front is not None) == (side == "picows")  # noqa: SLF001
        return server

    yield make
    for server in servers:
        await asyncio.wait_for(server.aclose(), 10)


@pytest.mark.parametrize("side", SIDES)
async def test_round_trip_text_and_close(side_server, http, side) -> None:
    server = await side_server(side)
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    await h.send_bytes(data("s", 0))
    assert await recv_raw(ex) == data("s", 0)
    await ex.send_bytes(data("s", 0, b'{"id":1,"result":{}}'))
    assert await recv_raw(h) == data("s", 0, b'{"id":1,"result":{}}')
    whole = data("s", 1, b'{"id":2,"method":"x"}')
    await h.send_bytes(whole)
    assert await recv_raw(ex) == whole
    await h.send_str("not a frame")
    await h.send_bytes(data("s", 2))
    assert await recv_raw(ex) == data("s", 2)
    text = await metrics_text(http, server)
    assert metric(text, "bad_frames_total", '{reason="text"}') == 1
    assert metric(text, "connections", '{role="harness"}') == 1
    await h.close()
    await asyncio.sleep(0.1)
    text = await metrics_text(http, server)
    assert metric(text, "connections", '{role="harness"}') == 0


@pytest.mark.skipif(FORCE_PURE, reason="the picows side only (compiled build)")
async def test_picows_side_reassembles_fragments_and_refuses_unmasked(side_server, http) -> None:
    server = await side_server("picows")
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    await h.send_bytes(data("s", 0))
    await recv_raw(ex)
    # a raw harness socket: fragments by hand (zero mask key)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    url = server.harness_url("e").split(f":{server.port}", 1)[1]
    writer.write((f"GET {url} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                  ).encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    whole = data("f", 0, b'{"id":7,"method":"fragmented"}')
    key = b"\x00\x00\x00\x00"
    first = bytes((OP_BINARY, 0x80 | 10)) + key + whole[:10]         # FIN clear
    middle = bytes((0x00, 0x80 | 10)) + key + whole[10:20]            # continuation
    last = bytes((0x80, 0x80 | (len(whole) - 20))) + key + whole[20:]  # FIN continuation
    writer.write(first + middle + last)
    assert await recv_raw(ex) == whole
    # an unmasked client frame is a protocol error (RFC 6455 §5.1): the socket is closed
    writer.write(header(OP_BINARY, len(whole)) + whole)
    rest = await asyncio.wait_for(reader.read(), 5)
    assert rest[:1] == b"\x88"  # a close frame, then EOF
    writer.close()
    f = await recv(ex)  # its legacy stream ends with it
    assert (f.stream_id, f.reason) == ("f", HARNESS_DISCONNECTED)
    # other sockets carry on
    await h.send_bytes(data("s", 1))
    assert await recv_raw(ex) == data("s", 1)


@pytest.mark.parametrize("side", SIDES)
async def test_refusals_have_the_json_body(side_server, http, side) -> None:
    server = await side_server(side)
    async with http.get(f"{server.url}/harness?role=harness&executor_id=e&sig=bad",
                        headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                 "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                 "Sec-WebSocket-Version": "13"}) as resp:
        assert resp.status == 401
        body = await resp.json(content_type=None)
    assert body["error"]["code"] == "unauthorized"
    url = await register(http, server, "e")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(url.replace("/executor/e?", "/executor/other?"))
    assert info.value.status == 401
    async with http.get(f"{server.url}/readyz") as resp:  # plain HTTP beside the websockets
        assert resp.status == 200 and await resp.text() == "ok\n"


@pytest.mark.parametrize("side", SIDES)
async def test_paths_beside_the_websockets_answer_as_before(side_server, http, side) -> None:
    """The request-line dispatch sends only the two websocket paths to picows: a longer
    executor path is aiohttp's 404, a harness GET without an upgrade is 400 on both sides."""
    server = await side_server(side)
    async with http.get(f"{server.url}/executor/a/b?sig=x") as resp:
        assert resp.status == 404
    async with http.get(f"{server.url}/harnessx") as resp:
        assert resp.status == 404
    async with http.get(server.harness_url("e")) as resp:  # valid token, no upgrade headers
        assert resp.status == 400
    async with http.post(f"{server.url}/harness") as resp:
        assert resp.status == 405
