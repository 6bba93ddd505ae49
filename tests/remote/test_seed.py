"""The upstream change's own scenario (shared/seed), ported: two virtual streams over one
executor websocket, legacy (0.131.0) framing, no cross-talk, a Reset of one leaves the other."""
from __future__ import annotations

import orjson

from execrelay import wire


def data(stream: str, seq: int, message: dict) -> bytes:
    return wire.encode_data(stream, seq, 0, 0, orjson.dumps(message))


def initialize(rid: int, name: str) -> dict:
    return {"id": rid, "method": "initialize", "params": {"clientName": name, "resumeSessionId": None}}


async def read_by_stream(fake, count: int) -> dict:
    out = {}
    for _ in range(count):
        f = await fake.recv()
        assert f.kind == wire.DATA
        assert f.stream_id not in out, f"duplicate response for {f.stream_id}"
        out[f.stream_id] = (f, orjson.loads(f.payload))
    return out


async def test_multiplexed_remote_executor_routes_independent_virtual_streams(fake_rendezvous, remote_executor):
    fake = fake_rendezvous
    await fake.accept()
    assert fake.auth_seen == ["Bearer registry-token"]
    await fake.send(data("stream-a", 0, initialize(1, "relay-test-a")))
    await fake.send(data("stream-b", 0, initialize(1, "relay-test-b")))
    replies = await read_by_stream(fake, 2)
    session_a = replies["stream-a"][1]["result"]["sessionId"]
    session_b = replies["stream-b"][1]["result"]["sessionId"]
    assert session_a != session_b
    for sid in ("stream-a", "stream-b"):
        frame, msg = replies[sid]
        # 0.131.0 framing on a legacy stream: seq 0, no acks, one unsplit segment
        assert (frame.seq, frame.ack, frame.ack_bits, frame.segment_index, frame.segment_count) == (0, 0, 0, 0, 1)
        assert msg["id"] == 1 and "jsonrpc" not in msg

    await fake.send(data("stream-a", 1, {"method": "initialized", "params": {}}))
    await fake.send(data("stream-b", 1, {"method": "initialized", "params": {}}))
    await fake.send(data("stream-a", 2, {"id": 2, "method": "test/unknown-a", "params": {}}))
    await fake.send(data("stream-b", 2, {"id": 2, "method": "test/unknown-b", "params": {}}))
    replies = await read_by_stream(fake, 2)
    for sid, method in (("stream-a", "test/unknown-a"), ("stream-b", "test/unknown-b")):
        frame, msg = replies[sid]
        assert frame.seq == 1
        assert msg["id"] == 2 and msg["error"]["code"] == -32601 and method in msg["error"]["message"]

    await fake.send(wire.encode_control(wire.RESET, "stream-a", reason="test_reset"))
    await fake.send(data("stream-b", 3, {"id": 3, "method": "test/unknown-b-after-reset", "params": {}}))
    frame = await fake.recv()
    assert frame.stream_id == "stream-b" and frame.seq == 2
    msg = orjson.loads(frame.payload)
    assert msg["id"] == 3 and "test/unknown-b-after-reset" in msg["error"]["message"]

    # the reset stream id is usable again: a new, uninitialized stream (0.131.0 obs M')
    await fake.send(data("stream-a", 0, {"id": 9, "method": "process/read", "params": {"processId": "x"}}))
    frame = await fake.recv()
    assert frame.stream_id == "stream-a" and frame.seq == 0
    assert "initialize" in orjson.loads(frame.payload)["error"]["message"]


async def test_garbage_frames_do_not_disturb_other_streams(fake_rendezvous, remote_executor):
    fake = fake_rendezvous
    await fake.accept()
    await fake.send(data("good", 0, initialize(1, "good")))
    assert (await fake.recv()).stream_id == "good"
    for junk in (b"\xff\xff\xff", b"", wire.encode_data("x", 0, 0, 0, b"{not json"),
                 b"\x08\x02\x12\x04good\x4a\x00", wire.encode_data("good", 5, 0, 0, b"[1,2]")):
        await fake.send(junk)
    await fake.ws.send_str('{"id":5,"method":"initialize"}')  # text frames are dropped
    await fake.send(data("good", 1, {"method": "initialized", "params": {}}))
    await fake.send(data("good", 2, {"id": 2, "method": "nope", "params": {}}))
    frame = await fake.recv()
    assert frame.stream_id == "good"
    assert frame.kind == wire.DATA, frame
    assert orjson.loads(frame.payload)["id"] == 2


