"""Real codex 0.171.0 binaries meeting on our rendezvous over the Noise relay (loopback).

The real ``codex exec-server --remote URL --environment-id ID`` (bearer from ``CODEX_API_KEY`` =
our executor token) registers at our Noise registry and dials our rendezvous; then

(a) our Python initiator (``execrelay.stream.noise``) gets the executor's key from ``/connect``,
    completes the hybrid IK handshake with the real executor, initializes a session and runs
    ``echo`` through ``process/start``;
(b) the real 0.171.0 harness (``codex exec`` with ``CODEX_EXEC_SERVER_NOISE_*``) runs a shell
    tool call on the real executor through our rendezvous.

The rendezvous runs in-process so the tests can also check what it forwarded: ciphertext only.
"""
from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from execrelay import wire
from execrelay.rendezvous import RendezvousServer
from execrelay.stream import noise
from execrelay.stream.noise_stream import ExecutorNoiseStream, HarnessNoiseStream

from execrelay.harness import DIALECT_171, HarnessClient

from .harness import run_codex_exec, write_codex_home
from .procs import REMOTE_TOKEN_ENV

pytestmark = [pytest.mark.interop, pytest.mark.timeout(150)]

SECRET = b"interop-noise171-secret-0123456789abcdef"
TAG_ENV = "EXECRELAY_TEST_EXECUTOR_TAG"


class Capture:
    """Everything the rendezvous forwarded, for the no-plaintext check.  Make it before the
    sockets connect: it turns the compiled frame path off (``fast_frames``), which never calls
    the router's functions it taps."""

    def __init__(self, server: RendezvousServer) -> None:
        self.frames: list[bytes] = []
        server.fast_frames = False
        router = server.router
        for name in ("from_harness", "from_executor"):
            original = getattr(router, name)

            def tap(link: Any, data: Any, _original: Any = original) -> Any:
                if isinstance(data, (bytes, bytearray)):
                    self.frames.append(bytes(data))
                return _original(link, data)
            setattr(router, name, tap)


async def _start(process_factory, codex171_bin: Path | None, tag: str) -> tuple[RendezvousServer, str, Any, Capture]:
    """Our rendezvous in-process and a remote executor process on it: the real 0.171 one, or
    ours (``execrelay exec-server --remote``, Noise by default) when ``codex171_bin`` is None."""
    server = RendezvousServer(SECRET, heartbeat=None)
    capture = Capture(server)
    await server.start("127.0.0.1", 0)
    env_id = f"env-{uuid.uuid4().hex[:8]}"
    token = server.mint_token("executor", env_id)
    if codex171_bin is None:
        executor = process_factory(
            [sys.executable, "-m", "execrelay", "exec-server", "--remote", server.url, "--environment-id", env_id],
            {REMOTE_TOKEN_ENV: token, TAG_ENV: tag}, wait_url=False, name="ours-noise-executor")
    else:
        executor = process_factory(
            [str(codex171_bin), "exec-server", "--remote", server.url, "--environment-id", env_id],
            {"CODEX_API_KEY": token, TAG_ENV: tag}, wait_url=False, name="real171-noise-executor")
    deadline = time.monotonic() + 30
    while server.metrics.connections["executor"] < 1:
        if time.monotonic() > deadline or (executor.proc is not None and executor.proc.poll() is not None):
            await server.aclose()
            raise AssertionError(f"executor did not connect:\n{executor.stderr_text()[-3000:]}")
        await asyncio.sleep(0.1)
    return server, env_id, executor, capture


