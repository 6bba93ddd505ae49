"""One relay endpoint: a sans-I/O :class:`~execrelay.stream.Multiplexer` on the event loop.

Both relay peers use it: the executor in remote mode accepts the streams a harness opens, the
harness client opens them.  The application sees streams and per-stream handlers; the endpoint
alone decides when frames reach the socket and when timers fire.  See :class:`RelayEndpoint`
and docs/architecture.md §Relay endpoint.
"""
from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Callable, Protocol

from ..stream import OPENER, RELIABLE, MessageTooLarge, Multiplexer, StreamClosed
from ..stream.engine import MODE_NAMES
from ..stream.mux import NOISE_REFUSED
from .base import Link

log = logging.getLogger("execrelay.relay")

#: Stop collecting frames for one write once this much is queued (the rest goes next turn).
WRITE_BATCH_BYTES = 4 * 1024 * 1024
#: Frames handled within one read batch between two writes (see RelayEndpoint.on_message).
FLUSH_EVERY = 16


class StreamHandler(Protocol):
    """What the application attaches to one stream (callbacks: no Task or Future per message)."""

    def on_message(self, payload: bytes) -> None:
        """One whole message of the stream, in order (after the record layer, if any)."""

    def on_close(self, reason: str | None, by_peer: bool) -> None:
        """The stream ended without this side asking: peer Reset, protocol error, a legacy
        stream on disconnect, or :meth:`RelayEndpoint.close`.  Called at most once, never
        after the application's own :meth:`RelayEndpoint.reset`."""

    # Optional: ``on_write_paused(paused: bool)``, called when the stream's queued output
    # goes above the multiplexer's high-water mark (True) and back to its low mark (False):
    # the same call a local websocket makes, so an RpcConnection pauses its producers.


class RecordLayer(Protocol):
    """Optional per-stream transform between the application's payloads and the stream engine
    (the seam of the encrypted relay, docs/noise.md §Endpoints: a per-stream handshake in
    Handshake frames, then sealed records in Data frames).

    :meth:`bind` is called once when the layer is installed, with a :class:`RecordPort`:
    ``port(payload)`` queues a Data payload AS IS; ``port.handshake(message)`` queues a
    Handshake frame; ``port.deliver(message)`` hands a message to the stream's handler;
    ``port.fail(reason)`` resets the stream (its handler hears ``on_close(reason, False)``).
    Each schedules the flush like any send.

    A layer that batches calls ``port.queued()`` when ``seal`` keeps a message back for the
    flush; the endpoint's next write then takes ``layer.flush()`` (the Data payloads, in
    order) before anything else, so a batch never waits past the current loop turn.

    Optional: ``on_handshake(message)``, called for every Handshake frame of the stream; a
    layer without it (or a stream without a layer that the endpoint's ``handshake_layer``
    factory does not give one) gets the stream reset with ``noise_relay_protocol_error``.
    """

    def bind(self, port: "RecordPort") -> None: ...

    def seal(self, payload: bytes) -> bytes | None:
        """An outgoing application payload -> the bytes to send, or None when the layer keeps
        it back or sends it itself (e.g. until its handshake is done, or as several records)
        through the port.  May raise StreamClosed or MessageTooLarge (the StreamPort's
        ``failed`` gets them)."""

    def open(self, payload: bytes) -> bytes | None:
        """An incoming stream payload -> the application payload, or None when the layer
        consumed it (a handshake message, part of a message) or delivered it itself."""


class RecordPort:
    """What a :class:`RecordLayer` is bound with: the stream's outputs (see RecordLayer)."""

    __slots__ = ("endpoint", "stream_id")

    def __init__(self, endpoint: "RelayEndpoint", stream_id: str) -> None:
        self.endpoint = endpoint
        self.stream_id = stream_id

    def __call__(self, payload: bytes) -> None:
        """Queue one Data payload as is (the layer's own message or record)."""
        self.endpoint.mux.send(self.stream_id, payload)
        self.endpoint.flush_soon()

    def handshake(self, message: bytes) -> None:
        """Queue one handshake message in a Handshake frame (docs/noise.md §Frames)."""
        ep = self.endpoint
        ep.mux.send_handshake(self.stream_id, message, ep.loop.time())
        ep.flush_soon()

    def deliver(self, message: bytes) -> None:
        """Hand one application message to the stream's handler (if the stream lives)."""
        st = self.endpoint.streams.get(self.stream_id)
        if st is not None:
            st.handler.on_message(message)

    def fail(self, reason: str) -> None:
        """End the stream from this side with ``reason``; its handler is told."""
        self.endpoint.fail(self.stream_id, reason)

    def queued(self) -> None:
        """The layer kept messages back for this turn's flush: call its ``flush()`` then."""
        ep = self.endpoint
        ep._sealing.append(self.stream_id)
        ep.flush_soon()


