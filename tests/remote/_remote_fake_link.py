"""The remote executor's RelayEndpoint on a fake link (no socket, no registry), shared by the
per-stream port and backpressure tests."""
from __future__ import annotations

import orjson

from execrelay import wire
from execrelay.executor import ExecServer
from execrelay.executor.remote import RemoteExecutor, RemoteExecutorConfig
from execrelay.stream import ACCEPTOR
from execrelay.transport.endpoint import RelayEndpoint


class FakeLink:
    """A relay socket that accepts every write and never answers (a harness that never acks)."""

    peer = "fake"
    write_paused = False

    def __init__(self) -> None:
        self.frames: list = []

    def send_many(self, messages: list[bytes], binary: bool = False) -> None:
        self.frames += [wire.decode(m) for m in messages]

    def flush(self) -> None:
        pass

    def replies(self, sid: str) -> dict:
        """Decoded JSON answers on stream ``sid`` by id."""
        out = {}
        for f in self.frames:
            if f.kind == wire.DATA and f.stream_id == sid:
                msg = orjson.loads(f.payload)
                if "id" in msg:
                    out[msg["id"]] = msg
        return out


async def executor_endpoint() -> tuple[RemoteExecutor, RelayEndpoint, FakeLink, ExecServer]:
    """A remote executor (never connected: its registry address is a closed port) whose endpoint
    serves one FakeLink."""
    server = ExecServer()
    executor = RemoteExecutor(RemoteExecutorConfig.with_bearer_token("http://127.0.0.1:9", "e", "t"), server)
    endpoint = executor.endpoint = RelayEndpoint(ACCEPTOR, on_accept=executor._on_accept)
    link = FakeLink()
    endpoint.handler_for(link)
    return executor, endpoint, link, server
