"""Registry and websocket authentication: 401 before anything happens."""
from __future__ import annotations

import aiohttp
import pytest

from _rdv_helpers import connect_executor, connect_harness, expect_silence, metric, metrics_text, recv_raw, register, resume
from execrelay.rendezvous import tokens


async def _post(http, server, executor_id, headers):
    async with http.post(f"{server.url}/cloud/executor/{executor_id}/register", headers=headers) as resp:
        return resp.status, await resp.text()


async def test_register_ok_returns_executor_url(make_server, http) -> None:
    server = await make_server()
    url = await register(http, server, "exec-1")
    prefix = f"{server.ws_url}/executor/exec-1?sig="
    assert url.startswith(prefix)
    assert tokens.verify(b"rendezvous-test-secret-0123456789", url[len(prefix):], "executor", "exec-1")


@pytest.mark.parametrize("case", ["missing", "not_bearer", "wrong", "expired", "other_id", "harness_role"])
async def test_register_refused(make_server, http, case) -> None:
    server = await make_server()
    good = server.mint_token("executor", "exec-1")
    headers = {
        "missing": {},
        "not_bearer": {"Authorization": good},
        "wrong": {"Authorization": "Bearer " + good[:-2] + ("AA" if not good.endswith("AA") else "BB")},
        "expired": {"Authorization": "Bearer " + server.mint_token("executor", "exec-1", ttl=-5)},
        "other_id": {"Authorization": "Bearer " + server.mint_token("executor", "exec-2")},
        "harness_role": {"Authorization": "Bearer " + server.mint_token("harness", "exec-1")},
    }[case]
    status, body = await _post(http, server, "exec-1", headers)
    assert status == 401
    assert "unauthorized" in body
    text = await metrics_text(http, server)
    assert metric(text, "registrations_total") == 0
    assert metric(text, "auth_failures_total", '{endpoint="register"}') == 1
    assert metric(text, "executors_connected") == 0


async def test_executor_socket_bad_token_is_401_before_upgrade(make_server, http) -> None:
    server = await make_server()
    bad = [
        f"{server.ws_url}/executor/exec-1",
        f"{server.ws_url}/executor/exec-1?sig=garbage",
        f"{server.ws_url}/executor/exec-1?sig={server.mint_token('executor', 'exec-2')}",
        f"{server.ws_url}/executor/exec-1?sig={server.mint_token('harness', 'exec-1')}",
        f"{server.ws_url}/executor/exec-1?sig={server.mint_token('executor', 'exec-1', ttl=-1)}",
    ]
    for url in bad:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url)
        assert info.value.status == 401, url
    text = await metrics_text(http, server)
    assert metric(text, "auth_failures_total", '{endpoint="executor"}') == len(bad)
    assert metric(text, "connections_total", '{role="executor"}') == 0


async def test_harness_socket_bad_token_is_401_before_upgrade(make_server, http) -> None:
    server = await make_server()
    base = f"{server.ws_url}/harness?role=harness&executor_id=exec-1"
    bad = [
        base,
        base + "&sig=nope",
        base + "&sig=" + server.mint_token("harness", "exec-2"),
        base + "&sig=" + server.mint_token("executor", "exec-1"),
        base + "&sig=" + server.mint_token("harness", "exec-1", ttl=-1),
    ]
    for url in bad:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url)
        assert info.value.status == 401, url
    # A harness URL without role=harness or executor_id is not a relay URL at all.
    token = server.mint_token("harness", "exec-1")
    for url in (f"{server.ws_url}/harness?executor_id=exec-1&sig={token}",
                f"{server.ws_url}/harness?role=harness&sig={token}"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(url)
        assert info.value.status == 400
    text = await metrics_text(http, server)
    assert metric(text, "auth_failures_total", '{endpoint="harness"}') == len(bad)
    assert metric(text, "connections_total", '{role="harness"}') == 0


async def test_harness_for_a_cannot_reach_b(make_server, http) -> None:
    server = await make_server()
    ex_a = await connect_executor(http, server, "A")
    ex_b = await connect_executor(http, server, "B")
    # A token for A presented with executor_id=B is refused.
    url = f"{server.ws_url}/harness?role=harness&executor_id=B&sig={server.mint_token('harness', 'A')}"
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(url)
    assert info.value.status == 401
    # A harness for A reaches A only, even using a stream id that B's harness uses.
    h_a = await connect_harness(http, server, "A")
    h_b = await connect_harness(http, server, "B")
    await h_a.send_bytes(resume("s1"))
    await h_b.send_bytes(resume("s1", 0))
    assert await recv_raw(ex_a) == resume("s1")
    assert await recv_raw(ex_b) == resume("s1", 0)
    await expect_silence(ex_a)
    await expect_silence(ex_b)
    for ws in (ex_a, ex_b, h_a, h_b):
        await ws.close()


async def test_takeover_only_with_same_registration(make_server, http) -> None:
    server = await make_server()
    reg_token = server.mint_token("executor", "exec-1", ttl=1000)
    first = await connect_executor(http, server, "exec-1", token=reg_token)
    # Another valid executor token (a different registration) cannot take the id over.
    other = server.mint_token("executor", "exec-1", ttl=2000)
    url = await register(http, server, "exec-1", token=other)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(url)
    assert info.value.status == 409
    # The same registration token (a restarted executor) does: the old socket is closed.
    second = await connect_executor(http, server, "exec-1", token=reg_token)
    msg = await first.receive(timeout=3)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    h = await connect_harness(http, server, "exec-1")
    await h.send_bytes(resume("s"))
    assert await recv_raw(second) == resume("s")
    text = await metrics_text(http, server)
    assert metric(text, "takeovers_total") == 1
    assert metric(text, "connections", '{role="executor"}') == 1
    for ws in (second, h):
        await ws.close()
