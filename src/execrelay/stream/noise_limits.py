"""The Noise channel's errors and record-layer limits (docs/noise.md §Records), shared by the
channel (:mod:`.noise`, which re-exports all of them) and its record layer, written once in
``_noiserec_py`` and compiled as ``_noiserec_c``."""
from __future__ import annotations

#: The one Reset reason for any handshake or record failure (0.171 sends this).
RESET_REASON: str = "noise_relay_protocol_error"

TAG_BYTES = 16
#: Plaintext bytes per transport record (clatter caps a Noise message at 65535 bytes).
RECORD_PLAINTEXT_BYTES = 60 * 1024
#: Largest JSON message the length prefix may announce.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Inbound reorder window: records ahead of the next expected one, and their bytes.
REORDER_RECORDS = 64
REORDER_BYTES = 1024 * 1024
#: Records per direction: the relay seq that numbers them is a uint32 and never wraps.
MAX_RECORDS = 0xFFFFFFFF


class NoiseError(ValueError):
    """The Noise channel of one stream failed; the endpoint resets that stream with
    :data:`RESET_REASON`.  The message says what failed, never with key material."""

    reason: str = RESET_REASON


class HandshakeError(NoiseError):
    """A handshake message was malformed, failed to authenticate, or came out of turn."""


class RecordError(NoiseError):
    """A transport record failed to authenticate, broke the framing, or left the window."""


class SequenceExhausted(RecordError):
    """A direction used all 2**32 relay sequence numbers: its nonce may not be reused."""


__all__ = ["RESET_REASON", "TAG_BYTES", "RECORD_PLAINTEXT_BYTES", "MAX_MESSAGE_BYTES",
           "REORDER_RECORDS", "REORDER_BYTES", "MAX_RECORDS", "NoiseError", "HandshakeError",
           "RecordError", "SequenceExhausted"]
