"""Two RelayEndpoints (harness opener, executor acceptor) joined by an in-memory link that can
drop, duplicate or rewrite frames: the Noise record layers without sockets or a registry."""
from __future__ import annotations

import asyncio
from typing import Callable

from execrelay import wire
from execrelay.stream import ACCEPTOR, OPENER
from execrelay.stream import noise
from execrelay.stream.noise_stream import ExecutorNoiseLayer, HarnessNoiseLayer
from execrelay.transport.endpoint import RelayEndpoint

ENV = "env-test"
REG = "reg-test"


class Wire:
    """One direction: frames written by one endpoint, handed to the other on :meth:`carry`.
    ``hook(frame bytes) -> list of frame bytes`` may drop, duplicate or rewrite each."""

    peer = "memory"
    write_paused = False

    def __init__(self) -> None:
        self.queue: list[bytes] = []
        self.sent: list[bytes] = []
        self.hook: Callable[[bytes], list[bytes]] | None = None

    def send_many(self, messages: list[bytes], binary: bool = False) -> None:
        for m in messages:
            self.sent.append(m)
            self.queue.extend(self.hook(m) if self.hook is not None else [m])

    def flush(self) -> None:
        pass

    def frames(self) -> list:
        return [wire.decode(m) for m in self.sent]


class Handler:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.closes: list[tuple[str | None, bool]] = []

    def on_message(self, payload: bytes) -> None:
        self.messages.append(payload)

    def on_close(self, reason: str | None, by_peer: bool) -> None:
        self.closes.append((reason, by_peer))


class Echo(Handler):
    """The executor's handler: answers every message with ``b"re:" + message``."""

    def __init__(self, endpoint: "Pair") -> None:
        super().__init__()
        self.pair = endpoint
        self.sid = ""

    def on_message(self, payload: bytes) -> None:
        super().on_message(payload)
        self.pair.executor.send(self.sid, b"re:" + payload)


class Pair:
    """``harness`` and ``executor`` endpoints; the executor authorizes keys in ``allowed``."""

    def __init__(self, *, require_noise: bool = False, authorize: bool = True) -> None:
        self.executor_identity = noise.StaticKeyPair.generate()
        self.harness_identity = noise.StaticKeyPair.generate()
        self.authorize = authorize
        self.to_executor = Wire()
        self.to_harness = Wire()
        self.handlers: dict[str, Echo] = {}
        self.validations: list[str] = []
        self.executor = RelayEndpoint(
            ACCEPTOR, on_accept=self._accept, handshake_layer=self._layer,
            plaintext_refused="noise_required: test" if require_noise else None)
        self.harness = RelayEndpoint(OPENER)
        self.harness.handler_for(self.to_executor)
        self.executor.handler_for(self.to_harness)

    def _accept(self, sid: str, mode: str) -> Echo:
        h = self.handlers[sid] = Echo(self)
        h.sid = sid
        return h

    def _layer(self, sid: str, mode: str) -> ExecutorNoiseLayer:
        return ExecutorNoiseLayer(sid, self.executor_identity, ENV, REG, self._validate)

    def _validate(self, sid: str, request: noise.HandshakeRequest, decided: Callable[[bool], None]) -> None:
        self.validations.append(sid)
        ok = self.authorize and request.initiator_key == self.harness_identity.public \
            and request.authorization == b"auth-ok"
        asyncio.get_running_loop().call_soon(decided, ok)

    def harness_layer(self, sid: str, executor_key: noise.PublicKey | None = None,
                      identity: noise.StaticKeyPair | None = None) -> HarnessNoiseLayer:
        return HarnessNoiseLayer(sid, identity or self.harness_identity,
                                 executor_key or self.executor_identity.public, ENV, REG, "auth-ok")

    async def carry(self, turns: int = 8) -> None:
        """Run the loop and move every queued frame across, ``turns`` times."""
        for _ in range(turns):
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            for src, dst in ((self.to_executor, self.executor), (self.to_harness, self.harness)):
                batch, src.queue = src.queue, []
                for data in batch:
                    dst.on_message(data, True)