class _Stream:
    """The endpoint's record of one live stream: its handler and where payloads go."""

    __slots__ = ("handler", "_reader")

    def __init__(self, handler: StreamHandler) -> None:
        self.handler = handler
        #: a replacement for ``handler.on_message`` (the record layer's reader), or None:
        #: payloads then go to ``handler.on_message`` through the handler, without a stored
        #: bound method (64 bytes less per idle stream, docs/benchmarks.md §Idle streams)
        self._reader: Callable[[bytes], None] | None = None

    @property
    def deliver(self) -> Callable[[bytes], None]:
        """Where this stream's payloads go: one call per message."""
        reader = self._reader
        return self.handler.on_message if reader is None else reader

    @deliver.setter
    def deliver(self, fn: Callable[[bytes], None]) -> None:
        self._reader = fn


class _RecordReader:
    """``deliver`` of a stream with a record layer: open, then hand to the handler."""

    __slots__ = ("layer", "on_message")

    def __init__(self, layer: RecordLayer, handler: StreamHandler) -> None:
        self.layer = layer
        self.on_message = handler.on_message

    def __call__(self, payload: bytes) -> None:
        data = self.layer.open(payload)
        if data is not None:
            self.on_message(data)


class StreamPort:
    """``port(payload)`` sends on one stream: what an application holds per stream, so a
    message costs one Python call on top of the multiplexer's send.

    Errors (:class:`~execrelay.stream.StreamClosed`, :class:`~execrelay.stream.MessageTooLarge`)
    go to :meth:`failed`, which raises them; a subclass decides otherwise (the executor answers
    an oversized reply with an error, the harness raises its own exceptions).
    """

    __slots__ = ("endpoint", "stream_id")

    def __init__(self, endpoint: "RelayEndpoint", stream_id: str) -> None:
        self.endpoint = endpoint
        self.stream_id = stream_id

    def __call__(self, payload: bytes) -> None:
        ep = self.endpoint
        if ep._records:
            layer = ep._records.get(self.stream_id)
            if layer is not None:
                try:
                    sealed = layer.seal(payload)
                except (StreamClosed, MessageTooLarge) as exc:
                    self.failed(payload, exc)
                    return
                if sealed is None:
                    return
                payload = sealed
        try:
            ep.mux.send(self.stream_id, payload)
        except (StreamClosed, MessageTooLarge) as exc:
            self.failed(payload, exc)
            return
        if not ep._flush_scheduled:
            ep._flush_scheduled = True
            ep.loop.call_soon(ep._flush)

    def failed(self, payload: bytes, exc: Exception) -> None:
        """``payload`` could not be queued (the stream ended, or it is too large)."""
        raise exc