async def test_sessions_survive_websocket_loss_and_resume(fake_rendezvous, remote_executor):
    """0.131.0 obs RC: after a drop the executor re-registers; resumeSessionId gets the same
    session back over the new websocket, and a process started before the drop is readable."""
    fake = fake_rendezvous
    await fake.accept()
    await fake.send(data("s1", 0, initialize(1, "rc")))
    sid = orjson.loads((await fake.recv()).payload)["result"]["sessionId"]
    await fake.send(data("s1", 1, {"method": "initialized", "params": {}}))
    await fake.send(data("s1", 2, {"id": 2, "method": "process/start", "params": {
        "processId": "p2", "argv": ["/bin/sh", "-c", "echo before-drop; sleep 0.3"], "cwd": "/",
        "env": {"PATH": "/usr/bin:/bin"}, "tty": False}}))
    assert orjson.loads((await fake.recv()).payload) == {"id": 2, "result": {"processId": "p2"}}
    registrations = fake.registrations
    await fake.drop()
    await fake.accept()
    assert fake.registrations == registrations + 1
    await fake.send(data("s2", 0, initialize(1, "rc") | {"params": {"clientName": "rc", "resumeSessionId": sid}}))
    assert orjson.loads((await fake.recv()).payload)["result"]["sessionId"] == sid
    await fake.send(data("s2", 1, {"method": "initialized", "params": {}}))
    await fake.send(data("s2", 2, {"id": 3, "method": "process/read", "params": {"processId": "p2", "waitMs": 2000}}))
    while True:
        frame = await fake.recv()
        msg = orjson.loads(frame.payload)
        if msg.get("id") == 3:
            break
    import base64
    text = b"".join(base64.b64decode(c["chunk"]) for c in msg["result"]["chunks"])
    assert b"before-drop" in text


async def test_registry_errors_are_retried_not_fatal(fake_rendezvous):
    import asyncio

    from execrelay.executor import ExecServer
    from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig

    fake = fake_rendezvous
    fake.register_status = 503
    config = RemoteExecutorConfig.with_bearer_token(fake.base, "retry-me", "registry-token")
    config.backoff_initial, config.backoff_max = 0.02, 0.05
    server = ExecServer()
    executor = RemoteExecutor(config, server)
    task = asyncio.ensure_future(executor.run())
    try:
        for _ in range(200):
            if fake.registrations >= 3:
                break
            await asyncio.sleep(0.02)
        assert fake.registrations >= 3 and not task.done()
        fake.register_status = 200
        await fake.accept()
        assert executor.registrations == 1
    finally:
        executor.close()
        await asyncio.wait_for(task, 10)
        await server.aclose()


async def test_reply_over_the_legacy_frame_limit_is_an_error_not_a_reset(fake_rendezvous, remote_executor, tmp_path):
    """A 0.131.0 peer cannot take frames over 16 MiB: the request gets a JSON-RPC error and the
    stream (and session) go on."""
    fake = fake_rendezvous
    await fake.accept()
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (13 * 1024 * 1024))  # base64: ~17.3 MiB of JSON
    await fake.send(data("s", 0, initialize(1, "big")))
    assert orjson.loads((await fake.recv()).payload)["id"] == 1
    await fake.send(data("s", 1, {"method": "initialized", "params": {}}))
    await fake.send(data("s", 2, {"id": 2, "method": "fs/readFile", "params": {"path": str(big)}}))
    frame = await fake.recv(timeout=20)
    msg = orjson.loads(frame.payload)
    assert frame.kind == wire.DATA and msg["id"] == 2
    assert msg["error"]["code"] == -32603 and "too large" in msg["error"]["message"]
    await fake.send(data("s", 3, {"id": 3, "method": "fs/getMetadata", "params": {"path": str(big)}}))
    assert orjson.loads((await fake.recv()).payload)["result"]["isFile"] is True


async def test_large_legacy_reply_is_byte_identical_and_the_stream_goes_on(fake_rendezvous, remote_executor,
                                                                          tmp_path):
    """A reply over wire.split.SPLIT_MIN_BYTES leaves as head + payload (no copy); the peer
    receives exactly the frame encode_data would have built, and small replies follow it."""
    import base64
    import os

    fake = fake_rendezvous
    await fake.accept()
    blob = os.urandom(3 * 1024 * 1024 + 5)  # ~4 MiB of base64
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    await fake.send(data("s", 0, initialize(1, "split")))
    assert orjson.loads((await fake.recv()).payload)["id"] == 1
    await fake.send(data("s", 1, {"method": "initialized", "params": {}}))
    await fake.send(data("s", 2, {"id": 2, "method": "fs/readFile", "params": {"path": str(path)}}))
    frame = await fake.recv(timeout=20)
    assert frame.kind == wire.DATA and frame.seq == 1 and frame.segment_count == 1
    msg = orjson.loads(frame.payload)
    assert msg["id"] == 2 and base64.b64decode(msg["result"]["dataBase64"]) == blob
    await fake.send(data("s", 3, {"id": 3, "method": "fs/getMetadata", "params": {"path": str(path)}}))
    assert orjson.loads((await fake.recv()).payload)["result"]["isFile"] is True