class NoiseHarnessDriver:
    """A minimal Noise harness over one websocket: our HarnessNoiseStream, JSON-RPC in records."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, stream: HarnessNoiseStream) -> None:
        self.ws = ws
        self.stream = stream
        self.sid = stream.stream_id
        self.inbox: list[dict[str, Any]] = []

    async def handshake(self) -> None:
        for raw in self.stream.start():
            await self.ws.send_bytes(raw)
        while not self.stream.established:
            frame = await self._next_frame()
            assert frame.kind == wire.HANDSHAKE, frame
            self.stream.receive(frame)

    async def _next_frame(self) -> Any:
        while True:
            msg = await asyncio.wait_for(self.ws.receive(), 20)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            frame = wire.decode(msg.data)
            if frame.stream_id == self.sid:
                return frame

    async def send(self, message: dict[str, Any]) -> None:
        for raw in self.stream.send(json.dumps(message).encode()):
            await self.ws.send_bytes(raw)

    async def receive(self) -> dict[str, Any]:
        while not self.inbox:
            frame = await self._next_frame()
            assert frame.kind == wire.DATA, frame
            assert frame.segment_count == 1 and (frame.ack, frame.ack_bits) == (0, 0)
            self.inbox += [json.loads(m) for m in self.stream.receive(frame)]
        return self.inbox.pop(0)

    async def call(self, rid: int, method: str, params: Any) -> dict[str, Any]:
        await self.send({"id": rid, "method": method, "params": params})
        others: list[dict[str, Any]] = []
        while True:
            msg = await self.receive()
            if msg.get("id") == rid:
                self.inbox[:0] = others  # notifications that came first stay in order
                return msg
            others.append(msg)


def _harness_stream(conn: dict[str, Any], env_id: str, identity: noise.StaticKeyPair) -> HarnessNoiseStream:
    return HarnessNoiseStream(str(uuid.uuid4()), identity,
                              noise.PublicKey.from_json(conn["executor_public_key"]), env_id,
                              conn["executor_registration_id"], conn["harness_key_authorization"])


async def _connect(http: aiohttp.ClientSession, server: RendezvousServer, env_id: str,
                   identity: noise.StaticKeyPair) -> dict[str, Any]:
    async with http.post(f"{server.url}/cloud/environment/{env_id}/connect",
                         headers={"Authorization": f"Bearer {server.mint_token('harness', env_id)}"},
                         json={"harness_public_key": identity.public.to_json()}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return body


async def test_our_initiator_runs_echo_on_the_real_171_executor(process_factory, codex171_bin: Path,
                                                                tmp_path: Path) -> None:
    tag = f"tag-{uuid.uuid4().hex[:8]}"
    server, env_id, executor, capture = await _start(process_factory, codex171_bin, tag)
    try:
        identity = noise.StaticKeyPair.generate()
        token = f"noise-echo-{uuid.uuid4().hex}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            conn = await _connect(http, server, env_id, identity)
            async with http.ws_connect(conn["url"]) as ws:
                driver = NoiseHarnessDriver(ws, _harness_stream(conn, env_id, identity))
                cpu0 = time.process_time()
                await driver.handshake()
                handshake_cpu = time.process_time() - cpu0
                init = await driver.call(1, "initialize", {"clientName": "execrelay-noise-test"})
                assert "sessionId" in init.get("result", {}), init
                await driver.send({"method": "initialized", "params": {}})
                start = await driver.call(2, "process/start", {
                    "processId": "p1", "argv": ["/bin/sh", "-c", f'echo {token}; echo "tag=${TAG_ENV}"'],
                    "cwd": tmp_path.as_uri(), "env": {"PATH": "/usr/bin:/bin", TAG_ENV: tag},
                    "tty": False})
                assert start.get("result", {}).get("processId") == "p1", start
                out = b""
                deadline = time.monotonic() + 20
                closed = False
                while not closed and time.monotonic() < deadline:
                    msg = await driver.receive()
                    params = msg.get("params") or {}
                    if msg.get("method") == "process/output" and params.get("processId") == "p1":
                        out += base64.b64decode(params["chunk"])
                    closed = msg.get("method") == "process/closed"
                assert token.encode() in out and f"tag={tag}".encode() in out, out
        # the rendezvous forwarded only ciphertext: no JSON-RPC and not the echoed token
        blob = b"".join(capture.frames)
        assert capture.frames and token.encode() not in blob
        assert b'"method"' not in blob and b"initialize" not in blob
        print(f"\nour initiator: handshake CPU (with frames and I/O) {handshake_cpu * 1e3:.2f} ms")
    finally:
        await server.aclose()


async def test_real_171_executor_reads_the_record_plaintext_as_a_byte_stream(process_factory,
                                                                             codex171_bin: Path) -> None:
    """What batching (``Transport.seal_many``) relies on, checked on the real executor: several
    messages in one record, and messages cut across records at arbitrary points."""
    server, env_id, executor, _ = await _start(process_factory, codex171_bin, "t")
    try:
        identity = noise.StaticKeyPair.generate()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            conn = await _connect(http, server, env_id, identity)
            async with http.ws_connect(conn["url"]) as ws:
                driver = NoiseHarnessDriver(ws, _harness_stream(conn, env_id, identity))
                await driver.handshake()
                transport = driver.stream.transport
                assert transport is not None
                sid = driver.sid

                async def records(sealed: list[tuple[int, bytes]]) -> None:
                    for seq, record in sealed:
                        await ws.send_bytes(wire.encode_data(sid, seq, 0, 0, record))

                def rpc(obj: dict[str, Any]) -> bytes:
                    return json.dumps(obj).encode()

                # initialize and initialized in one record
                await records(transport.seal_many([
                    rpc({"id": 1, "method": "initialize", "params": {"clientName": "batch"}}),
                    rpc({"method": "initialized", "params": {}})]))
                init = await driver.receive()
                assert init.get("id") == 1 and "sessionId" in init.get("result", {}), init
                # five requests in one record
                await records(transport.seal_many(
                    [rpc({"id": i, "method": "foo/bar", "params": {}}) for i in range(10, 15)]))
                # two requests as one byte stream cut into three records, mid-prefix and mid-JSON
                framed = b"".join(len(m).to_bytes(4, "big") + m for m in (
                    rpc({"id": 20, "method": "foo/bar", "params": {}}),
                    rpc({"id": 21, "method": "foo/bar", "params": {}})))
                cut1, cut2 = 2, len(framed) - 9
                await records([transport.seal_record(framed[:cut1]),
                               transport.seal_record(framed[cut1:cut2]),
                               transport.seal_record(framed[cut2:])])
                answered: set[int] = set()
                while len(answered) < 7:
                    msg = await driver.receive()
                    if "id" in msg:
                        assert msg.get("error", {}).get("code") == -32601, msg
                        answered.add(msg["id"])
                assert answered == {10, 11, 12, 13, 14, 20, 21}
    finally:
        await server.aclose()


async def test_unauthorized_harness_key_is_refused(process_factory, codex171_bin: Path) -> None:
    """An authorization issued for another key: the real executor asks /validate and resets."""
    server, env_id, executor, _ = await _start(process_factory, codex171_bin, "t")
    try:
        identity = noise.StaticKeyPair.generate()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            conn = await _connect(http, server, env_id, noise.StaticKeyPair.generate())
            async with http.ws_connect(conn["url"]) as ws:
                driver = NoiseHarnessDriver(ws, _harness_stream(conn, env_id, identity))
                for raw in driver.stream.start():
                    await ws.send_bytes(raw)
                frame = await driver._next_frame()  # noqa: SLF001
                assert frame.kind == wire.RESET and frame.reason == noise.RESET_REASON, frame
        assert server.metrics.auth_failures["noise_authorization"] >= 1
    finally:
        await server.aclose()


async def _noise_tool_call(codex171_bin: Path, tmp_path: Path, server: Any, env_id: str) -> tuple[str, Any, Any]:
    """The real 0.171 harness (fake model, Noise variables) runs one shell tool call on ``env_id``
    through our rendezvous: ``(token the command echoes, the model, the codex exec result)``."""
    from .fake_model import FakeModel

    token = f"token-{uuid.uuid4().hex}"
    work = tmp_path / "work"
    work.mkdir()
    model = FakeModel(f'echo {token}; echo "tag=${TAG_ENV}"', final_text=f"finished {token}").start()
    try:
        write_codex_home(tmp_path / "codex-home", model.provider_url, work)
        result = await run_codex_exec(
            codex171_bin, codex_home=tmp_path / "codex-home", workdir=work, exec_server_url=None,
            timeout=90, extra_env={
                "CODEX_EXEC_SERVER_NOISE_REGISTRY_URL": server.url,
                "CODEX_EXEC_SERVER_NOISE_ENVIRONMENT_ID": env_id,
                "CODEX_EXEC_SERVER_NOISE_AUTH_TOKEN": server.mint_token("harness", env_id)})
    finally:
        model.stop()
    return token, model, result


@pytest.mark.parametrize("executor_kind", ["real171", "ours"])
async def test_real_171_harness_runs_a_tool(process_factory, codex171_bin: Path, tmp_path: Path,
                                            executor_kind: str) -> None:
    """Real 0.171 ``codex exec`` (Noise variables) -> our rendezvous -> the real 0.171
    executor, or OUR executor process (``execrelay exec-server --remote URL --environment-id
    ID``): the shell tool runs, and only ciphertext crosses the rendezvous."""
    tag = f"tag-{uuid.uuid4().hex[:8]}"
    server, env_id, executor, capture = await _start(
        process_factory, codex171_bin if executor_kind == "real171" else None, tag)
    try:
        token, model, result = await _noise_tool_call(codex171_bin, tmp_path, server, env_id)
        diag = (f"rc={result.returncode}\nstderr:\n{result.stderr[-3000:]}\n"
                f"executor stderr:\n{executor.stderr_text()[-3000:]}")
        assert result.returncode == 0, diag
        outputs = model.tool_outputs()
        assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
        handshakes = [f for f in map(wire.decode, capture.frames) if f.kind == wire.HANDSHAKE]
        assert handshakes, "no Noise handshake went through the rendezvous"
        assert token.encode() not in b"".join(capture.frames)
        if executor_kind == "ours":
            assert "Noise key" in executor.stderr_text()
    finally:
        await server.aclose()


async def test_our_harness_client_runs_typed_calls_on_the_real_171_executor(
        process_factory, codex171_bin: Path, tmp_path: Path) -> None:
    """Our HarnessClient (Noise via /connect) -> our rendezvous -> the real 0.171 executor:
    typed calls work, in 0.171's legacy framing, and only ciphertext crosses."""
    tag = f"tag-{uuid.uuid4().hex[:8]}"
    server, env_id, executor, capture = await _start(process_factory, codex171_bin, tag)
    try:
        (tmp_path / "hello.txt").write_bytes(b"hello noise")
        async with HarnessClient(server.url, environment_id=env_id,
                                 auth_token=server.mint_token("harness", env_id)) as client:
            session = await client.open_session(timeout=30)
            assert session.dialect == DIALECT_171 and client.stream_mode(session) == "legacy"
            meta = await session.fs_get_metadata(tmp_path / "hello.txt")
            assert meta["isFile"] is True
            assert await session.fs_read_file(tmp_path / "hello.txt") == b"hello noise"
            blob = bytes(range(256)) * 1200      # ~400 KB of base64: messages over many records
            await session.fs_write_file(tmp_path / "blob.bin", blob)
            assert await session.fs_read_file(tmp_path / "blob.bin") == blob
            code, out, _ = await session.run(["/bin/sh", "-c", f'echo "tag=${TAG_ENV}"'], tmp_path,
                                             env={"PATH": "/usr/bin:/bin", TAG_ENV: tag})
            assert (code, out) == (0, f"tag={tag}\n".encode())
        blob = b"".join(capture.frames)
        assert b"hello noise" not in blob and tag.encode() not in blob
    finally:
        await server.aclose()