class RelayEndpoint:
    """Many relay streams over one (replaceable) websocket link.

    Owns the :class:`~execrelay.stream.Multiplexer` and everything that drives it:

    * **streams**: :meth:`open_stream` (opener side, the harness) or ``on_accept(sid, mode)``
      (acceptor side, the executor: returns the new stream's :class:`StreamHandler`, or None
      to refuse it with a Reset).  Incoming messages go to ``handler.on_message(payload)``,
      an end this side did not ask for to ``handler.on_close(reason, by_peer)``.
      :meth:`send` (or a per-stream :class:`StreamPort`) queues a message, :meth:`reset`
      ends a stream from this side (its handler
      is dropped first, so it hears nothing back), :meth:`close` ends them all.
    * **flushing**: every send, reset and read only queues; ONE ``call_soon`` per loop
      iteration writes everything ready with one ``send_many`` (one socket write), so the
      replies to a whole read batch, process output and timers coalesce: a callback costs
      ~1 µs, a write several.  Within a long read batch it also writes every
      :data:`FLUSH_EVERY` frames so the peer starts on the first replies while the rest is
      processed.  No caller ever kicks or flushes by hand.
    * **backpressure**: each stream's queued output is bounded softly (the multiplexer's
      ``STREAM_HIGH_WATER``/``STREAM_LOW_WATER``); crossing it calls the stream handler's
      ``on_write_paused(True/False)``, the call a local websocket makes when its buffer fills,
      so a harness that stops reading or acking stalls only that stream's producers.
    * **timers**: one loop timer armed at the multiplexer's earliest deadline (delayed acks,
      retransmission, heartbeats; docs/relay-protocol.md §Reliable mode).
    * **links**: :meth:`handler_for` is the transport's link factory; a new link replaces
      the old (reliable streams Resume and resend), a lost one ends legacy streams (as
      0.131.0 does) and calls ``on_link_lost``.  Text messages are not part of the relay
      protocol: counted in :attr:`text_dropped` and dropped (what 0.131.0 does).

    **Record layer** (the seam of the Noise relay, docs/noise.md §Endpoints): a
    :class:`RecordLayer` sits on one stream between the application's payloads and the stream
    engine.  Outgoing payloads pass through ``layer.seal`` (None keeps one back), incoming ones
    through ``layer.open`` (None consumes one), and the layer sends its own handshake messages
    and records through the :class:`RecordPort` it is bound with.  Install it before payloads
    flow: ``open_stream(..., record=layer)`` on the opener side, the ``record_layer(sid, mode)``
    factory on the acceptor side (called right after ``on_accept``, before the stream's first
    message is delivered), ``handshake_layer(sid, mode)`` for the first Handshake frame of a
    stream without a layer (the executor's Noise streams), or :meth:`set_record_layer` on a
    live stream.  ``plaintext_refused`` (a reason) makes an acceptor reset every stream whose
    first message arrives without a layer.  Streams without a layer pay nothing for the seam:
    a send tests one empty dict.
    """

    def __init__(self, role: str, *,
                 on_accept: Callable[[str, str], StreamHandler | None] | None = None,
                 record_layer: Callable[[str, str], RecordLayer | None] | None = None,
                 handshake_layer: Callable[[str, str], RecordLayer | None] | None = None,
                 plaintext_refused: str | None = None,
                 on_link_lost: Callable[[], None] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        # The opener always routes Handshake frames (the answers to its own); an acceptor
        # only when it can make a layer for them, else the multiplexer refuses them at once.
        wants_handshakes = role == OPENER or handshake_layer is not None
        self.mux = Multiplexer(role, on_message=self._deliver, on_open=self._accept,
                               on_close=self._closed, on_writable=self._writable,
                               on_handshake=self._handshake if wants_handshakes else None,
                               split_large=True)
        #: live streams this side has not reset, by stream id
        self.streams: dict[str, _Stream] = {}
        self._records: dict[str, RecordLayer] = {}
        #: streams whose record layer kept messages back for the next write (RecordPort.queued)
        self._sealing: list[str] = []
        self._on_accept = on_accept
        self._record_factory = record_layer
        self._handshake_factory = handshake_layer
        #: acceptor: the Reset reason for a stream whose first message comes without a
        #: record layer (``exec-server --require-noise``); None serves plaintext streams
        self._plaintext_refused = plaintext_refused
        self._on_link_lost = on_link_lost
        self.link: Link | None = None
        self._write_now: Callable[[list, bool], None] | None = None
        self._had_link = False
        self._flush_scheduled = False
        self._fed = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = -1.0
        self.closed = False
        #: text (non-binary) messages dropped
        self.text_dropped = 0
        #: the Reset reason of a stream ``on_accept`` refused (a draining executor sets
        #: ``executor_draining``, docs/operations.md §Graceful drain)
        self.refuse_reason = "stream refused"

    # ------------------------------------------------------------------ streams
    def open_stream(self, stream_id: str, handler: StreamHandler, mode: int = RELIABLE,
                    record: RecordLayer | None = None) -> None:
        """Opener side: start a stream (``mode`` as :meth:`Multiplexer.open_stream`), with
        ``record`` as its record layer if given."""
        self.mux.open_stream(stream_id, self.loop.time(), mode)
        self.streams[stream_id] = _Stream(handler)
        if record is not None:
            self.set_record_layer(stream_id, record)
        self.flush_soon()

    def send(self, stream_id: str, payload: bytes) -> None:
        """Queue one message on a stream; it goes out with this iteration's flush.

        Raises :class:`~execrelay.stream.StreamClosed` (no such live stream) or
        :class:`~execrelay.stream.MessageTooLarge`, as :meth:`Multiplexer.send`.  Per-message
        senders hold a :class:`StreamPort` instead (same path, no lookup of a method).
        """
        StreamPort(self, stream_id)(payload)

    def reset(self, stream_id: str, reason: str) -> None:
        """End a stream from this side (a Reset goes out); its handler is not called.
        No-op for a stream that already ended."""
        st = self.streams.pop(stream_id, None)
        if st is None:
            return
        self._records.pop(stream_id, None)
        self.mux.reset(stream_id, reason)
        self.flush_soon()

    def handler(self, stream_id: str) -> StreamHandler | None:
        """The handler of a live stream (None once it ended)."""
        st = self.streams.get(stream_id)
        return st.handler if st is not None else None

    def stream_mode(self, stream_id: str) -> str | None:
        """``"legacy"``, ``"pending"`` or ``"reliable"`` (None for an unknown stream)."""
        eng = self.mux.stream(stream_id)
        return MODE_NAMES[eng.mode] if eng is not None else None

    def set_record_layer(self, stream_id: str, layer: RecordLayer) -> None:
        """Put ``layer`` between this live stream's payloads and its engine (class docstring)."""
        st = self.streams.get(stream_id)
        if st is None:
            raise KeyError(f"no live stream {stream_id!r}")
        self._records[stream_id] = layer
        st.deliver = _RecordReader(layer, st.handler)
        layer.bind(RecordPort(self, stream_id))

    def fail(self, stream_id: str, reason: str) -> None:
        """End a stream from this side for a reason the application did not choose (its
        record layer failed, or the stream is refused): a Reset goes out and the handler is
        told ``on_close(reason, False)``.  No-op for a stream that already ended."""
        st = self.streams.pop(stream_id, None)
        if st is None:
            return
        self._records.pop(stream_id, None)
        self.mux.reset(stream_id, reason)
        self.flush_soon()
        st.handler.on_close(reason, False)

    def _handshake(self, stream_id: str, message: bytes) -> None:
        """A Handshake frame: to the stream's layer, made by ``handshake_layer`` if it has
        none yet (docs/noise.md §Endpoints)."""
        if stream_id not in self.streams:
            return
        layer = self._records.get(stream_id)
        if layer is None and self._handshake_factory is not None:
            layer = self._handshake_factory(stream_id, self.stream_mode(stream_id) or "legacy")
            if layer is not None:
                self.set_record_layer(stream_id, layer)
        on_handshake = getattr(layer, "on_handshake", None)
        if on_handshake is None:
            self.fail(stream_id, NOISE_REFUSED)
            return
        on_handshake(message)

    def _refuse_plaintext(self, stream_id: str, payload: bytes) -> None:
        """``deliver`` of an accepted stream before it has a record layer, when plaintext is
        refused: its first message ends it with the configured reason."""
        self.fail(stream_id, self._plaintext_refused or "plaintext stream refused")

    def close(self, reason: str = "relay endpoint closed") -> None:
        """End every stream (Resets queued, handlers told ``on_close(reason, False)``), write
        what is queued if a link is attached, stop the timer.  The link itself stays open:
        its owner closes it.  Idempotent."""
        if self.closed:
            return
        for sid in list(self.streams):
            st = self.streams.pop(sid, None)
            if st is None:
                continue  # a handler's on_close reset another stream
            self._records.pop(sid, None)
            self.mux.reset(sid, reason)
            st.handler.on_close(reason, False)
        self._flush_scheduled = False
        if self._write():
            self.flush_soon()  # the rest next iteration, like any flush
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ multiplexer events
    def _deliver(self, stream_id: str, payload: bytes) -> None:
        st = self.streams.get(stream_id)
        if st is not None:
            reader = st._reader
            if reader is None:
                st.handler.on_message(payload)
            else:
                reader(payload)

    def _accept(self, stream_id: str, mode: str) -> None:
        handler = self._on_accept(stream_id, mode) if self._on_accept is not None else None
        if handler is None:
            self.mux.reset(stream_id, self.refuse_reason)
            self.flush_soon()
            return
        st = self.streams[stream_id] = _Stream(handler)
        if self._plaintext_refused is not None:
            st.deliver = partial(self._refuse_plaintext, stream_id)
        if self._record_factory is not None:
            layer = self._record_factory(stream_id, mode)
            if layer is not None:
                self.set_record_layer(stream_id, layer)

    def _writable(self, stream_id: str, writable: bool) -> None:
        # A stream's output went over (or back under) its bound: its handler's producers
        # pause or resume (per stream: the socket and other streams are not involved).
        st = self.streams.get(stream_id)
        if st is not None:
            paused = getattr(st.handler, "on_write_paused", None)
            if paused is not None:
                paused(not writable)

    def _closed(self, stream_id: str, reason: str | None, by_peer: bool) -> None:
        # Local resets removed their stream before telling the multiplexer, so only ends
        # this side did not ask for get here with a handler to tell.
        st = self.streams.pop(stream_id, None)
        if st is not None:
            self._records.pop(stream_id, None)
            st.handler.on_close(reason, by_peer)

    # ------------------------------------------------------------------ links
    def handler_for(self, link: Link) -> "_LinkHandler":
        """The transport's LinkHandler factory for a new websocket: attaches it."""
        self.attach(link)
        return _LinkHandler(self, link)

    def attach(self, link: Link) -> None:
        """Use ``link`` from now on (after the first link: every reliable stream Resumes)."""
        if self.link is not None and self.link is not link:
            self.detach()
        self.link = link
        #: the link's ``write_now`` (PicowsLink) when it has one
        self._write_now = getattr(link, "write_now", None)
        if self._had_link:
            self.mux.on_reconnect(self.loop.time())
        self._had_link = True
        self.flush_soon()

    def detach(self, link: Link | None = None) -> None:
        """The current link is gone (``link``: only if it is still the current one)."""
        if link is not None and link is not self.link:
            return
        if self.link is None:
            return
        self.link = None
        self._write_now = None
        self.mux.on_disconnect()
        if self._on_link_lost is not None:
            self._on_link_lost()

    # ------------------------------------------------------------------ data path
    def on_message(self, data: bytes | str, binary: bool) -> None:
        """One websocket message from the current link."""
        if not binary or isinstance(data, str):
            self.text_dropped += 1
            return
        self.mux.feed(data, self.loop.time())
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._fed = 0
            self.loop.call_soon(self._flush)
        else:
            # Within a big read batch, write what is ready every FLUSH_EVERY frames instead
            # of only at the end: the peer starts on the first replies (and refills its
            # windows) while we process the rest, so both sides work at once instead of
            # taking turns.  One extra write per FLUSH_EVERY requests.
            self._fed += 1
            if self._fed >= FLUSH_EVERY:
                self._fed = 0
                self._write()

    def flush_soon(self) -> None:
        """Write what is queued in this loop iteration (one write for everything queued
        until then).  Sends do this themselves; it is public for link events."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._write():
            self.flush_soon()
        if not self.closed:
            self._arm(self.mux.next_deadline())

    def _write(self) -> bool:
        """Write one batch of ready frames with one write; True if more is left."""
        if self._sealing:
            self._seal_queued()
        mux = self.mux
        link = self.link
        if link is None or not mux.has_output():
            return False
        if getattr(link, "write_paused", False):
            return False  # on_write_paused(False) calls flush_soon() when the socket drains
        frames = mux.poll_output(self.loop.time(), WRITE_BATCH_BYTES)
        if frames:
            write_now = self._write_now
            if write_now is not None:
                write_now(frames, True)  # one write, no flush callback scheduled first
            else:
                link.send_many(frames, binary=True)
                link.flush()
        return mux.has_output()

    def _seal_queued(self) -> None:
        """The records of what the record layers kept back this turn, queued in order (one
        record per stream for its messages of the turn, docs/noise.md §Records)."""
        sids, self._sealing = self._sealing, []
        records = self._records
        send = self.mux.send
        for sid in sids:
            layer = records.get(sid)
            if layer is None:
                continue          # reset meanwhile: its output is dropped, as a reset does
            for payload in layer.flush():  # type: ignore[attr-defined]
                try:
                    send(sid, payload)
                except StreamClosed:
                    break

    def _arm(self, deadline: float | None) -> None:
        if deadline is None:
            return
        if self._timer is not None:
            if self._timer_at <= deadline:
                return
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = -1.0
        self.mux.tick(self.loop.time())
        self._flush()


class _LinkHandler:
    """Per-websocket LinkHandler: forwards to the endpoint while its link is the current one."""

    __slots__ = ("endpoint", "link", "on_message")

    def __init__(self, endpoint: RelayEndpoint, link: Link) -> None:
        self.endpoint = endpoint
        self.link = link
        self.on_message = endpoint.on_message

    def on_close(self) -> None:
        self.endpoint.detach(self.link)

    def on_write_paused(self, paused: bool) -> None:
        if not paused:
            self.endpoint.flush_soon()


__all__ = ["RelayEndpoint", "StreamPort", "StreamHandler", "RecordLayer", "RecordPort", "WRITE_BATCH_BYTES", "FLUSH_EVERY"]
