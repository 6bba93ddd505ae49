"""The JSON-RPC layer: envelope, parse errors, closing cases, handshake, gating, ordering."""
from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from .conftest import Client

pytestmark = pytest.mark.timeout(30)
PREFIX = "failed to parse JSON-RPC message from exec-server stdio: "
NO_VARIANT = "data did not match any variant of untagged enum JSONRPCMessage"


async def test_initialize_result_and_no_jsonrpc_member(new_client) -> None:
    c: Client = new_client()
    c.send('{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"clientName":"t","resumeSessionId":null}}')
    resp = await c.response(1)
    assert set(resp) == {"id", "result"}
    assert str(uuid.UUID(resp["result"]["sessionId"])) == resp["result"]["sessionId"]
    assert c.raw[0].startswith(b'{"id":1,"result":{"sessionId":"')


@pytest.mark.parametrize("rid", ["abc", -5, 0, 9223372036854775807, -9223372036854775808])
async def test_request_id_echoed_with_same_type(client: Client, rid) -> None:
    resp = await client.call("foo/bar", {}, id=rid)
    assert resp == {"error": {"code": -32601, "message": "exec-server stub does not implement `foo/bar` yet"},
                    "id": rid}


async def test_unknown_method_exact_bytes(client: Client) -> None:
    client.send(b'{"id":10,"method":"foo/bar"}')
    await client.response(10)
    assert client.raw[-1] == b'{"error":{"code":-32601,"message":"exec-server stub does not implement `foo/bar` yet"},"id":10}'


async def test_trace_and_extra_members_ignored(client: Client) -> None:
    client.send({"id": 5, "method": "fs/getMetadata", "params": {"path": "/tmp", "zzz": 1},
                 "trace": {"traceparent": "00-x"}, "extra": True})
    assert (await client.response(5))["result"]["isDirectory"] is True


@pytest.mark.parametrize("raw, text", [
    ("hello", "expected value at line 1 column 1"),
    ("nonsense", "expected ident at line 1 column 2"),  # serde reads `null` from the `n` on
    ('{"a": tru}', "expected ident at line 1 column 10"),
    ("{}", NO_VARIANT),
    ('[{"id":1,"method":"foo"}]', NO_VARIANT),
    ('{"id":1,"method":5}', NO_VARIANT),
    ('{"id":1,"method":"foo"}\n{"id":2,"method":"foo"}', "trailing characters at line 2 column 1"),
    (b"\xff\xfe", None),
])
async def test_malformed_gets_id_minus_one_and_connection_lives(client: Client, raw, text) -> None:
    client.send(raw)
    err = await client.response(-1)
    assert err["error"]["code"] == -32600
    assert err["error"]["message"].startswith(PREFIX)
    if text is not None:
        assert err["error"]["message"] == PREFIX + text
    assert not client.closed_by_server
    assert "result" in await client.call("fs/getMetadata", {"path": "/"})


async def test_single_trailing_newline_accepted(client: Client) -> None:
    client.send(b'{"id":3,"method":"foo/bar"}\n')
    assert (await client.response(3))["error"]["code"] == -32601


@pytest.mark.parametrize("raw", [
    '{"method":"foo","params":{}}',
    '{"id":9,"result":{}}',
    '{"id":9,"error":{"code":1,"message":"x"}}',
    '{"id":null,"method":"foo/bar"}',
    '{"id":1.5,"method":"foo/bar"}',
    '{"id":true,"method":"foo/bar"}',
    '{"id":18446744073709551615,"method":"foo/bar"}',
    '{"method":"initialize","params":{"clientName":"t"}}',
])
async def test_connection_closing_messages(client: Client, raw) -> None:
    n = len(client.messages)
    client.send(raw)
    assert client.closed_by_server
    assert len(client.messages) == n  # no reply at all
    assert client.conn.closed


async def test_initialized_before_initialize_closes(new_client) -> None:
    c: Client = new_client()
    c.send({"method": "initialized", "params": {}})
    assert c.closed_by_server and c.messages == []


