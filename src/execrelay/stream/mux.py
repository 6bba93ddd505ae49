"""Many relay streams over one websocket: the sans-I/O multiplexer.

One :class:`Multiplexer` per physical websocket (executor: the relay socket to the rendezvous,
``role=ACCEPTOR``; harness: its socket, ``role=OPENER``).  No I/O, no clock: the transport
passes bytes and the current time in and writes what comes out.

Driving it (everything is synchronous and cheap; call from the event loop callback)::

    mux = Multiplexer(ACCEPTOR, on_message=deliver, on_open=opened, on_close=closed)

    # 1. every binary websocket message received (decoded once, routed by stream_id):
    mux.feed(frame_bytes, now)            # or mux.feed_many(list_of_bytes, now)
    #    -> on_message(stream_id, payload: bytes) for every complete message, in order
    #    -> on_open(stream_id, mode_name) when the peer opens a stream (acceptor side)
    #    -> on_close(stream_id, reason, by_peer) when a stream ends (peer Reset, local reset,
    #       protocol_error: ..., legacy stream on disconnect)
    #    Callbacks may call mux.send()/mux.reset() re-entrantly.  Without callbacks the
    #    events are appended to ``mux.events`` as ("message"|"open"|"close", sid, data).

    # 2. the application answers (any time, any stream):
    mux.send(stream_id, payload_bytes)    # StreamClosed / MessageTooLarge / ValueError

    # 3. after handling one read (or a timer), write everything that is ready in ONE write:
    frames = mux.poll_output(now)         # list[bytes], one binary ws message each,
                                          # round-robin one frame per stream per turn
                                          # (split_large=True: a large legacy message's
                                          # frame is a wire.split.SplitFrame, not copied)
    #    poll_output(now, max_bytes=N) stops once N bytes are collected (transport
    #    backpressure); the rest stays queued for the next call.

    # 4. timers (reliable streams only: delayed acks, retransmission, heartbeat):
    t = mux.next_deadline()               # absolute time, or None when nothing is armed;
                                          # may be early (a spurious tick is harmless),
                                          # never late
    mux.tick(now)                         # when t is reached; then poll_output(now)

    # 5. opener side (harness):
    mux.open_stream(stream_id, now, mode=RELIABLE)   # or LEGACY for a 0.131.0 executor
    mux.reset(stream_id, reason)

    # 6. transport lost / back:
    mux.on_disconnect()                   # legacy streams end (as in 0.131.0); reliable live on
    mux.on_reconnect(now)                 # Resume{next_seq} + resend unacked, every reliable stream

    # 7. inspection / application backpressure:
    mux.stream(stream_id)                 # the StreamEngine or None (.mode: LEGACY/PENDING/
                                          # RELIABLE, .closed, .close_reason, .stats)
    mux.buffered(stream_id)               # bytes queued on that stream, not yet sent
    #    on_writable(stream_id, False) once a send takes the stream's queued bytes above
    #    STREAM_HIGH_WATER (its producers should pause: the peer or the socket is not keeping
    #    up), on_writable(stream_id, True) once poll_output brings them to STREAM_LOW_WATER.
    len(mux), mux.bad_frames, mux.unrouted_frames, mux.has_output(), mux.reassembly_in_use

Times are floats in seconds on any monotonic clock (pass ``loop.time()``).  Exceptions raised
by the callbacks propagate out of ``feed()``/``tick()``.  A closed stream leaves
``mux.streams`` as soon as its last frame (its Reset, if any) was handed out.

Acceptor-side stream creation (docs/relay-protocol.md §Stream modes, §Executor behaviour, §Legacy
streams): a Data frame with seq 0 on an unknown stream opens a LEGACY stream (0.131.0 harness), Data
with seq 1 or ``Resume{next_seq=1}`` opens a RELIABLE one (answered with ``Resume{1}`` before any
Data); Data with seq > 1 and ack > 0 or ``Resume{next_seq>1}`` is a stream that began elsewhere
(this executor restarted) and is answered with ``Reset{unknown_stream}``; Data with seq > 1 and ack
0 opens a reliable stream on probation (§Stream modes: its opener lost Resume{1} and seq 1 and will
repeat them) that is reset with ``unknown_stream`` if seq 1 has not arrived within
``PROBATION_SECONDS`` (a legacy harness mid-stream after an executor restart); Resume{0}, Ack,
Heartbeat and Reset never create a stream.  A legacy stream that was reset is recreated by the next
Data (0.131.0 does the same) and stays legacy whatever that Data's seq; a closed reliable stream is
remembered for ``TOMBSTONE_SECONDS`` and frames for it are answered with its Reset again (so a lost
Reset is repeated) instead of creating a new stream.  Opener side: frames for unknown streams are
ignored.

Noise (docs/noise.md §Endpoints): Handshake frames go to ``on_handshake(stream_id, payload)``
(an opener's engine stops repeating its own handshake when one arrives); on an unknown stream
at the acceptor a Handshake opens a LEGACY stream (0.171's harness sends ``Resume{0}`` then its
handshake).  Without ``on_handshake`` every Handshake is answered with
``Reset{noise_relay_protocol_error}`` (:data:`NOISE_REFUSED`).  :meth:`send_handshake` queues
one.  A stream that carried a handshake is tombstoned like a reliable one when it ends.

Bad frames (docs/relay-protocol.md §Frames): counted in ``bad_frames``, logged at most once a
minute; when the FrameError carries the ``stream_id`` of a live reliable stream, that stream alone
is reset with ``protocol_error: <what>`` (a live legacy stream keeps 0.131.0 behaviour: the frame is
dropped, the session goes on).  Stream-level violations (seq/segment/ack patterns, a segmented Data
on a legacy stream) reset that stream only, in either mode.

Reassembly budget: the engines of one multiplexer share one :class:`ReassemblyBudget`
(``reassembly_budget`` bytes, default ``REASSEMBLY_BUDGET_BYTES``); a stream whose next
multi-segment message would exceed it is reset with ``resource_exhausted: reassembly budget
exceeded ...`` while the others complete.

Fairness: streams with output wait in one FIFO; each turn takes ONE frame (at most one 60 KiB
segment in reliable mode) from the head stream and requeues it at the tail, so a stream moving
64 MiB delays a small message by at most one frame per other busy stream.
"""
from __future__ import annotations

