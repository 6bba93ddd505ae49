"""Errors and limits shared by the stream layer and by both twins of its hot path.

Kept in a plain Python module so the compiled and pure twins raise the *same* exception class
with the *same* text, which the differential tests compare.
"""
from __future__ import annotations

#: Legacy (0.131.0) peers drop the connection on a websocket frame above 16 MiB (defined once, in wire).
from ..wire.peek import LEGACY_MAX_FRAME_BYTES

#: docs/relay-protocol.md §Reliable mode: a segment (and an unsplit reliable message) carries
#: at most 60 KiB of payload.
SEGMENT_BYTES: int = 60 * 1024
#: docs/relay-protocol.md §Reliable mode: largest reassembled message.
MAX_MESSAGE_BYTES: int = 64 * 1024 * 1024
#: Most segments a legal message can have (ceil(64 MiB / 60 KiB) = 1093).
MAX_SEGMENTS: int = -(-MAX_MESSAGE_BYTES // SEGMENT_BYTES)
#: Reassembly memory shared by every stream of one multiplexer (one executor socket): a stream
#: whose next multi-segment message would take more is reset (docs/relay-protocol.md §Limits).
REASSEMBLY_BUDGET_BYTES: int = 128 * 1024 * 1024
#: A stream's outbound bytes (accepted by ``send``, not yet handed to the socket or, reliable
#: mode, to the send window) above which the multiplexer reports it unwritable, so its
#: producers pause; it reports it writable again at or below STREAM_LOW_WATER.  A soft bound:
#: ``send`` never refuses a message for it (docs/relay-protocol.md §Limits).
STREAM_HIGH_WATER: int = 1024 * 1024
STREAM_LOW_WATER: int = 512 * 1024
#: docs/relay-protocol.md §Reliable mode: send window.
SEND_WINDOW_SEGMENTS: int = 32
SEND_WINDOW_BYTES: int = 2 * 1024 * 1024
#: docs/relay-protocol.md §Reliable mode: receive (reorder) window: seqs ack+1 .. ack+64, at
#: most 1 MiB buffered.
REORDER_SEGMENTS: int = 64
REORDER_BYTES: int = 1024 * 1024
#: docs/relay-protocol.md §Reliable mode: RTO estimator bounds (seconds).
RTO_INITIAL: float = 0.5
RTO_MIN: float = 0.05
RTO_MAX: float = 10.0
#: Largest seq a stream may use (uint32, never wraps).
MAX_SEQ: int = 0xFFFFFFFF
#: Reset reason for a stream this side has no state for (e.g. the executor restarted).
UNKNOWN_STREAM: str = "unknown_stream"
#: How long a stream opened by Data seq > 1 (ack 0) may wait for seq 1 / Resume{1} before it
#: is judged a stream that began elsewhere and reset with UNKNOWN_STREAM (see mux).
PROBATION_SECONDS: float = 3.0


class ProtocolViolation(ValueError):
    """The peer broke docs/relay-protocol.md §Reliable mode on one stream; the engine resets
    that stream with ``protocol_error: <message>``."""


class MessageTooLarge(ValueError):
    """A message this side was asked to send cannot be sent in the stream's mode (legacy: the
    encoded frame would exceed 16 MiB; reliable: the message exceeds 64 MiB).  Raised locally,
    nothing goes on the wire."""


class StreamClosed(RuntimeError):
    """The stream was reset (by either side) or closed; it accepts no more messages."""
