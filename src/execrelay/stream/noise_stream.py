"""One Noise relay stream as 0.171 frames it, sans I/O: decoded frames in, encoded frames and
JSON messages out (docs/noise.md §Frames).

:mod:`.noise` is the cryptography (handshake, records); this module is the stream around it:
which relay frames carry what, in which order, and what ends the stream.

* :class:`HarnessNoiseStream` (the opener): :meth:`~HarnessNoiseStream.start` gives
  ``Resume{}`` and the ``Handshake`` frame with message 1; the executor's Handshake frame
  completes the channel; then :meth:`send` seals messages into Data frames.
* :class:`ExecutorNoiseStream` (the acceptor): a Handshake frame yields the harness's key and
  authorization (:attr:`~ExecutorNoiseStream.request`); the owner asks the registry, then
  :meth:`~ExecutorNoiseStream.accept` (the reply frame) or :meth:`refuse` (the Reset).

Both: :meth:`receive` takes one decoded frame of this stream and returns the JSON messages it
completes; a Reset from the peer sets :attr:`closed` (with its reason).  Any protocol or
crypto failure raises :class:`~execrelay.stream.noise.NoiseError`; the caller then sends
:meth:`reset_frame` (``Reset{noise_relay_protocol_error}``) and drops this stream only.
"""
from __future__ import annotations

from .. import wire
from .noise import (RESET_REASON, HandshakeError, HandshakeRequest, Initiator, PublicKey,
                    RecordError, Responder, StaticKeyPair, Transport, prologue)


class _NoiseStream:
    __slots__ = ("stream_id", "transport", "closed", "close_reason")

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.transport: Transport | None = None
        #: True once a Reset came from the peer (or this side refused/reset the stream)
        self.closed = False
        self.close_reason = ""

    @property
    def established(self) -> bool:
        return self.transport is not None and not self.closed

    def send(self, message: bytes) -> list[bytes]:
        """Seal one JSON message into encoded Data frames (one record each, seq = counter)."""
        if self.transport is None or self.closed:
            raise RecordError("Noise relay stream is not established")
        sid = self.stream_id
        return [wire.encode_data(sid, seq, 0, 0, record)
                for seq, record in self.transport.seal(message)]

    def reset_frame(self, reason: str = RESET_REASON) -> bytes:
        """The Reset that ends this stream from this side."""
        self.closed = True
        self.close_reason = self.close_reason or reason
        return wire.encode_control(wire.RESET, self.stream_id, reason=reason)

    def _common(self, frame: wire.Frame) -> bool:
        """Reset, Ack, Resume, Heartbeat: handled here (True); Data/Handshake: the caller's."""
        kind = frame.kind
        if kind == wire.RESET:
            self.closed = True
            self.close_reason = frame.reason
            return True
        return kind != wire.DATA and kind != wire.HANDSHAKE

    def _data(self, frame: wire.Frame) -> list[bytes]:
        if self.transport is None:
            raise HandshakeError("Noise relay received data before handshake completion")
        if frame.segment_index != 0 or frame.segment_count != 1:
            raise RecordError("Noise relay data frames carry exactly one record")
        return self.transport.open(frame.seq, frame.payload)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "established" if self.transport else "handshake"
        return f"{type(self).__name__}({self.stream_id!r}, {state})"


class HarnessNoiseStream(_NoiseStream):
    """The harness end: pins the executor's registry key for one registration and stream."""

    __slots__ = ("_initiator",)

    def __init__(self, stream_id: str, identity: StaticKeyPair, executor_key: PublicKey,
                 environment_id: str, registration_id: str, authorization: str) -> None:
        super().__init__(stream_id)
        self._initiator: Initiator | None = Initiator(
            identity, executor_key, prologue(environment_id, registration_id, stream_id),
            authorization.encode("utf-8"))

    def start(self) -> list[bytes]:
        """``Resume{}`` (claims the stream at the rendezvous) and the Handshake frame."""
        if self._initiator is None:
            raise HandshakeError("Noise handshake already started")
        message1 = self._initiator.message1
        return [wire.encode_control(wire.RESUME, self.stream_id, next_seq=0),
                wire.encode(wire.Frame.handshake(self.stream_id, message1))]

    def receive(self, frame: wire.Frame) -> list[bytes]:
        if self.closed or self._common(frame):
            return []
        if frame.kind == wire.HANDSHAKE:
            if self.transport is not None or self._initiator is None:
                raise HandshakeError("Noise relay received an unexpected handshake frame")
            initiator, self._initiator = self._initiator, None
            self.transport = initiator.finish(frame.payload)
            return []
        return self._data(frame)


class ExecutorNoiseStream(_NoiseStream):
    """The executor end: answers one harness's handshake once its owner accepts the key."""

    __slots__ = ("_responder", "request")

    def __init__(self, stream_id: str, identity: StaticKeyPair, environment_id: str,
                 registration_id: str) -> None:
        super().__init__(stream_id)
        self._responder: Responder | None = Responder(
            identity, prologue(environment_id, registration_id, stream_id))
        #: set by the Handshake frame: the key and authorization to check with the registry
        self.request: HandshakeRequest | None = None

    def receive(self, frame: wire.Frame) -> list[bytes]:
        if self.closed or self._common(frame):
            return []
        if frame.kind == wire.HANDSHAKE:
            if self.request is not None or self._responder is None:
                raise HandshakeError("Noise relay received a second handshake frame")
            self.request = self._responder.read_request(frame.payload)
            return []
        return self._data(frame)

    def accept(self) -> list[bytes]:
        """The registry said yes: message 2 in a Handshake frame; the channel is up."""
        if self.request is None or self._responder is None or self.closed:
            raise HandshakeError("Noise handshake reply out of turn")
        responder, self._responder = self._responder, None
        reply, self.transport = responder.respond()
        return [wire.encode(wire.Frame.handshake(self.stream_id, reply))]

    def refuse(self) -> bytes:
        """The registry said no (or did not answer): the same Reset as any failure."""
        self._responder = None
        return self.reset_frame()


__all__ = ["HarnessNoiseStream", "ExecutorNoiseStream"]