import heapq
import logging
from collections import OrderedDict, deque
from typing import Callable, Iterable

from .. import wire
from ..wire.split import SPLIT_MIN_BYTES, SplitFrame, encode_data_split
from .engine import (ACCEPTOR, LEGACY, MODE_NAMES, OPENER, PENDING, RELIABLE, ReassemblyBudget,
                     StreamEngine, clip_reason)
from .errors import (MAX_SEQ, PROBATION_SECONDS, REASSEMBLY_BUDGET_BYTES, STREAM_HIGH_WATER,
                     STREAM_LOW_WATER, UNKNOWN_STREAM, StreamClosed)

log = logging.getLogger("execrelay.stream")

#: How long a closed reliable stream_id is remembered (its frames get the Reset again).
TOMBSTONE_SECONDS = 120.0
TOMBSTONE_MAX = 4096

_DATA = wire.DATA
_RESUME = wire.RESUME
_HANDSHAKE = wire.HANDSHAKE
#: Reset reason for a Noise handshake on a side that serves plaintext streams only: the one a
#: 0.171.0 executor uses for every Noise failure, so a 0.171 harness gives up at once instead of
#: waiting for an answer that never comes (docs/noise.md)
NOISE_REFUSED = "noise_relay_protocol_error"
_RESET = wire.RESET
_decode = wire.decode
_encode_data = wire.encode_data
_SPLIT_MIN = SPLIT_MIN_BYTES
_FrameError = wire.FrameError
#: Legacy messages up to this size take the inlined send path (no frame-size recheck needed).
_LEGACY_FAST_MAX = wire.LEGACY_MAX_FRAME_BYTES - 256