class NoiseBridgeExecutor:
    """Our executor end of the Noise relay (ExecutorNoiseStream) in front of a plain exec-server.

    Registers a fresh static key at our registry, dials the returned websocket, answers each
    harness handshake after asking ``/validate``, and relays the decrypted JSON-RPC of each
    stream over its own plain websocket to ``plain_url`` (one exec-server connection per
    stream, as a 0.171 executor keeps one session per stream).
    """

    def __init__(self, server: RendezvousServer, env_id: str, plain_url: str) -> None:
        self.server = server
        self.env_id = env_id
        self.plain_url = plain_url
        self.identity = noise.StaticKeyPair.generate()
        self.token = server.mint_token("executor", env_id)
        self.registration_id = ""
        self.validations: list[bool] = []
        self.streams: dict[str, ExecutorNoiseStream] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, http: aiohttp.ClientSession, ready: asyncio.Event) -> None:
        auth = {"Authorization": f"Bearer {self.token}"}
        async with http.post(f"{self.server.url}/cloud/environment/{self.env_id}/register", headers=auth,
                             json={"security_profile": noise.SECURITY_PROFILE,
                                   "executor_public_key": self.identity.public.to_json()}) as resp:
            reg = await resp.json()
            assert resp.status == 200, reg
        self.registration_id = reg["executor_registration_id"]
        upstreams: dict[str, aiohttp.ClientWebSocketResponse] = {}
        async with http.ws_connect(reg["url"]) as ws:
            ready.set()
            async for msg in ws:
                frame = wire.decode(msg.data)
                sid = frame.stream_id
                st = self.streams.get(sid)
                if st is None:
                    if frame.kind == wire.RESET:
                        continue
                    st = self.streams[sid] = ExecutorNoiseStream(sid, self.identity, self.env_id,
                                                                 self.registration_id)
                try:
                    messages = st.receive(frame)
                except noise.NoiseError:
                    await ws.send_bytes(st.reset_frame())
                    continue
                if st.closed:
                    up = upstreams.pop(sid, None)
                    if up is not None:
                        await up.close()
                    continue
                if st.request is not None and not st.established:
                    if await self._validate(http, sid, st):
                        for raw in st.accept():
                            await ws.send_bytes(raw)
                        up = upstreams[sid] = await http.ws_connect(self.plain_url)
                        task = asyncio.create_task(self._pump(up, st, ws))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                    else:
                        await ws.send_bytes(st.refuse())
                for m in messages:
                    await upstreams[sid].send_str(m.decode())
        for up in upstreams.values():
            await up.close()

    async def _validate(self, http: aiohttp.ClientSession, sid: str, st: ExecutorNoiseStream) -> bool:
        assert st.request is not None
        async with http.post(
                f"{self.server.url}/cloud/environment/{self.env_id}/validate",
                headers={"Authorization": f"Bearer {self.token}", "x-codex-noise-stream-id": sid},
                json={"executor_registration_id": self.registration_id,
                      "harness_public_key": st.request.initiator_key.to_json(),
                      "harness_key_authorization": st.request.authorization.decode()}) as resp:
            valid = resp.status == 200 and (await resp.json())["valid"] is True
        self.validations.append(valid)
        return valid

    @staticmethod
    async def _pump(up: aiohttp.ClientWebSocketResponse, st: ExecutorNoiseStream,
                    ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in up:
            if msg.type == aiohttp.WSMsgType.TEXT and not st.closed:
                for raw in st.send(msg.data.encode()):
                    await ws.send_bytes(raw)


async def test_real_171_harness_handshakes_with_our_responder(exec_server_factory, codex171_bin: Path,
                                                              tmp_path: Path) -> None:
    """Real 0.171.0 ``codex exec`` -> our rendezvous -> our ExecutorNoiseStream (our responder,
    checked by /validate) -> a plain ``execrelay exec-server``: the tool call runs."""
    tag = f"tag-{uuid.uuid4().hex[:8]}"
    plain = exec_server_factory("ours", {TAG_ENV: tag})
    server = RendezvousServer(SECRET, heartbeat=None)
    capture = Capture(server)
    await server.start("127.0.0.1", 0)
    env_id = f"env-{uuid.uuid4().hex[:8]}"
    bridge = NoiseBridgeExecutor(server, env_id, plain.url)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            ready = asyncio.Event()
            runner = asyncio.create_task(bridge.run(http, ready))
            await asyncio.wait_for(ready.wait(), 20)
            token, model, result = await _noise_tool_call(codex171_bin, tmp_path, server, env_id)
            runner.cancel()
            diag = (f"rc={result.returncode}\nstderr:\n{result.stderr[-3000:]}\n"
                    f"plain server stderr:\n{plain.stderr_text()[-2000:]}\nvalidations={bridge.validations}")
            assert result.returncode == 0, diag
            outputs = model.tool_outputs()
            assert len(outputs) == 1 and token in outputs[0] and f"tag={tag}" in outputs[0], (outputs, diag)
            assert bridge.validations and all(bridge.validations), diag
            assert token.encode() not in b"".join(capture.frames)
    finally:
        await server.aclose()
