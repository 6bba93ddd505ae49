"""Helpers for rendezvous tests (fake executor / harness sockets over aiohttp)."""
from __future__ import annotations

import asyncio

import aiohttp

from execrelay.rendezvous import RendezvousServer
from execrelay.wire import RESET, RESUME, Frame, decode, encode_control, encode_data

SECRET = b"rendezvous-test-secret-0123456789"


async def register(http: aiohttp.ClientSession, server: RendezvousServer, executor_id: str,
                   token: str | None = None) -> str:
    token = token or server.mint_token("executor", executor_id)
    async with http.post(f"{server.url}/cloud/executor/{executor_id}/register",
                         headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["executor_id"] == executor_id
    return body["url"]


async def connect_executor(http: aiohttp.ClientSession, server: RendezvousServer, executor_id: str,
                           token: str | None = None) -> aiohttp.ClientWebSocketResponse:
    url = await register(http, server, executor_id, token)
    return await http.ws_connect(url, autoping=True, max_msg_size=0)


async def connect_harness(http: aiohttp.ClientSession, server: RendezvousServer,
                          executor_id: str) -> aiohttp.ClientWebSocketResponse:
    return await http.ws_connect(server.harness_url(executor_id), max_msg_size=0)


async def open_stream(http: aiohttp.ClientSession, server: RendezvousServer, executor_id: str = "e",
                      sid: str = "s") -> tuple[aiohttp.ClientWebSocketResponse, aiohttp.ClientWebSocketResponse]:
    """Executor and harness sockets of ``executor_id``, with stream ``sid`` opened by the
    harness's first data frame (already received by the executor): ``(ex, h)``."""
    return await open_streams(http, server, data(sid, 0), executor_id=executor_id)


async def open_streams(http: aiohttp.ClientSession, server: RendezvousServer, *first: bytes,
                       executor_id: str = "e"
                       ) -> tuple[aiohttp.ClientWebSocketResponse, aiohttp.ClientWebSocketResponse]:
    """Executor and harness sockets of ``executor_id``; the harness sends the frames ``first``
    (opening their streams), all received by the executor before this returns: ``(ex, h)``."""
    ex = await connect_executor(http, server, executor_id)
    h = await connect_harness(http, server, executor_id)
    for frame in first:
        await h.send_bytes(frame)
    for _ in first:
        await recv_raw(ex)
    return ex, h


async def recv_raw(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> bytes:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.BINARY, msg
    return msg.data


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> Frame:
    return decode(await recv_raw(ws, timeout))


async def expect_silence(ws: aiohttp.ClientWebSocketResponse, seconds: float = 0.2) -> None:
    try:
        msg = await asyncio.wait_for(ws.receive(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"expected no message, got {msg.type} "
                         f"{decode(msg.data) if msg.type == aiohttp.WSMsgType.BINARY else msg.data!r}")


def data(sid: str, seq: int, payload: bytes | str = b'{"id":1,"method":"initialize"}') -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return encode_data(sid, seq, 0, 0, payload)


def resume(sid: str, next_seq: int = 0) -> bytes:
    return encode_control(RESUME, sid, next_seq=next_seq)


def reset(sid: str, reason: str = "bye") -> bytes:
    return encode_control(RESET, sid, reason=reason)


async def metrics_text(http: aiohttp.ClientSession, server: RendezvousServer) -> str:
    async with http.get(f"{server.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await resp.text()


async def expect_metrics(http: aiohttp.ClientSession, server: RendezvousServer,
                         expected: dict[tuple[str, str], float]) -> None:
    """The server's /metrics shows these samples: {(name, labels as rendered): value}."""
    text = await metrics_text(http, server)
    assert {key: metric(text, *key) for key in expected} == expected


def metric(text: str, name: str, labels: str = "") -> float:
    """Value of one sample (``labels`` as rendered, e.g. ``{direction="to_executor"}``)."""
    key = f"execrelay_rendezvous_{name}{labels} "
    for line in text.splitlines():
        if line.startswith(key):
            return float(line[len(key):])
    raise KeyError(key)