@pytest.mark.parametrize("params", [None, {}, [1, 2]])
async def test_initialized_params_ignored(new_client, params) -> None:
    c: Client = new_client()
    await c.result("initialize", {"clientName": "t"})
    msg = {"method": "initialized"}
    if params is not None:
        msg["params"] = params
    c.send(msg)
    c.send(msg)  # twice is harmless
    assert "result" in await c.call("fs/getMetadata", {"path": "/tmp"})
    assert not c.closed_by_server


async def test_initialized_as_request_is_unknown_method(new_client) -> None:
    c: Client = new_client()
    await c.result("initialize", {"clientName": "t"})
    assert await c.error("initialized", {}) == (-32601, "exec-server stub does not implement `initialized` yet")
    assert await c.error("fs/getMetadata", {"path": "/tmp"}) == (
        -32600, "client must send initialized before using filesystem methods")


async def test_initialize_errors_and_retry(new_client) -> None:
    c: Client = new_client()
    assert await c.error("initialize", {}) == (-32602, "missing field `clientName`")
    resp = await c.call("initialize", None, null_params=True)
    assert resp["error"] == {"code": -32602, "message": "invalid type: null, expected struct InitializeParams"}
    assert await c.error("initialize", {"clientName": 5}) == (-32602, "invalid type: integer `5`, expected a string")
    assert await c.error("initialize", {"clientName": "t", "resumeSessionId": "nope"}) == (
        -32600, "unknown session id nope")
    await c.result("initialize", {"clientName": "t"})
    assert await c.error("initialize", {"clientName": "t"}) == (
        -32600, "initialize may only be sent once per connection")


@pytest.mark.parametrize("method, params, family", [
    ("fs/getMetadata", {"path": "/tmp"}, "filesystem"),
    ("process/read", {"processId": "x"}, "exec"),
    ("process/start", {"processId": "x", "argv": ["true"], "cwd": "/", "env": {}, "tty": False}, "exec"),
    ("http/request", {"method": "GET", "url": "http://127.0.0.1:1/", "requestId": "r"}, "http"),
])
async def test_gating_before_initialize(new_client, method, params, family) -> None:
    c: Client = new_client()
    assert await c.error(method, params) == (-32600, f"client must call initialize before using {family} methods")
    # params are decoded before the gate
    assert (await c.error(method, {}))[0] == -32602


async def test_null_params_for_struct_methods(client: Client) -> None:
    for method, name in [("fs/getMetadata", "FsGetMetadataParams"), ("process/start", "ExecParams"),
                         ("process/read", "ReadParams"), ("http/request", "HttpRequestParams")]:
        resp = await client.call(method, None, null_params=True)
        assert resp["error"] == {"code": -32602, "message": f"invalid type: null, expected struct {name}"}
        resp = await client.call(method)
        assert resp["error"]["message"] == f"invalid type: null, expected struct {name}"


async def test_pipelining_keeps_order_and_queues_behind_async_handler(client: Client) -> None:
    await client.result("process/start", {"processId": "s", "argv": ["/bin/sleep", "5"], "cwd": "/",
                                          "env": {}, "tty": False})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    client.send({"id": 1, "method": "process/read", "params": {"processId": "s", "waitMs": 300}})
    client.send({"id": 2, "method": "fs/getMetadata", "params": {"path": "/tmp"}})
    client.send({"id": 3, "method": "foo/bar"})
    r2 = await client.response(2)
    assert loop.time() - t0 >= 0.28
    ids = [m["id"] for m in client.messages if "id" in m and m["id"] in (1, 2, 3)]
    assert ids == [1, 2, 3]
    assert "result" in r2


async def test_other_connections_not_delayed(server, new_client) -> None:
    a: Client = new_client()
    b: Client = new_client()
    await a.handshake()
    await b.handshake()
    await a.result("process/start", {"processId": "s", "argv": ["/bin/sleep", "5"], "cwd": "/", "env": {},
                                     "tty": False})
    a.send({"id": 1, "method": "process/read", "params": {"processId": "s", "waitMs": 2000}})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert "result" in await b.call("fs/getMetadata", {"path": "/tmp"})
    assert loop.time() - t0 < 0.2


