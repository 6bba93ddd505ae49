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

:class:`HarnessNoiseLayer` and :class:`ExecutorNoiseLayer` are the same two ends as record
layers of a :class:`~execrelay.transport.endpoint.RelayEndpoint` stream (docs/noise.md
§Endpoints): the stream engine below them carries the Handshake frames and the records, in
legacy mode (0.171's framing: one record per Data frame, seq from 0) or reliable mode (between
execrelay ends: the engine retransmits the sealed records).
"""
from __future__ import annotations

import hashlib
import logging
import struct
from typing import Callable, Protocol

from .. import wire
from .errors import SEGMENT_BYTES, MessageTooLarge, StreamClosed
from .noise import (MAX_MESSAGE_BYTES, MAX_RECORDS, RESET_REASON, TAG_BYTES, HandshakeError,
                    HandshakeRequest, Initiator, NoiseError, PublicKey, RecordError, Responder,
                    SequenceExhausted, StaticKeyPair, Transport, prologue)

log = logging.getLogger("execrelay.noise")

#: execrelay's optional field of the Noise registration and of ``/connect``'s answer: the
#: relay stream framings the executor serves (docs/noise.md §Endpoints).  A 0.171 executor
#: sends none, so its harnesses never see the field and use 0.171's (legacy) framing.
RELAY_MODES_FIELD = "execrelay_relay_modes"
RELAY_MODES = ("legacy", "reliable")


def _initiator(stream_id: str, identity: StaticKeyPair, executor_key: PublicKey,
               environment_id: str, registration_id: str, authorization: str) -> Initiator:
    """The harness's handshake, bound to one registration and one stream (docs/noise.md
    §Handshake: the prologue)."""
    return Initiator(identity, executor_key, prologue(environment_id, registration_id, stream_id),
                     authorization.encode("utf-8"))


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
        self._initiator: Initiator | None = _initiator(
            stream_id, identity, executor_key, environment_id, registration_id, authorization)

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


# ---------------------------------------------------------------------------------------------
# the same ends as record layers of a RelayEndpoint stream

class _Port(Protocol):
    """The part of :class:`~execrelay.transport.endpoint.RecordPort` a Noise layer uses."""

    def __call__(self, payload: bytes) -> None: ...

    def handshake(self, message: bytes) -> None: ...

    def deliver(self, message: bytes) -> None: ...

    def fail(self, reason: str) -> None: ...

    def queued(self) -> None: ...


#: Plaintext bytes per record of a message that needs several: a sealed record then fills one
#: reliable segment exactly (0.171's 60 KiB records would take two, the second of 16 bytes);
#: still within the 60 KiB a 0.171 peer accepts.
RECORD_CHUNK = SEGMENT_BYTES - TAG_BYTES

#: Messages a harness stream holds while its handshake runs (the session sends ``initialize``
#: and little else before the answer); past it the send fails instead of growing.
MAX_HELD_MESSAGES = 1024


class _NoiseLayer:
    """Records on one endpoint stream: seal outgoing messages, open incoming records.

    Outgoing small messages wait in a batch until the endpoint's flush (the one write per
    loop turn, :meth:`flush`), then go out sealed together: one record, one AES-GCM call, for
    all the messages the stream sent in that turn (docs/noise.md §Records, §Costs).  Nothing
    waits longer than that flush, and a batch that would outgrow one record is sealed at once.

    Records arrive exactly once and in order (a websocket in legacy mode, the reliable engine
    otherwise), so the layer opens each with the next counter: a replayed, reordered or
    tampered record fails authentication and resets the stream (docs/noise.md §Endpoints).
    """

    __slots__ = ("stream_id", "transport", "failed", "_port", "_batch", "_batch_bytes")

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.transport: Transport | None = None
        #: set once the channel failed (the stream was reset with RESET_REASON)
        self.failed = False
        self._port: _Port | None = None
        #: messages waiting for the flush, and their framed size (4 + len each)
        self._batch: list[bytes] = []
        self._batch_bytes = 0

    def bind(self, port: _Port) -> None:
        self._port = port

    @property
    def established(self) -> bool:
        return self.transport is not None and not self.failed

    def _fail(self, exc: NoiseError) -> None:
        # NoiseError texts never carry key material (docs/noise.md §Records)
        # (debug: a peer can cause this at will, so no louder level that it could flood)
        log.debug("stream %s: Noise channel failed: %s", self.stream_id, exc)
        self.failed = True
        self._batch = []
        if self._port is not None:
            self._port.fail(exc.reason)

    def _seal(self, transport: Transport, payload: bytes) -> None:
        """A message that needs several records, after what the batch holds (same order)."""
        n = len(payload)
        if n > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(f"message of {n} bytes exceeds the "
                                  f"{MAX_MESSAGE_BYTES}-byte Noise relay limit")
        if n == 0:
            raise ValueError("relay messages must not be empty")
        port = self._port
        assert port is not None
        if self._batch:
            self._send_batch(port)
        try:
            records = self._chunks(transport, payload)
        except NoiseError as exc:   # the counter is exhausted: the stream cannot go on
            self._fail(exc)
            raise StreamClosed(f"Noise relay stream {self.stream_id!r} failed: {exc}") from None
        for _seq, record in records:
            port(record)

    @staticmethod
    def _chunks(transport: Transport, payload: bytes) -> list[tuple[int, bytes]]:
        """A big message in records of :data:`RECORD_CHUNK` plaintext bytes, so that each
        sealed record fills exactly one reliable segment (docs/noise.md §Endpoints)."""
        framed = memoryview(struct.pack(">I", len(payload)) + payload)
        if transport.next_send_seq + (len(framed) - 1) // RECORD_CHUNK > MAX_RECORDS:
            raise SequenceExhausted("Noise relay sequence number exhausted")
        return [transport.seal_record(framed[i:i + RECORD_CHUNK])
                for i in range(0, len(framed), RECORD_CHUNK)]

    def seal(self, payload: bytes) -> bytes | None:
        """Keep a small message for the flush's batch (None: the endpoint sends nothing now);
        a big one goes out at once as several records, after the batch."""
        n = len(payload)
        if 0 < n <= RECORD_CHUNK - 4 and self.transport is not None and not self.failed:
            size = self._batch_bytes + n + 4
            batch = self._batch
            if not batch:
                port = self._port
                assert port is not None
                port.queued()                    # the endpoint calls flush() at its flush
            elif size > RECORD_CHUNK:            # the record is full: it goes now
                port = self._port
                assert port is not None
                self._send_batch(port)
                size = n + 4                     # (still queued with the endpoint)
                batch = self._batch
            batch.append(payload)
            self._batch_bytes = size
            return None
        if self.failed:
            raise StreamClosed(f"Noise relay stream {self.stream_id!r} failed")
        transport = self.transport
        if transport is None:
            self._hold(payload)
            return None
        self._seal(transport, payload)
        return None

    def _send_batch(self, port: _Port) -> None:
        """Send the batch now, ahead of what comes next (a full record, or a big message)."""
        for record in self.flush():
            port(record)
        if self.failed:
            raise StreamClosed(f"Noise relay stream {self.stream_id!r} failed")

    def flush(self) -> list[bytes]:
        """The records of the messages waiting since the last flush, in order: one record for
        the lot (they fit one segment).  Empty once the channel failed."""
        batch = self._batch
        if not batch:
            return []
        self._batch = []
        self._batch_bytes = 0
        transport = self.transport
        if transport is None or self.failed:
            return []
        try:
            if len(batch) == 1:
                return [transport.seal(batch[0])[0][1]]
            return [record for _seq, record in transport.seal_many(batch)]
        except NoiseError as exc:   # the counter is exhausted: the stream cannot go on
            self._fail(exc)
            return []

    def _hold(self, payload: bytes) -> None:
        raise StreamClosed(f"Noise relay stream {self.stream_id!r}: handshake not complete")

    def open(self, record: bytes) -> bytes | None:
        transport = self.transport
        if self.failed:
            return None
        try:
            if transport is None:
                raise HandshakeError("Noise relay received data before handshake completion")
            messages = transport.open(transport.next_recv_seq, record)
        except NoiseError as exc:
            self._fail(exc)
            return None
        if len(messages) == 1:
            return messages[0]
        port = self._port
        assert port is not None
        for m in messages:
            port.deliver(m)
        return None

    def __repr__(self) -> str:
        state = "failed" if self.failed else "established" if self.transport else "handshake"
        return f"{type(self).__name__}({self.stream_id!r}, {state})"


class HarnessNoiseLayer(_NoiseLayer):
    """The harness end on an endpoint stream: sends message 1 when bound, holds the session's
    first messages until message 2 arrives, then seals them."""

    __slots__ = ("_initiator", "_held")

    def __init__(self, stream_id: str, identity: StaticKeyPair, executor_key: PublicKey,
                 environment_id: str, registration_id: str, authorization: str) -> None:
        super().__init__(stream_id)
        self._initiator: Initiator | None = _initiator(
            stream_id, identity, executor_key, environment_id, registration_id, authorization)
        self._held: list[bytes] = []

    def bind(self, port: _Port) -> None:
        super().bind(port)
        assert self._initiator is not None
        port.handshake(self._initiator.message1)

    def _hold(self, payload: bytes) -> None:
        if len(payload) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge(f"message of {len(payload)} bytes exceeds the "
                                  f"{MAX_MESSAGE_BYTES}-byte Noise relay limit")
        if not payload:
            raise ValueError("relay messages must not be empty")
        if len(self._held) >= MAX_HELD_MESSAGES:
            raise StreamClosed(f"Noise relay stream {self.stream_id!r}: {MAX_HELD_MESSAGES} "
                               "messages already wait for the handshake")
        self._held.append(bytes(payload))

    def on_handshake(self, message: bytes) -> None:
        initiator = self._initiator
        if initiator is None or self.failed:
            # A repeated answer (the reliable engine repeats message 1 until one arrives,
            # so two may): the channel is up, nothing to do.
            return
        self._initiator = None
        try:
            transport = initiator.finish(message)
        except NoiseError as exc:
            self._fail(exc)
            return
        self.transport = transport
        held, self._held = self._held, []
        try:
            for payload in held:   # (sized when they were held: only StreamClosed can come)
                self.seal(payload)
        except StreamClosed:
            pass                   # the channel failed: the stream was reset


#: ``validate(stream_id, request, decided)``: ask the registry about ``request`` and call
#: ``decided(True/False)`` once (later, from the event loop).
Validator = Callable[[str, HandshakeRequest, Callable[[bool], None]], None]


class ExecutorNoiseLayer(_NoiseLayer):
    """The executor end on an endpoint stream: reads message 1, lets ``validate`` ask the
    registry, answers with message 2 (or fails the stream)."""

    __slots__ = ("_responder", "_validate", "_first", "_reply")

    def __init__(self, stream_id: str, identity: StaticKeyPair, environment_id: str,
                 registration_id: str, validate: Validator) -> None:
        super().__init__(stream_id)
        self._responder: Responder | None = Responder(
            identity, prologue(environment_id, registration_id, stream_id))
        self._validate = validate
        self._first: bytes | None = None   # digest of message 1 (to know a repeat of it)
        self._reply: bytes | None = None   # message 2, kept until the first record arrives

    def on_handshake(self, message: bytes) -> None:
        if self.failed:
            return
        digest = hashlib.sha256(message).digest()
        if self._first is not None:
            if digest != self._first:
                self._fail(HandshakeError("Noise relay received a second handshake frame"))
            elif self._reply is not None and self._port is not None:
                self._port.handshake(self._reply)   # our answer was lost: repeat it
            return                                  # (or still asking the registry)
        self._first = digest
        assert self._responder is not None
        try:
            request = self._responder.read_request(message)
        except NoiseError as exc:
            self._fail(exc)
            return
        self._validate(self.stream_id, request, self._decided)

    def _decided(self, valid: bool) -> None:
        responder, self._responder = self._responder, None
        if self.failed or responder is None:
            return
        if not valid:
            self._fail(HandshakeError("the registry did not authorize the harness key"))
            return
        try:
            reply, transport = responder.respond()
        except NoiseError as exc:
            self._fail(exc)
            return
        self.transport = transport
        self._reply = reply
        assert self._port is not None
        try:
            self._port.handshake(reply)
        except StreamClosed:
            pass   # the stream ended while the registry was asked

    def open(self, record: bytes) -> bytes | None:
        self._reply = None   # the harness has the answer: no repeat will be needed
        return super().open(record)


__all__ = ["HarnessNoiseStream", "ExecutorNoiseStream", "HarnessNoiseLayer", "RELAY_MODES_FIELD",
           "RELAY_MODES",
           "ExecutorNoiseLayer", "Validator", "MAX_HELD_MESSAGES"]
