"""Issue 13, items 9-13 and 16: what one client may cost the rendezvous and other clients.

See docs/rendezvous.md §Security model.  Each test names the item it covers.
"""
from __future__ import annotations

import asyncio
from collections import OrderedDict

import aiohttp
from _rdv_helpers import (connect_executor, connect_harness, data, expect_silence, metric,
                          metrics_text, recv, recv_raw, register, reset, resume)

from execrelay.rendezvous import EXECUTOR_UNAVAILABLE, FRAME_TOO_LARGE, STREAM_IN_USE
from execrelay.rendezvous.directory import LocalExecutorDirectory
from execrelay.rendezvous.router import STREAM_FLOOD, STREAM_RATE_LIMITED, TOO_MANY_STREAMS
from execrelay.rendezvous.tokens import token_fingerprint, verify
from execrelay.wire import RESET, decode, encode_data


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes the connection within ``seconds``."""
    try:
        while await asyncio.wait_for(reader.read(4096), seconds):
            pass
        return True
    except asyncio.TimeoutError:
        return False
    except ConnectionError:
        return True


# -- item 9: pre-auth slowloris ---------------------------------------------------------
async def test_silent_and_partial_header_connections_are_closed(make_server) -> None:
    server = await make_server(handshake_timeout=0.5)
    silent = await asyncio.open_connection("127.0.0.1", server.port)
    partial = await asyncio.open_connection("127.0.0.1", server.port)
    partial[1].write(b"GET /harness?role=harness HTTP/1.1\r\nHost: x\r\n")  # never finished
    await partial[1].drain()
    assert await _closed_within(silent[0], 5.0)
    assert await _closed_within(partial[0], 5.0)
    for _, w in (silent, partial):
        w.close()
    text = server.metrics.render()
    assert metric(text, "connections_dropped_total", '{reason="handshake_timeout"}') == 2


async def test_idle_keepalive_http_connection_is_closed(make_server) -> None:
    server = await make_server(handshake_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"ok\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    assert await _closed_within(reader, 5.0)  # then idle: closed after the timeout
    writer.close()


async def test_unauthenticated_cap_drops_the_oldest(make_server, http) -> None:
    server = await make_server(handshake_timeout=60.0, max_unauthenticated=4)
    conns = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(8)]
    await asyncio.sleep(0.2)
    closed = [await _closed_within(r, 0.5) for r, _ in conns[:4]]
    assert closed == [True] * 4
    assert not await _closed_within(conns[-1][0], 0.3)
    # A well-behaved client still gets in (it displaces an idle one).
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    await h.send_bytes(data("s", 0))
    assert await recv_raw(ex) == data("s", 0)
    for _, w in conns:
        w.close()
    assert metric(server.metrics.render(), "connections_dropped_total",
                  '{reason="unauthenticated_cap"}') >= 4


async def test_authenticated_socket_without_pongs_is_dropped(make_server, http) -> None:
    """Already the case before issue 13 (websocket heartbeat); kept as a guard."""
    server = await make_server(heartbeat=0.3)
    await connect_executor(http, server, "e")
    h = await http.ws_connect(server.harness_url("e"), autoping=False)
    await asyncio.sleep(1.5)  # reads nothing: never answers the pings
    for _ in range(5):
        msg = await asyncio.wait_for(h.receive(), 3)
        if msg.type != aiohttp.WSMsgType.PING:
            break
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)


# -- item 10: stream caps and creation rate ---------------------------------------------
async def test_streams_per_harness_socket_are_capped(make_server, http) -> None:
    server = await make_server(max_streams_per_harness=3)
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    for i in range(3):
        await h.send_bytes(data(f"s{i}", 0))
        assert await recv_raw(ex) == data(f"s{i}", 0)
    await h.send_bytes(data("s3", 0))
    f = await recv(h)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "s3", TOO_MANY_STREAMS)
    await expect_silence(ex)
    # Ending a stream frees its slot.
    await h.send_bytes(reset("s0"))
    assert (await recv(ex)).kind == RESET
    await h.send_bytes(data("s4", 0))
    assert await recv_raw(ex) == data("s4", 0)
    text = await metrics_text(http, server)
    assert metric(text, "streams_refused_total", '{reason="too_many_streams"}') == 1


async def test_streams_per_executor_are_capped(make_server, http) -> None:
    server = await make_server(max_streams_per_executor=4)
    ex = await connect_executor(http, server, "e")
    a, b = await connect_harness(http, server, "e"), await connect_harness(http, server, "e")
    for i in range(3):
        await a.send_bytes(data(f"a{i}", 0))
    await b.send_bytes(data("b0", 0))
    got = {(await recv(ex)).stream_id for _ in range(4)}
    assert got == {"a0", "a1", "a2", "b0"}
    await b.send_bytes(data("b1", 0))
    f = await recv(b)
    assert (f.stream_id, f.reason) == ("b1", TOO_MANY_STREAMS)
    await expect_silence(ex)


async def test_stream_creation_rate_is_limited_rapid_reset(make_server, http) -> None:
    """Open-and-Reset floods never hit the stream cap; the creation rate stops them."""
    server = await make_server(stream_rate=1.0, stream_burst=5)
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    for i in range(10):
        await h.send_bytes(data(f"r{i}", 0))
        await h.send_bytes(reset(f"r{i}"))
    forwarded = [await recv(ex) for _ in range(10)]  # 5 x (Data, Reset)
    assert sorted({f.stream_id for f in forwarded}) == [f"r{i}" for i in range(5)]
    refused = [await recv(h) for _ in range(5)]
    assert {(f.stream_id, f.reason) for f in refused} == {(f"r{i}", STREAM_RATE_LIMITED)
                                                          for i in range(5, 10)}
    await expect_silence(ex)
    text = await metrics_text(http, server)
    assert metric(text, "streams_refused_total", '{reason="stream_rate_limited"}') == 5
    assert metric(text, "streams") == 0


async def test_a_socket_that_keeps_flooding_refused_streams_is_dropped(make_server, http) -> None:
    """Past ``max_refused_streams`` refusals in a row the flooder loses its socket (found by the
    soak: answering a flood frame by frame stalled the rendezvous); another harness is unaffected."""
    server = await make_server(stream_rate=0.001, stream_burst=2, max_refused_streams=20)
    ex = await connect_executor(http, server, "e")
    good = await connect_harness(http, server, "e")
    await good.send_bytes(data("good", 0))
    await recv_raw(ex)
    h = await connect_harness(http, server, "e")
    for i in range(10):  # two admitted, eight refused: each refusal is a Reset the flooder reads
        await h.send_bytes(data(f"f{i}", 0))
    for _ in range(8):
        f = decode((await asyncio.wait_for(h.receive(), 5)).data)
        assert (f.kind, f.reason) == (RESET, STREAM_RATE_LIMITED)
    refused = 8
    for i in range(10, 100):
        await h.send_bytes(data(f"f{i}", 0))
    while True:
        msg = await asyncio.wait_for(h.receive(), 5)
        if msg.type != aiohttp.WSMsgType.BINARY:
            break
        f = decode(msg.data)
        if f.kind == RESET and f.reason == STREAM_RATE_LIMITED:
            refused += 1
    # the 21st refusal in a row dropped the socket at once (Resets still queued go with it)
    assert 8 <= refused <= 20
    text = await metrics_text(http, server)
    assert metric(text, "streams_refused_total", '{reason="stream_rate_limited"}') == 21
    assert metric(text, "connections_dropped_total", f'{{reason="{STREAM_FLOOD}"}}') == 1
    await good.send_bytes(data("good", 1))  # the well-behaved harness still routes
    seen = []
    while True:
        f = await recv(ex)
        if f.stream_id == "good":
            break
        seen.append((f.stream_id, f.kind))
    assert (f.stream_id, f.seq) == ("good", 1)
    # before it: the flooder's two admitted streams (their Data, then their end), nothing else
    assert {sid for sid, _ in seen} == {"f0", "f1"}


# -- item 11: the executor learns about streams that expired while it was away -----------
async def test_streams_expired_in_executor_absence_are_reset_on_return(make_server, http) -> None:
    server = await make_server(executor_grace=0.3)
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    await h.send_bytes(resume("rel", 1))  # reliable: the executor keeps it across reconnects
    await recv_raw(ex)
    await h.send_bytes(data("leg", 0))    # legacy: forgotten by the executor anyway
    await recv_raw(ex)
    await ex.close()
    resets = {(f.stream_id, f.reason) for f in [await recv(h), await recv(h)]}
    assert resets == {("rel", EXECUTOR_UNAVAILABLE), ("leg", EXECUTOR_UNAVAILABLE)}
    ex2 = await connect_executor(http, server, "e")
    f = await recv(ex2)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "rel", EXECUTOR_UNAVAILABLE)
    await expect_silence(ex2)


# -- item 12: adoption bound to the opening credential ----------------------------------
async def test_orphaned_stream_is_resumed_only_with_the_same_token(make_server, http) -> None:
    server = await make_server(harness_grace=5.0)
    ex = await connect_executor(http, server, "e")
    url = server.harness_url("e", ttl=3600)
    other_url = server.harness_url("e", ttl=7200)  # another valid token for the same executor
    owner = await http.ws_connect(url)
    await owner.send_bytes(resume("rel", 1))
    await recv_raw(ex)
    await owner.close()
    await asyncio.sleep(0.1)
    intruder = await http.ws_connect(other_url)
    await intruder.send_bytes(resume("rel", 1))
    f = await recv(intruder)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "rel", STREAM_IN_USE)
    await expect_silence(ex)
    # The owner's token, spelled differently (extra padding), is the same credential.
    back = await http.ws_connect(url + "=")
    await back.send_bytes(resume("rel", 1))
    assert await recv_raw(ex) == resume("rel", 1)


# -- item 13: queue caps, oversized frames, registry cost -------------------------------
async def test_oversized_frame_on_unbound_stream_is_reset_to_sender(make_server, http) -> None:
    server = await make_server(max_frame_bytes=4096)
    ex = await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    await h.send_bytes(encode_data("new", 0, 0, 0, b"x" * 5000))
    f = await recv(h)
    assert (f.kind, f.stream_id, f.reason) == (RESET, "new", FRAME_TOO_LARGE)
    await expect_silence(ex)


async def test_message_limit_follows_the_frame_limit(make_server, http) -> None:
    """A message far above the frame limit closes the socket instead of being buffered."""
    server = await make_server(max_frame_bytes=8 * 1024)
    await connect_executor(http, server, "e")
    h = await connect_harness(http, server, "e")
    await h.send_bytes(encode_data("b", 1, 0, 0, b"q" * (256 * 1024)))
    msg = await asyncio.wait_for(h.receive(), 3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_executor_queue_cap_is_total_over_harnesses(make_server, http) -> None:
    high = 256 * 1024
    server = await make_server(executor_high_water=high)
    ex = await connect_executor(http, server, "e")
    harnesses = [await connect_harness(http, server, "e") for _ in range(12)]
    chunk = 64 * 1024
    frames = {i: [encode_data(f"s{i}", n, 0, 0, bytes([i]) * chunk) for n in range(40)]
              for i in range(len(harnesses))}

    async def pump(i: int) -> None:
        for f in frames[i]:
            await harnesses[i].send_bytes(f)

    tasks = [asyncio.ensure_future(pump(i)) for i in range(len(harnesses))]
    await asyncio.sleep(1.5)  # the executor reads nothing meanwhile
    backlog = server.router.executor_backlog("e")
    # Crossing the mark stops every harness before its next frame: one frame of slack in
    # all, not 1 MiB per harness (12 MiB here).
    assert backlog <= high + 2 * chunk + 4096, backlog
    total = sum(len(v) for v in frames.values())
    got = [await recv_raw(ex, 10) for _ in range(total)]
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert sorted(got) == sorted(f for v in frames.values() for f in v)


def test_register_does_not_scan_all_registrations(monkeypatch) -> None:
    visited = [0]

    class CountingDict(OrderedDict):
        def __iter__(self):
            for k in OrderedDict.__iter__(self):
                visited[0] += 1
                yield k

        def items(self):
            for kv in OrderedDict.items(self):
                visited[0] += 1
                yield kv

    d = LocalExecutorDirectory(max_registrations=1000)
    d._registrations = CountingDict()
    for i in range(1000):
        d.remember_registration(f"u{i}", f"r{i}", 300.0)
    visited[0] = 0
    for i in range(1000, 1100):  # full, nothing expired: each evicts the oldest
        d.remember_registration(f"u{i}", f"r{i}", 300.0)
    assert visited[0] <= 3 * 100, visited[0]
    assert len(d._registrations) == 1000
    assert d.registration_of("u1099") == "r1099" and d.registration_of("u0") is None


# -- item 16: token spelling and /metrics access ----------------------------------------
def test_token_spellings_have_one_fingerprint() -> None:
    secret = b"rendezvous-test-secret-0123456789"
    from execrelay.rendezvous.tokens import mint

    token = mint(secret, "executor", "e", 3600)
    prefix, expiry, mac = token.split(".")
    spellings = [token, token + "==", f"{prefix}.{expiry}.{mac.rstrip('=')}",
                 f"{prefix}.00{expiry}.{mac}"]
    assert all(verify(secret, t, "executor", "e") for t in spellings)
    assert len({token_fingerprint(t) for t in spellings}) == 1
    assert not verify(secret, f"{prefix}.{expiry}.{mac[:-3]}!{mac[-2:]}", "executor", "e")


async def test_respelled_executor_url_token_is_the_same_registration(make_server, http) -> None:
    server = await make_server()
    url = await register(http, server, "e")
    first = await http.ws_connect(url)
    # Same registration, token spelled with extra padding: a takeover, not a 409 conflict.
    second = await http.ws_connect(url + "==")
    h = await connect_harness(http, server, "e")
    await h.send_bytes(data("s", 0))
    assert await recv_raw(second) == data("s", 0)
    await first.close()


async def test_metrics_can_require_a_bearer(make_server, http) -> None:
    server = await make_server(metrics_token="scrape-secret")
    async with http.get(f"{server.url}/metrics") as resp:
        assert resp.status == 401
    async with http.get(f"{server.url}/metrics",
                        headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
    async with http.get(f"{server.url}/metrics",
                        headers={"Authorization": "Bearer scrape-secret"}) as resp:
        assert resp.status == 200
        assert "execrelay_rendezvous_streams" in await resp.text()
