"""One relay stream as a sans-I/O state machine (legacy/reliable modes:
docs/relay-protocol.md §Stream modes; reliability: docs/relay-protocol.md §Reliable mode).

A :class:`StreamEngine` never reads a clock and never touches a socket: it is fed decoded
frames with the current time (a float, seconds, any epoch) and is asked for encoded frames to
send (:meth:`emit_one`), for delivered messages (``sink`` callback or :attr:`inbox`) and for its
next timer deadline (:meth:`next_deadline` / :meth:`on_timer`).  Normally the
:class:`~execrelay.stream.mux.Multiplexer` drives engines; tests also drive two engines
directly over a simulated link.

Modes (fixed for the stream's life once known, docs/relay-protocol.md §Stream modes):

``LEGACY``    exactly 0.131.0: Data seq 0,1,2,... one per message, ack = ack_bits = 0, never
              segments, never retransmits, ignores seq/acks/Resume/Heartbeat on receive,
              delivers every Data in arrival order (duplicates too); a message whose frame
              would exceed 16 MiB raises :class:`MessageTooLarge` locally.
``RELIABLE``  docs/relay-protocol.md §Reliable mode: seq from 1 per segment, piggybacked cumulative
              ack + ack_bits, delayed standalone acks (5 ms / 16 segments), 32-segment / 2 MiB send
              window, RFC 6298 RTO with backoff, fast retransmit, duplicate suppression, 64-segment
              / 1 MiB reorder buffer, 60 KiB segments reassembled up to 64 MiB, exactly-once
              in-order delivery, Resume + resend after reconnect, 30 s idle heartbeat.
``PENDING``   opener only: ``Resume{next_seq=1}`` sent, answer not seen yet.  Sends unsplit messages
              (<= 60 KiB) as reliable Data; holds larger ones (so a first message over 60 KiB can
              only reach an execrelay peer: a 0.131.0 executor never answers and only reveals itself
              by replying).  Resume{1} is repeated on an RTO-like timer (500 ms, doubling, <= 10 s)
              until answered.  Becomes RELIABLE on a Resume answer, an Ack frame or Data with seq >=
              1 (the executor rule of §Stream modes, applied symmetrically so a lost answer cannot
              flip the mode); becomes LEGACY on Data with seq 0 (a 0.131.0 executor).
              Retransmissions are preceded by ``Resume{next_seq=1}`` as §Stream modes requires.

Protocol violations (bad seq/segment patterns, acks of unsent seqs, ...) reset the stream with
``protocol_error: <what>``; a Reset from the peer closes it.  Either way :attr:`closed` becomes
true and ``on_close`` fires once.
"""
from __future__ import annotations

from typing import Callable

from .. import wire
from ..wire import ACK as _ACK, DATA as _DATA, HEARTBEAT as _HEARTBEAT, RESET as _RESET
from ..wire import HANDSHAKE as _HANDSHAKE, RESUME as _RESUME, clip_reason
from ..wire import encode_control as _encode_control, encode_data as _encode_data
from .errors import (LEGACY_MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MAX_SEGMENTS, MAX_SEQ,
                     REASSEMBLY_BUDGET_BYTES, REORDER_BYTES, RTO_INITIAL, RTO_MAX, SEGMENT_BYTES,
                     SEND_WINDOW_BYTES, SEND_WINDOW_SEGMENTS, UNKNOWN_STREAM,
                     MessageTooLarge, ProtocolViolation, StreamClosed)
from .hot import DROPPED, DUPLICATE, IN_ORDER, Reassembler, RecvWindow, SendWindow

LEGACY = 0
PENDING = 1
RELIABLE = 2
MODE_NAMES = {LEGACY: "legacy", PENDING: "pending", RELIABLE: "reliable"}

OPENER = "opener"      # the harness side: creates the stream, proposes the mode
ACCEPTOR = "acceptor"  # the executor side: streams appear when the peer opens them