async def test_duplicate_inflight_ids_each_answered(client: Client) -> None:
    client.send({"id": 7, "method": "foo/bar"})
    client.send({"id": 7, "method": "foo/bar"})
    await client.response(7)
    assert sum(1 for m in client.messages if m.get("id") == 7) == 2


async def test_sync_path_creates_no_task(client: Client) -> None:
    """The hot path (answerable at once) must not create a Task (issue 8)."""
    before = len(asyncio.all_tasks())
    for i in range(50):
        client.send(orjson.dumps({"id": i, "method": "fs/getMetadata", "params": {"path": "/tmp"}}))
        client.send(orjson.dumps({"id": i, "method": "nope"}))
    assert len(asyncio.all_tasks()) == before
    assert len([m for m in client.messages if m.get("id") in range(50)]) == 100


async def test_queue_behind_async_handler_pauses_reading(server) -> None:
    """Many requests queued behind a long poll: the transport is told to stop reading, then resume."""
    from execrelay.executor import RpcConnection

    out: list[bytes] = []
    flow: list[bool] = []
    conn = RpcConnection(server, out.append, None, pause_reading=flow.append)
    conn.feed(b'{"id":1,"method":"initialize","params":{"clientName":"t"}}')
    conn.feed(b'{"method":"initialized"}')
    conn.feed(b'{"id":2,"method":"process/start","params":{"processId":"s","argv":["/bin/sleep","5"],'
              b'"cwd":"/","env":{},"tty":false}}')
    conn.feed(b'{"id":3,"method":"process/read","params":{"processId":"s","waitMs":200}}')
    for i in range(300):
        conn.feed(orjson.dumps({"id": 100 + i, "method": "nope"}))
    assert flow == [True]
    await asyncio.sleep(0.4)
    assert flow == [True, False]
    ids = [orjson.loads(m).get("id") for m in out]
    assert ids == [1, 2, 3] + list(range(100, 400))
    conn.close()


async def test_write_pause_stops_request_intake(server) -> None:
    """A peer that does not read our output is not read from either (bounded memory)."""
    from execrelay.executor import RpcConnection

    flow: list[bool] = []
    conn = RpcConnection(server, lambda b: None, None, pause_reading=flow.append)
    conn.pause_writing()
    assert flow == [True]
    conn.resume_writing()
    assert flow == [True, False]
    conn.close()


async def test_server_dispatches_on_the_method_table_it_receives() -> None:
    """``ExecServer(handlers=...)``: the connection dispatches on exactly that table, and a
    handler reaches the caller's session through the connection it is given."""
    from execrelay.executor import METHODS, ExecServer, RpcConnection
    from execrelay.executor.session import gate

    def whoami(conn: RpcConnection, params: object) -> object:
        return {"sessionId": gate(conn, "test").id, "params": params}

    server = ExecServer(handlers={"initialize": METHODS["initialize"], "test/whoami": whoami})
    out: list[bytes] = []
    conn = RpcConnection(server, out.append)
    try:
        conn.feed(b'{"id":1,"method":"initialize","params":{"clientName":"t"}}')
        conn.feed(b'{"method":"initialized"}')
        conn.feed(b'{"id":2,"method":"test/whoami","params":[7]}')
        conn.feed(b'{"id":3,"method":"fs/getMetadata","params":{"path":"/"}}')
        replies = [orjson.loads(m) for m in out]
        session_id = replies[0]["result"]["sessionId"]
        assert replies[1] == {"id": 2, "result": {"sessionId": session_id, "params": [7]}}
        assert replies[2]["id"] == 3 and replies[2]["error"]["code"] == -32601
        assert "fs/getMetadata" in METHODS and "fs/getMetadata" in ExecServer().handlers
    finally:
        conn.close()
        await server.aclose()