class Multiplexer:
    """Owns every :class:`StreamEngine` of one websocket.  See the module docstring."""

    def __init__(self, role: str = ACCEPTOR,
                 on_message: Callable[[str, bytes], None] | None = None,
                 on_open: Callable[[str, str], None] | None = None,
                 on_close: Callable[[str, str | None, bool], None] | None = None,
                 on_writable: Callable[[str, bool], None] | None = None,
                 reassembly_budget: int = REASSEMBLY_BUDGET_BYTES,
                 on_handshake: Callable[[str, bytes], None] | None = None,
                 split_large: bool = False) -> None:
        if role not in (ACCEPTOR, OPENER):
            raise ValueError(f"role must be {ACCEPTOR!r} or {OPENER!r}")
        self.role = role
        #: queue large legacy messages as :class:`~execrelay.wire.split.SplitFrame` (head +
        #: payload, not copied) instead of ``bytes``: for a transport that writes both buffers
        #: with one writev (:class:`~execrelay.transport.endpoint.RelayEndpoint` sets it)
        self._split = split_large
        self.events: list[tuple] = []
        self._on_message = on_message if on_message is not None else self._ev_message
        self._on_open = on_open if on_open is not None else self._ev_open
        self._on_close_cb = on_close if on_close is not None else self._ev_close
        self._on_writable = on_writable
        #: Noise handshake messages (docs/noise.md §Endpoints); None: this side serves
        #: plaintext only and answers a Handshake frame with ``Reset{NOISE_REFUSED}``
        self._on_handshake = on_handshake
        self._budget = ReassemblyBudget(reassembly_budget)
        self.streams: dict[str, StreamEngine] = {}
        self._ready: deque[StreamEngine] = deque()
        self._wake = self._ready.append
        self._closed_cb = self._closed
        self._dirty: set[StreamEngine] = set()
        self._heap: list = []
        self._heap_n = 0
        self._tombs: OrderedDict[str, tuple[float, str, int]] = OrderedDict()  # expiry, reason, mode
        self._now = 0.0
        self._last_bad_log = -1e18
        #: Bad-frame counter (undecodable frames, or frames breaking docs/relay-protocol.md
        #: §Frames) and the last error text.
        self.bad_frames = 0
        self.last_bad_frame: str | None = None
        #: Frames for unknown streams that were dropped (not an error: Resume{0}, stale, ...).
        self.unrouted_frames = 0

    # ------------------------------------------------------------------ default event sinks
    def _ev_message(self, sid: str, payload: bytes) -> None:
        self.events.append(("message", sid, payload))

    def _ev_open(self, sid: str, mode: str) -> None:
        self.events.append(("open", sid, mode))

    def _ev_close(self, sid: str, reason: str | None, by_peer: bool) -> None:
        self.events.append(("close", sid, (reason, by_peer)))

    # ------------------------------------------------------------------ engine plumbing
    def _closed(self, eng: StreamEngine) -> None:
        tombs = self._tombs
        # A Noise stream is never recreated by its next Data, even a legacy one: its frames
        # are answered with its Reset again (a record is no plaintext message).
        tombs[eng.stream_id] = (self._now + TOMBSTONE_SECONDS, eng.close_reason or "reset",
                                RELIABLE if eng.noise else eng.mode)
        tombs.move_to_end(eng.stream_id)
        while len(tombs) > TOMBSTONE_MAX:
            tombs.popitem(last=False)
        if not eng.wants_output() and self.streams.get(eng.stream_id) is eng:
            del self.streams[eng.stream_id]
        self._on_close_cb(eng.stream_id, eng.close_reason, eng.reset_by_peer)

    def _adopt(self, eng: StreamEngine) -> StreamEngine:
        # One bound method per multiplexer shared by every engine, not one per stream (idle
        # streams: docs/benchmarks.md §Idle streams).
        eng._wake = self._wake              # the ready deque's append: a C call, no Python frame
        eng._on_close = self._closed_cb
        eng._budget = self._budget
        self.streams[eng.stream_id] = eng
        if eng.wants_output():
            eng._queued = True
            self._ready.append(eng)
        if eng.mode != LEGACY:
            self._dirty.add(eng)
        return eng

    # ------------------------------------------------------------------ input
    def feed(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Route one received binary websocket message (one relay frame)."""
        self._now = now
        try:
            f = _decode(data)
        except _FrameError as exc:
            self._bad(exc, now)
            return
        eng = self.streams.get(f.stream_id)
        if eng is None:
            eng = self._unknown(f, now)
            if eng is None:
                return
        elif eng.mode == LEGACY:
            # 0.131.0 hot path, inlined: an unsplit Data is delivered as is (§Frames already
            # guarantees segment_index < segment_count, so count 1 means index 0).
            if f.kind == _DATA and f.segment_count == 1 and not eng.closed:
                eng.n_delivered += 1
                eng._sink(f.stream_id, f.payload)
                return
            if f.kind == _HANDSHAKE:
                self._handshake(eng, f.payload)
                return
            eng.on_frame(f, now)
            return
        if f.kind == _HANDSHAKE:
            self._handshake(eng, f.payload)
            if eng.mode != LEGACY:
                self._dirty.add(eng)
            return
        eng.on_frame(f, now)
        if eng.mode != LEGACY:
            self._dirty.add(eng)

    def feed_many(self, frames: Iterable[bytes], now: float) -> None:
        for data in frames:
            self.feed(data, now)

    def _bad(self, exc: Exception, now: float) -> None:
        self.bad_frames += 1
        self.last_bad_frame = str(exc)
        if now - self._last_bad_log >= 60.0:
            self._last_bad_log = now
            log.warning("dropping invalid relay frame (%d so far): %s", self.bad_frames, exc)
        sid = getattr(exc, "stream_id", None)
        if sid is not None:
            eng = self.streams.get(sid)
            # docs/relay-protocol.md §Frames resets the named stream; a legacy stream keeps 0.131.0
            # behaviour instead (the frame is dropped and the session goes on:
            # docs/relay-protocol.md §Legacy streams).
            if eng is not None and not eng.closed and eng.mode != LEGACY:
                eng.fail(str(exc))

    def _refuse(self, sid: str, now: float, reason: str) -> None:
        """Answer frames of a stream we will not serve with a Reset (nothing else is kept)."""
        # A bare closed engine whose only output is the Reset (legacy mode: no window state).
        eng = StreamEngine(sid, self.role, LEGACY, now, self._on_message)
        eng.closed = True
        eng.close_reason = reason
        eng._push_ctrl(_RESET, 0, reason)
        self._ready.append(eng)
        eng._queued = True

    def _unknown(self, f, now: float) -> StreamEngine | None:
        sid = f.stream_id
        kind = f.kind
        tomb = self._tombs.get(sid)
        if tomb is not None:
            if tomb[2] == LEGACY:
                # 0.131.0 recreates a reset/ended stream on its next Data, whatever the seq
                # (docs/relay-protocol.md §Legacy streams): the stream_id stays legacy.
                del self._tombs[sid]
                if self.role == ACCEPTOR and kind == _DATA and f.segment_count == 1:
                    eng = StreamEngine.accept(sid, now, LEGACY, self._on_message)
                    self._adopt(eng)
                    self._on_open(sid, MODE_NAMES[LEGACY])
                    return eng
                self.unrouted_frames += 1
                return None
            elif tomb[0] >= now:
                self.unrouted_frames += 1
                if kind == _DATA or kind == _RESUME:
                    # The peer still thinks the stream lives: repeat the Reset (it may be lost).
                    self._refuse(sid, now, tomb[1])
                return None
            del self._tombs[sid]
        if self.role == OPENER:
            self.unrouted_frames += 1
            return None
        if kind == _DATA:
            if f.seq == 0:
                if f.segment_count != 1:  # 0.131.0 drops it and creates nothing (§Legacy streams)
                    self.bad_frames += 1
                    self.last_bad_frame = "segmented data frame opening a legacy stream"
                    return None
                eng = StreamEngine.accept(sid, now, LEGACY, self._on_message)
            elif f.seq > 1 and f.ack > 0:
                # The stream began before this executor existed (it restarted): the peer
                # already received our Data on it (ack > 0), we have none of its earlier
                # segments and never will, so waiting would hang the peer.
                self._refuse(sid, now, UNKNOWN_STREAM)
                return None
            else:
                eng = StreamEngine.accept(sid, now, RELIABLE, self._on_message)
                if f.seq > 1:
                    # Ambiguous: a reliable opener whose Resume{1} and seq 1 were lost (§Stream
                    # modes: reliable; it repeats them within an RTO), or a legacy harness
                    # mid-stream after an executor restart (it never will).  Wait a little for seq 1
                    # / Resume{1}, then reset with UNKNOWN_STREAM: never a hang, never a false reset
                    # on a lossy link.
                    eng._probation_at = now + PROBATION_SECONDS
        elif kind == _RESUME and f.next_seq > 1:
            self._refuse(sid, now, UNKNOWN_STREAM)  # a Resume of a stream we never had
            return None
        elif kind == _RESUME and f.next_seq >= 1:
            eng = StreamEngine.accept(sid, now, RELIABLE, self._on_message, answer=False)
        elif kind == _HANDSHAKE:
            if self._on_handshake is None:
                self._refuse(sid, now, NOISE_REFUSED)
                return None
            # A 0.171 harness: Resume{0} (which creates nothing) then its handshake; the
            # records follow as legacy Data from seq 0 (docs/noise.md §Frames).
            eng = StreamEngine.accept(sid, now, LEGACY, self._on_message)
            eng.noise = True
        else:
            self.unrouted_frames += 1
            return None
        self._adopt(eng)
        self._on_open(sid, MODE_NAMES[eng.mode])
        return eng

    def _handshake(self, eng: StreamEngine, payload: bytes) -> None:
        """A Handshake frame on a known stream: to ``on_handshake`` (or the refusing Reset)."""
        if eng.closed:
            return
        if self._on_handshake is None:
            eng.reset(NOISE_REFUSED)
            return
        if eng.role == OPENER:
            eng.handshake_answered()
        else:
            eng.noise = True
        self._on_handshake(eng.stream_id, payload)

    # ------------------------------------------------------------------ application calls
    def open_stream(self, stream_id: str, now: float, mode: int = RELIABLE) -> StreamEngine:
        """Opener side: start a stream (RELIABLE proposes docs/relay-protocol.md §Reliable mode
        and falls back per §Stream modes; LEGACY talks to a 0.131.0 executor exactly like the
        0.131.0 harness)."""
        if stream_id in self.streams:
            raise ValueError(f"stream {stream_id!r} already exists")
        self._now = now
        self._tombs.pop(stream_id, None)
        eng = StreamEngine.open(stream_id, now, mode, self._on_message)
        return self._adopt(eng)

    def send(self, stream_id: str, message: bytes) -> None:
        """Queue one message on a stream (see :meth:`StreamEngine.send` for the errors)."""
        eng = self.streams.get(stream_id)
        if eng is None:
            raise StreamClosed(f"no such stream {stream_id!r}")
        if eng.mode == LEGACY and not eng.closed and 0 < len(message) <= _LEGACY_FAST_MAX:
            # 0.131.0 hot path, inlined StreamEngine.send: encode now, queue, wake.  A large
            # message is not copied into its frame (docs/architecture.md §Large transfers).
            frame: bytes | SplitFrame
            if len(message) >= _SPLIT_MIN and self._split and type(message) is bytes:
                frame = encode_data_split(_encode_data, stream_id, eng._tx_seq, 0, 0, message)
            else:
                frame = _encode_data(stream_id, eng._tx_seq, 0, 0, message)
            eng._tx_seq = (eng._tx_seq + 1) & MAX_SEQ
            q = eng._out
            if q is None:
                eng._out = [frame]
            else:
                q.append(frame)
            n = eng._queued_bytes + len(frame)
            eng._queued_bytes = n
            if n > STREAM_HIGH_WATER and not eng._blocked:
                self._block(eng)
            if not eng._queued:
                eng._queued = True
                self._ready.append(eng)
            return
        eng.send(message)
        if eng._queued_bytes > STREAM_HIGH_WATER and not eng._blocked:
            self._block(eng)

    def send_handshake(self, stream_id: str, payload: bytes, now: float) -> None:
        """Queue a Noise handshake message on a stream (:meth:`StreamEngine.send_handshake`)."""
        eng = self.streams.get(stream_id)
        if eng is None:
            raise StreamClosed(f"no such stream {stream_id!r}")
        self._now = now
        eng.send_handshake(payload, now)
        if eng.mode != LEGACY:
            self._dirty.add(eng)

    def _block(self, eng: StreamEngine) -> None:
        eng._blocked = True
        if self._on_writable is not None:
            self._on_writable(eng.stream_id, False)

    def reset(self, stream_id: str, reason: str) -> None:
        """Reset one stream from this side (no-op for unknown/closed streams)."""
        eng = self.streams.get(stream_id)
        if eng is not None:
            eng.reset(clip_reason(reason))

    def stream(self, stream_id: str) -> StreamEngine | None:
        return self.streams.get(stream_id)

    def buffered(self, stream_id: str) -> int:
        """Bytes queued on a stream and not yet sent (for application backpressure)."""
        eng = self.streams.get(stream_id)
        return eng.buffered_bytes if eng is not None else 0

    def writable(self, stream_id: str) -> bool:
        """False while the stream's queued bytes went above STREAM_HIGH_WATER and have not yet
        come back to STREAM_LOW_WATER (see ``on_writable``)."""
        eng = self.streams.get(stream_id)
        return eng is not None and not eng.closed and not eng._blocked

    @property
    def reassembly_in_use(self) -> int:
        """Bytes of the shared reassembly budget held by messages being received."""
        return self._budget.used

    # ------------------------------------------------------------------ output
    def has_output(self) -> bool:
        return bool(self._ready)

    def poll_output(self, now: float, max_bytes: int = 0) -> list[bytes | SplitFrame]:
        """Every frame ready now, round-robin across streams (one frame per stream per turn).
        With ``split_large``, a large legacy message's frame is a :class:`SplitFrame`."""
        self._now = now
        out: list[bytes | SplitFrame] = []
        ready = self._ready
        dirty = self._dirty
        streams = self.streams
        total = 0
        drained: list[StreamEngine] | None = None
        while ready:
            eng = ready.popleft()
            q = eng._out
            if (eng.mode == LEGACY and eng._ctrl is None and q is not None
                    and (i := eng._out_i) < len(q)):
                # 0.131.0 hot path, inlined emit_one: pre-encoded frames, one per turn.
                frame = q[i]
                out.append(frame)
                eng._queued_bytes -= len(frame)
                if eng._blocked and eng._queued_bytes <= STREAM_LOW_WATER:
                    drained = self._drained(eng, drained)
                i += 1
                more = i < len(q)
                if more:
                    q[i - 1] = None
                    eng._out_i = i
                else:
                    # drained: drop the list (an idle stream keeps none: 56 B of the
                    # ~1 KiB per idle stream; the next reply takes one from the freelist)
                    eng._out = None
                    eng._out_i = 0
                    eng._queued = False
            else:
                eng._queued = False
                frame = eng.emit_one(now)
                if frame is None:
                    if eng.closed and streams.get(eng.stream_id) is eng:
                        del streams[eng.stream_id]
                    continue
                out.append(frame)
                if eng._blocked and eng._queued_bytes <= STREAM_LOW_WATER and not eng.closed:
                    drained = self._drained(eng, drained)
                if eng.mode != LEGACY:
                    dirty.add(eng)
                more = eng._queued = eng.wants_output()
            # Both paths: a stream with more to send goes round again (still queued), one done
            # and closed leaves the table; then the byte budget.
            if more:
                ready.append(eng)
            elif eng.closed and streams.get(eng.stream_id) is eng:
                del streams[eng.stream_id]
            if max_bytes:
                total += len(frame)
                if total >= max_bytes:
                    break
        if drained is not None and self._on_writable is not None:
            # after the loop: the callback may send (resumed producers) re-entrantly
            for eng in drained:
                if not eng.closed:
                    self._on_writable(eng.stream_id, True)
        return out

    @staticmethod
    def _drained(eng: StreamEngine, drained: list[StreamEngine] | None) -> list[StreamEngine]:
        eng._blocked = False
        if drained is None:
            return [eng]
        drained.append(eng)
        return drained

    # ------------------------------------------------------------------ timers
    def _flush_dirty(self) -> None:
        heap = self._heap
        for eng in self._dirty:
            if eng.closed:
                continue
            d = eng.next_deadline()
            if d >= 0.0 and (eng._heap_at < 0.0 or d < eng._heap_at):
                eng._heap_at = d
                self._heap_n += 1
                heapq.heappush(heap, (d, self._heap_n, eng))
        self._dirty.clear()

    def next_deadline(self) -> float | None:
        """The earliest absolute time :meth:`tick` has work, or None."""
        self._flush_dirty()
        heap = self._heap
        while heap:
            d, _, eng = heap[0]
            if eng.closed or d != eng._heap_at:
                heapq.heappop(heap)
                continue
            return d
        return None

    def tick(self, now: float) -> None:
        """Run every timer due at ``now`` (then call :meth:`poll_output`)."""
        self._now = now
        self._flush_dirty()
        heap = self._heap
        while heap and heap[0][0] <= now:
            d, _, eng = heapq.heappop(heap)
            if eng.closed or d != eng._heap_at:
                continue
            eng._heap_at = -1.0
            eng.on_timer(now)
            self._dirty.add(eng)
        self._flush_dirty()
        tombs = self._tombs
        while tombs:
            sid, (expiry, _, _) = next(iter(tombs.items()))
            if expiry > now:
                break
            del tombs[sid]

    # ------------------------------------------------------------------ transport events
    def on_disconnect(self) -> None:
        """The websocket is gone: legacy streams end (0.131.0 disconnects them all); reliable
        streams survive until :meth:`on_reconnect` (or their owner resets them)."""
        for eng in list(self.streams.values()):
            if eng.mode == LEGACY and not eng.closed:
                eng._teardown("disconnected", True)
        # (closed engines still in the ready queue are reaped by the next poll_output)

    def on_reconnect(self, now: float) -> None:
        """A new websocket replaces the old one: every live reliable stream sends
        ``Resume{next_seq}`` and resends everything unacknowledged."""
        self._now = now
        for eng in list(self.streams.values()):
            if not eng.closed and eng.mode != LEGACY:
                eng.on_reconnect(now)
                self._dirty.add(eng)

    def __len__(self) -> int:
        return len(self.streams)


__all__ = ["Multiplexer", "ACCEPTOR", "OPENER", "LEGACY", "PENDING", "RELIABLE",
           "TOMBSTONE_SECONDS"]