#: Delay before a standalone ack when there is nothing to piggyback on
#: (docs/relay-protocol.md §Reliable mode: <= 5 ms).
ACK_DELAY = 0.005
#: Received segments that force an immediate ack (docs/relay-protocol.md §Reliable mode).
ACK_EVERY = 16
#: Idle time after which a reliable stream sends a heartbeat
#: (docs/relay-protocol.md §Reliable mode).
HEARTBEAT_IDLE = 30.0

#: A Data frame's bytes besides its payload stay below this (stream_id <= 128 bytes, varints).
_FRAME_HEADER_MAX = 2 * wire.MAX_STREAM_ID_BYTES


class ReassemblyBudget:
    """Reassembly memory shared by the engines of one multiplexer (one executor socket).

    Why: each stream may reassemble a 64 MiB message, so N streams could pin N x 64 MiB.  An
    engine reserves ``segment_count x SEGMENT_BYTES`` (what the compiled reassembler
    preallocates) when a multi-segment message starts and releases it when the message is
    delivered or the stream ends; a stream whose reservation would exceed ``limit`` is reset
    (docs/relay-protocol.md §Limits).
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = REASSEMBLY_BUDGET_BYTES) -> None:
        self.limit = limit
        self.used = 0


class StreamEngine:
    """State of one stream on one side.  See the module docstring.

    Memory matters (an executor holds up to 10,000 idle streams, 2 KiB each: docs/relay-protocol.md
    §Executor behaviour): a legacy stream carries no reliable-mode state at all
    (``_sw``/``_rw``/``_reasm`` are None) and queues are plain lists created on first use.
    """

    __slots__ = ("stream_id", "role", "mode", "closed", "close_reason", "reset_by_peer",
                 "_inbox", "_sink", "_on_close", "_wake", "_queued", "_heap_at",
                 "_ctrl", "_out", "_out_i", "_tx_seq", "_msgq", "_msgq_i", "_queued_bytes", "_cur",
                 "_cur_off", "_cur_idx", "_cur_count", "_sw", "_rw", "_reasm", "_retx",
                 "_unacked_rx", "_ack_at", "_ack_now", "_hb_now", "_last_tx", "_resume_at",
                 "_resume_rto", "_probation_at", "_blocked", "_budget", "_reserved",
                 "_hs", "_hs_at", "_hs_n", "noise", "n_retransmits", "n_duplicates", "n_dropped", "n_delivered")

    def __init__(self, stream_id: str, role: str, mode: int, now: float,
                 sink: Callable[[str, bytes], None] | None = None) -> None:
        self.stream_id = stream_id
        self.role = role
        self.mode = mode
        self.closed = False
        self.close_reason: str | None = None
        self.reset_by_peer = False
        self._inbox: list[bytes] | None = None
        self._sink = sink if sink is not None else self._to_inbox
        self._on_close: Callable[[StreamEngine], None] | None = None
        self._wake: Callable[[StreamEngine], None] | None = None
        self._queued = False     # in the multiplexer's ready queue
        self._heap_at = -1.0     # multiplexer timer-heap bookkeeping
        self._ctrl: list | None = None   # (kind, next_seq, reason) control frames, sent first
        self._out: list | None = None    # legacy: pre-encoded Data frames ...
        self._out_i = 0                  # ... of which this many were already handed out
        self._tx_seq = 0                 # legacy: next seq (0.131.0 starts at 0, wraps)
        self._msgq: list | None = None   # reliable: messages not yet segmented (lazy) ...
        self._msgq_i = 0                 # ... of which this many were already taken
        self._queued_bytes = 0   # bytes accepted by send() and not yet handed out (both modes)
        self._blocked = False    # above STREAM_HIGH_WATER, not yet back to the low mark (mux)
        self._budget: ReassemblyBudget | None = None   # shared by the multiplexer's streams
        self._reserved = 0       # bytes of _budget held by the message being reassembled
        self._cur: memoryview | None = None   # message being segmented
        self._cur_off = 0
        self._cur_idx = 0
        self._cur_count = 0
        # reliable-mode state, None on legacy streams: typed as present because only reliable
        # code paths touch it (an assert per use would tax the hot path)
        self._sw: SendWindow = None      # type: ignore[assignment]
        self._rw: RecvWindow = None      # type: ignore[assignment]
        self._reasm: Reassembler = None  # type: ignore[assignment]
        self._retx: list | None = None   # reliable: seqs to retransmit (lazy, <= 32)
        if mode != LEGACY:
            self._reliable_state()
        self._unacked_rx = 0
        self._ack_at = -1.0
        self._ack_now = False
        self._hb_now = False
        self._last_tx = now
        self._resume_at = -1.0          # PENDING: when to repeat Resume{1} (no answer yet)
        self._resume_rto = RTO_INITIAL
        self._probation_at = -1.0       # acceptor: reset unless seq 1 arrives by then (mux)
        self._hs: bytes | None = None   # reliable opener: handshake message until answered
        self._hs_at = -1.0              # ... when to repeat it
        self._hs_n = 0                  # ... times sent (the repeat interval doubles)
        #: the stream carries a Noise channel (docs/noise.md §Endpoints): a Handshake frame
        #: went either way on it
        self.noise = False
        self.n_retransmits = 0
        self.n_duplicates = 0
        self.n_dropped = 0
        self.n_delivered = 0

    def _reliable_state(self) -> None:
        self._sw = SendWindow(SEND_WINDOW_SEGMENTS, SEND_WINDOW_BYTES)
        self._rw = RecvWindow(REORDER_BYTES)
        self._reasm = Reassembler()

    @property
    def inbox(self) -> list[bytes]:
        """Delivered messages when no ``sink`` is given (standalone use, tests)."""
        if self._inbox is None:
            self._inbox = []
        return self._inbox

    @property
    def stats(self) -> dict[str, int]:
        return {"retransmits": self.n_retransmits, "duplicates": self.n_duplicates,
                "dropped": self.n_dropped, "delivered": self.n_delivered}

    def _push_ctrl(self, kind: int, next_seq: int = 0, reason: str = "") -> None:
        if self._ctrl is None:
            self._ctrl = []
        self._ctrl.append((kind, next_seq, reason))

    # ----------------------------------------------------------------------------- creation
    @classmethod
    def open(cls, stream_id: str, now: float, mode: int = RELIABLE,
             sink: Callable[[str, bytes], None] | None = None) -> "StreamEngine":
        """Opener (harness) side: propose reliable mode (``Resume{1}``, PENDING until the
        answer) or open a legacy stream the way 0.131.0 does (``Resume{0}``)."""
        if mode == LEGACY:
            eng = cls(stream_id, OPENER, LEGACY, now, sink)
            eng._push_ctrl(_RESUME, 0)
        else:
            eng = cls(stream_id, OPENER, PENDING, now, sink)
            eng._push_ctrl(_RESUME, 1)
        return eng

    @classmethod
    def accept(cls, stream_id: str, now: float, mode: int,
               sink: Callable[[str, bytes], None] | None = None,
               answer: bool = True) -> "StreamEngine":
        """Acceptor (executor) side.  A reliable stream answers ``Resume{next_seq=1}`` before
        any Data (``answer``); the multiplexer passes ``answer=False`` when the opening frame
        is itself a Resume, which :meth:`on_frame` answers."""
        eng = cls(stream_id, ACCEPTOR, mode, now, sink)
        if mode != LEGACY and answer:
            eng._push_ctrl(_RESUME, 1)
        return eng

    def _to_inbox(self, _sid: str, payload: bytes) -> None:
        self.inbox.append(payload)

    # ----------------------------------------------------------------------------- sending
    @property
    def buffered_bytes(self) -> int:
        """Bytes accepted by :meth:`send` and not yet handed out (application backpressure:
        legacy frames not yet polled, reliable bytes not yet in the send window)."""
        return self._queued_bytes

    @property
    def unacked_bytes(self) -> int:
        return self._sw.in_flight_bytes if self._sw is not None else 0

    def send(self, message: bytes) -> None:
        """Queue one message (a JSON-RPC payload).  Raises :class:`StreamClosed`,
        :class:`MessageTooLarge` (legacy > 16 MiB frame, reliable > 64 MiB) or ValueError
        (empty message; docs/relay-protocol.md §Frames forbids empty payloads)."""
        if self.closed:
            raise StreamClosed(f"stream {self.stream_id!r} is closed ({self.close_reason})")
        n = len(message)
        if n == 0:
            raise ValueError("relay messages must not be empty")
        if self.mode == LEGACY:
            frame = self._legacy_frame(message)
            if self._out is None:
                self._out = [frame]
            else:
                self._out.append(frame)
            self._queued_bytes += len(frame)
        else:
            if n > MAX_MESSAGE_BYTES:
                raise MessageTooLarge(
                    f"message of {n} bytes exceeds the {MAX_MESSAGE_BYTES}-byte reliable-mode limit")
            if type(message) is not bytes:
                message = bytes(message)
            if self._msgq is None:
                self._msgq = [message]
            else:
                self._msgq.append(message)
            self._queued_bytes += n
        if not self._queued and self._wake is not None:
            self._queued = True
            self._wake(self)

    def _legacy_frame(self, message: bytes) -> bytes:
        n = len(message)
        if n > LEGACY_MAX_FRAME_BYTES:
            raise MessageTooLarge(
                f"message of {len(message)} bytes cannot be sent to a legacy (0.131.0) peer: "
                f"frames are limited to {LEGACY_MAX_FRAME_BYTES} bytes")
        frame = _encode_data(self.stream_id, self._tx_seq, 0, 0, message)
        # The frame header is small (stream_id <= 128 bytes), so only near the limit:
        if n > LEGACY_MAX_FRAME_BYTES - _FRAME_HEADER_MAX and len(frame) > LEGACY_MAX_FRAME_BYTES:
            raise MessageTooLarge(
                f"message of {len(message)} bytes cannot be sent to a legacy (0.131.0) peer: "
                f"the frame would be {len(frame)} bytes, over {LEGACY_MAX_FRAME_BYTES}")
        self._tx_seq = (self._tx_seq + 1) & MAX_SEQ
        return frame

    def wants_output(self) -> bool:
        """True when :meth:`emit_one` would return a frame now."""
        if self._ctrl:
            return True
        if self.closed:
            return False
        if self.mode == LEGACY:
            return self._out is not None and self._out_i < len(self._out)
        if self._retx or self._ack_now or self._hb_now:
            return True
        cur = self._cur
        if cur is not None:
            n = len(cur) - self._cur_off
            return self._sw.can_send(n if n < SEGMENT_BYTES else SEGMENT_BYTES)
        q = self._msgq
        if q is not None and self._msgq_i < len(q):
            n = len(q[self._msgq_i])
            if n > SEGMENT_BYTES:
                if self.mode == PENDING:
                    return False
                n = SEGMENT_BYTES
            return self._sw.can_send(n)
        return False

    def emit_one(self, now: float) -> bytes | None:
        """The next encoded frame to send, or None.  Order: control (Resume/Reset), legacy
        frames, retransmissions, new segments (window permitting), standalone ack, heartbeat.
        Every reliable frame carries the current ack/ack_bits."""
        if self._ctrl:
            ctrl = self._ctrl
            kind, next_seq, reason = ctrl.pop(0)
            if not ctrl:
                self._ctrl = None
            if kind == _HANDSHAKE:   # (the payload rides in the reason slot; no ack fields)
                return wire.encode(wire.Frame.handshake(self.stream_id, reason))
            if self.mode == LEGACY:
                return _encode_control(kind, self.stream_id, 0, 0, next_seq, reason)
            if self.mode == PENDING and kind == _RESUME:
                # Repeat the proposal until answered, even with nothing in flight (a lost
                # Resume must not leave a held >60 KiB first message waiting forever).
                self._resume_at = now + self._resume_rto
                rto = self._resume_rto * 2.0
                self._resume_rto = rto if rto < RTO_MAX else RTO_MAX
            return self._sent(now, _encode_control(kind, self.stream_id, self._rw.ack,
                                                   self._rw.ack_bits, next_seq, reason))
        if self.closed:
            return None
        if self.mode == LEGACY:
            out = self._out
            if out is None:
                return None
            i = self._out_i
            n = len(out)
            if i >= n:
                return None
            frame = out[i]
            i += 1
            if i == n:            # drained: an idle stream keeps no list (see Mux.poll_output)
                self._out = None
                i = 0
            else:
                out[i - 1] = None
            self._out_i = i
            self._queued_bytes -= len(frame)
            return frame
        sw = self._sw
        while self._retx:
            seq = self._retx.pop(0)
            seg = sw.get(seq)
            if seg is not None:
                sw.mark_sent(seq, now)
                self.n_retransmits += 1
                if type(seg) is tuple:           # (payload view, index, count)
                    payload, idx, count = seg
                else:                            # an unsplit message
                    payload, idx, count = seg, 0, 1
                return self._sent(now, _encode_data(self.stream_id, seq, self._rw.ack,
                                                    self._rw.ack_bits, payload, idx, count))
        frame = self._next_segment(now)
        if frame is not None:
            return frame
        if self._ack_now or self._hb_now:
            kind = _ACK if self._ack_now else _HEARTBEAT
            return self._sent(now, _encode_control(kind, self.stream_id, self._rw.ack,
                                                   self._rw.ack_bits))
        return None

    def _sent(self, now: float, frame: bytes) -> bytes:
        self._ack_now = False
        self._hb_now = False
        self._ack_at = -1.0
        self._unacked_rx = 0
        self._last_tx = now
        return frame

    def _next_segment(self, now: float) -> bytes | None:
        cur = self._cur
        if cur is None:
            q = self._msgq
            if q is None:
                return None
            i = self._msgq_i
            if i >= len(q):
                return None
            head = q[i]
            n = len(head)
            if n > SEGMENT_BYTES and self.mode == PENDING:
                return None
            if not self._sw.can_send(n if n < SEGMENT_BYTES else SEGMENT_BYTES):
                return None
            i += 1
            if i == len(q):       # drained: reuse the list, no per-message churn
                q.clear()
                i = 0
            else:
                q[i - 1] = None
            self._msgq_i = i
            sw = self._sw
            if n <= SEGMENT_BYTES:
                self._queued_bytes -= n
                # The common case, short-circuited: the whole message is one segment.
                if sw.next_seq > MAX_SEQ:
                    self.reset("protocol_error: sequence space exhausted")
                    return self.emit_one(now)
                seq = sw.push(head, n, now)      # unsplit: the payload itself, no tuple
                rw = self._rw
                return self._sent(now, _encode_data(self.stream_id, seq, rw.ack, rw.ack_bits,
                                                    head, 0, 1))
            cur = memoryview(head)   # segments are views: the only copy is into the frame
            self._cur = cur
            self._cur_off = 0
            self._cur_idx = 0
            self._cur_count = -(-n // SEGMENT_BYTES)
        sw = self._sw
        count = self._cur_count
        if count == 1:
            payload = cur
        else:
            off = self._cur_off
            payload = cur[off:off + SEGMENT_BYTES]
        n = len(payload)
        if not sw.can_send(n):
            return None
        if sw.next_seq > MAX_SEQ:
            self.reset("protocol_error: sequence space exhausted")
            return self.emit_one(now)
        idx = self._cur_idx
        seq = sw.push((payload, idx, count), n, now)
        self._queued_bytes -= n
        if idx + 1 >= count:
            self._cur = None
        else:
            self._cur_idx = idx + 1
            self._cur_off += n
        return self._sent(now, _encode_data(self.stream_id, seq, self._rw.ack, self._rw.ack_bits,
                                            payload, idx, count))

    # ----------------------------------------------------------------------------- receiving
    def on_frame(self, f, now: float) -> None:
        """Process one decoded frame addressed to this stream."""
        if self.closed:
            return
        kind = f.kind
        mode = self.mode
        if kind == _RESET:
            self._closed_by_peer(f.reason)
            return
        if mode == LEGACY:
            if kind == _DATA:
                if f.segment_count != 1 or f.segment_index != 0:
                    self.fail(f"segmented data frame ({f.segment_index}/{f.segment_count}) "
                              "on a legacy stream")
                    return
                self.n_delivered += 1
                self._sink(self.stream_id, f.payload)
            return  # 0.131.0 ignores Resume, Ack, Heartbeat and every seq/ack field
        if mode == PENDING:
            if kind == _DATA and f.seq == 0:
                self._become_legacy()
                self.on_frame(f, now)
                self._maybe_wake()
                return
            if (kind == _RESUME and f.next_seq >= 1) or kind == _ACK or kind == _DATA:
                self.mode = RELIABLE
                self._resume_at = -1.0
                if self._hs is not None:
                    self._queue_handshake(now)
                if kind == _RESUME:      # the answer: nothing to resend
                    kind = _ACK          # (only its ack fields matter)
            else:
                return
        try:
            ack = f.ack
            bits = f.ack_bits
            sw = self._sw
            # (an ack that releases nothing new and carries no selective bits is a no-op)
            if (ack >= sw.base or bits) and sw.on_ack(ack, bits, now):
                self._queue_fast()
            if kind == _DATA:
                self._rx_data(f, now)
            elif kind == _RESUME:
                if f.next_seq >= 1:
                    if self.role == ACCEPTOR:
                        self._push_ctrl(_RESUME, self._sw.next_seq)
                    self._resend_all()
                    self._ack_now = True
        except ProtocolViolation as exc:
            self.fail(str(exc))
            return
        if not self._queued and self._wake is not None and self.wants_output():
            self._queued = True
            self._wake(self)

    def _maybe_wake(self) -> None:
        if not self._queued and self._wake is not None and self.wants_output():
            self._queued = True
            self._wake(self)

    def _queue_fast(self) -> None:
        """Queue the fast retransmits the last ``on_ack`` found."""
        retx = self._retx
        for seq in self._sw.take_fast():
            if retx is None:
                self._retx = retx = [seq]
            elif seq not in retx:
                retx.append(seq)

    def _rx_data(self, f, now: float) -> None:
        seq = f.seq
        if seq == 0:
            raise ProtocolViolation("data seq 0 on a reliable stream")
        idx = f.segment_index
        count = f.segment_count
        if seq - idx < 1:
            raise ProtocolViolation(f"segment {idx} at seq {seq} would start a message before seq 1")
        if count > MAX_SEGMENTS:
            raise ProtocolViolation(f"message of {count} segments exceeds {MAX_MESSAGE_BYTES} bytes")
        payload = f.payload
        n = len(payload)
        if n > SEGMENT_BYTES:
            raise ProtocolViolation(f"segment payload of {n} bytes exceeds {SEGMENT_BYTES}")
        rw = self._rw
        code = rw.offer(seq, f, n)
        if code == IN_ORDER:
            if count == 1 and not self._reasm.active:
                self.n_delivered += 1            # unsplit message: delivered as is
                self._sink(self.stream_id, payload)
            else:
                self._rx_segment(f)
            if rw.buffered_count:
                while not self.closed:
                    g = rw.pop_next()
                    if g is None:
                        break
                    self._rx_segment(g)
                    self._unacked_rx += 1
            self._unacked_rx += 1
            if self._unacked_rx >= ACK_EVERY:
                self._ack_now = True
            elif self._ack_at < 0.0:
                self._ack_at = now + ACK_DELAY
        else:
            if code == DUPLICATE:
                self.n_duplicates += 1
            elif code == DROPPED:
                self.n_dropped += 1
            self._ack_now = True

    def _rx_segment(self, f) -> None:
        count = f.segment_count
        if count > 1 and self._budget is not None and not self._reasm.active:
            budget = self._budget
            need = count * SEGMENT_BYTES
            if budget.used + need > budget.limit:
                # The executor's streams together hold too much half-received data: the one
                # asking for more is reset, the others finish.
                self.reset(f"resource_exhausted: reassembly budget exceeded ({count}-segment "
                           f"message; {budget.used} of {budget.limit} bytes in use)")
                return
            budget.used += need
            self._reserved = need
        try:
            msg = self._reasm.feed(f.segment_index, count, f.payload)
        except MemoryError:
            # Too many big messages in flight at once: this stream alone pays for it.
            self.reset(f"resource_exhausted: cannot buffer a {count}-segment message")
            return
        if msg is not None:
            if self._reserved:
                self._release()
            self.n_delivered += 1
            self._sink(self.stream_id, msg)

    def _release(self) -> None:
        """Give the reassembly reservation back to the shared budget."""
        self._budget.used -= self._reserved  # type: ignore[union-attr]
        self._reserved = 0

    def _resend_all(self) -> None:
        self._retx = self._sw.unacked() or None

    def _become_legacy(self) -> None:
        """PENDING opener learned the peer is 0.131.0: continue exactly as 0.131.0 would."""
        self.mode = LEGACY
        self._resume_at = -1.0
        self._tx_seq = self._sw.next_seq
        msgs = self._msgq[self._msgq_i:] if self._msgq else []
        self._msgq_i = 0
        self._msgq = self._retx = None
        self._sw = self._rw = self._reasm = None  # type: ignore[assignment]  # released
        self._queued_bytes = 0
        try:
            for m in msgs:
                frame = self._legacy_frame(m)
                if self._out is None:
                    self._out = [frame]
                else:
                    self._out.append(frame)
                self._queued_bytes += len(frame)
        except MessageTooLarge as exc:
            self.reset(clip_reason(f"legacy_message_too_large: {exc}"))

    # ----------------------------------------------------------------------------- Noise
    def send_handshake(self, payload: bytes, now: float) -> None:
        """Queue one Noise handshake message as a Handshake frame (docs/noise.md §Endpoints).

        Legacy streams and the acceptor send it once, before any later Data (0.171 does the
        same).  A reliable opener holds it until the peer answered ``Resume{1}`` (so the
        acceptor knows the stream is reliable before it sees the handshake) and then repeats
        it on the retransmission timer (500 ms, doubling, <= 10 s, and after a reconnect)
        until the peer's Handshake frame arrives (:meth:`handshake_answered`): the handshake
        is not sequenced, so this is its retransmission.  Raises
        :class:`StreamClosed` or ValueError (empty)."""
        if self.closed:
            raise StreamClosed(f"stream {self.stream_id!r} is closed ({self.close_reason})")
        if not payload:
            raise ValueError("handshake messages must not be empty")
        self.noise = True
        if self.role == OPENER and self.mode != LEGACY:
            self._hs = bytes(payload)
            self._hs_n = 0
            if self.mode == RELIABLE:
                self._queue_handshake(now)
            return
        self._push_ctrl(_HANDSHAKE, 0, payload)  # type: ignore[arg-type]
        self._maybe_wake()

    def handshake_answered(self) -> None:
        """The peer's Handshake frame arrived: stop repeating ours."""
        self.noise = True
        self._hs = None
        self._hs_at = -1.0

    def _queue_handshake(self, now: float) -> None:
        rto = RTO_INITIAL * (1 << self._hs_n) if self._hs_n < 5 else RTO_MAX
        self._hs_n += 1
        self._hs_at = now + (rto if rto < RTO_MAX else RTO_MAX)
        if not self._ctrl or all(c[0] != _HANDSHAKE for c in self._ctrl):
            self._push_ctrl(_HANDSHAKE, 0, self._hs)  # type: ignore[arg-type]
        self._maybe_wake()

    # ----------------------------------------------------------------------------- timers
    def next_deadline(self) -> float:
        """Earliest time :meth:`on_timer` has work (ack delay, RTO, heartbeat); -1.0: none."""
        if self.closed or self.mode == LEGACY:
            return -1.0
        d = self._sw.next_deadline()
        a = self._ack_at
        if a >= 0.0 and (d < 0.0 or a < d):
            d = a
        hb = self._last_tx + HEARTBEAT_IDLE
        if d < 0.0 or hb < d:
            d = hb
        r = self._resume_at
        if r >= 0.0 and r < d:
            d = r
        r = self._probation_at
        if r >= 0.0 and r < d:
            d = r
        r = self._hs_at
        if r >= 0.0 and r < d:
            d = r
        return d

    def on_timer(self, now: float) -> None:
        if self.closed or self.mode == LEGACY:
            return
        if self._ack_at >= 0.0 and now >= self._ack_at:
            self._ack_at = -1.0
            self._ack_now = True
        sw = self._sw
        if sw.in_flight:
            expired = sw.expire(now)
            if expired:
                if self.mode == PENDING:
                    self._push_ctrl(_RESUME, 1)
                retx = self._retx
                if not retx:
                    self._retx = expired
                else:
                    for seq in expired:
                        if seq not in retx:
                            retx.append(seq)
        if now >= self._last_tx + HEARTBEAT_IDLE:
            self._hb_now = True
        if self._probation_at >= 0.0 and now >= self._probation_at:
            self._probation_at = -1.0
            if self._rw.ack == 0:      # seq 1 never came: the stream began elsewhere
                self.reset(UNKNOWN_STREAM)
                return
        if self._hs_at >= 0.0 and now >= self._hs_at and self._hs is not None:
            self._queue_handshake(now)
        if self._resume_at >= 0.0 and now >= self._resume_at and self.mode == PENDING:
            self._resume_at = -1.0
            if not self._ctrl:
                self._push_ctrl(_RESUME, 1)
        self._maybe_wake()

    # ----------------------------------------------------------------------------- lifecycle
    def on_reconnect(self, now: float) -> None:
        """The transport came back: send ``Resume{next_seq}`` then resend everything unacked
        (reliable/pending streams; legacy streams do not survive a reconnect)."""
        if self.closed or self.mode == LEGACY:
            return
        self._push_ctrl(_RESUME, self._sw.next_seq if self.mode == RELIABLE else 1)
        self._resend_all()
        if self._hs is not None and self.mode == RELIABLE:
            self._queue_handshake(now)
        self._maybe_wake()

    def reset(self, reason: str) -> None:
        """Tear the stream down from this side: one Reset frame goes out, nothing else."""
        if self.closed:
            return
        reason = clip_reason(reason)
        self._teardown(reason, False)
        self._push_ctrl(_RESET, 0, reason)
        self._maybe_wake()

    def fail(self, what: str) -> None:
        """Protocol violation by the peer: reset with ``protocol_error: <what>``."""
        self.reset("protocol_error: " + what)

    def _closed_by_peer(self, reason: str) -> None:
        self._teardown(reason, True)

    def _teardown(self, reason: str, by_peer: bool) -> None:
        self.closed = True
        self.close_reason = reason
        self.reset_by_peer = by_peer
        self._ctrl = None
        self._out = None
        self._out_i = 0
        self._cur = None
        self._queued_bytes = 0
        if self._reserved:
            self._release()
        if self._sw is not None:
            self._msgq = None
            self._msgq_i = 0
            self._retx = None
            self._sw.clear()
            self._rw.clear()
            self._reasm.clear()
        self._ack_now = self._hb_now = False
        self._hs = None
        self._hs_at = -1.0
        if self._on_close is not None:
            self._on_close(self)

    def __repr__(self) -> str:
        state = f"closed({self.close_reason!r})" if self.closed else "open"
        return f"<StreamEngine {self.stream_id!r} {self.role} {MODE_NAMES[self.mode]} {state}>"


__all__ = ["StreamEngine", "ReassemblyBudget", "LEGACY", "PENDING", "RELIABLE", "OPENER", "ACCEPTOR", "MODE_NAMES",
           "ACK_DELAY", "ACK_EVERY", "HEARTBEAT_IDLE", "clip_reason", "ProtocolViolation",
           "MessageTooLarge", "StreamClosed"]
