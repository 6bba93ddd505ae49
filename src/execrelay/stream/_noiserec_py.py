# cython: annotation_typing=False
"""The Noise record layer (:class:`Transport`), written once: the pure build runs this file as
is, and ``setup.py`` compiles the same file (typed by ``ext/stream/_noiserec_c.pxd``, Cython
"pure Python mode") into ``execrelay.stream._noiserec_c``; :mod:`.noise` exports the one
that imports (docs/noise.md §Records, §Costs).

Per record the cost is mostly the ``cryptography`` AES-GCM call; what is around it (the
counter, the nonce, the 4-byte length framing, splitting a record's plaintext into messages)
is what compiling this file makes cheap.  Nonces: each direction's counter only moves forward,
is checked before it is used, and never passes :data:`MAX_RECORDS`; no key is kept here
except inside the two ``AESGCM`` objects, and nothing prints one.
"""
from __future__ import annotations

import struct
from typing import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .noise_limits import (MAX_MESSAGE_BYTES, MAX_RECORDS, RECORD_PLAINTEXT_BYTES, REORDER_BYTES,
                           REORDER_RECORDS, TAG_BYTES, RecordError, SequenceExhausted)

# module-private copies of the limits: C constants in the compiled build
_RECORD = RECORD_PLAINTEXT_BYTES
_TAG = TAG_BYTES
_MAX_MESSAGE = MAX_MESSAGE_BYTES
_MAX_RECORDS = MAX_RECORDS
_REORDER_RECORDS = REORDER_RECORDS
_REORDER_BYTES = REORDER_BYTES
#: The AES-GCM nonce of record ``n``: 4 zero bytes, then ``n`` as 8 bytes big-endian.
_NONCE_PACK = struct.Struct(">4xQ").pack
_LENGTH_PACK = struct.Struct(">I").pack
_LENGTH_UNPACK = struct.Struct(">I").unpack_from
_EMPTY = b""


class Transport:
    """Both directions of an established channel.

    :meth:`seal` turns one JSON message into ``(seq, record)`` pairs, one relay Data frame
    each; :meth:`open` takes a received ``(seq, record)`` and returns the JSON messages it
    completes, in order.  Each direction's record counter is both the AES-GCM nonce and the
    relay seq, so a nonce is used once: the counter only moves forward and refuses to pass
    2**32 - 1.
    """

    __slots__ = ("_tx", "_rx", "_tx_n", "_rx_n", "_pending", "_pending_bytes", "_parts",
                 "_have", "handshake_hash")

    def __init__(self, send_key: bytes, recv_key: bytes, handshake_hash: bytes) -> None:
        self._tx = AESGCM(send_key)
        self._rx = AESGCM(recv_key)
        self._tx_n = 0
        self._rx_n = 0
        self._pending: dict[int, bytes] = {}
        self._pending_bytes = 0
        # plaintext of an unfinished message (it starts at parts[0][0]) and its byte count
        self._parts: list[bytes] = []
        self._have = 0
        #: The final handshake hash: equal on both ends, public (channel binding).
        self.handshake_hash = handshake_hash

    def __repr__(self) -> str:
        return f"Transport(sent={self._tx_n}, received={self._rx_n})"

    @property
    def next_send_seq(self) -> int:
        return self._tx_n

    @property
    def next_recv_seq(self) -> int:
        return self._rx_n

    def seal_record(self, plaintext: bytes | bytearray | memoryview) -> tuple[int, bytes]:
        """Encrypt one record of at most :data:`RECORD_PLAINTEXT_BYTES`."""
        n = self._tx_n
        if n > _MAX_RECORDS:
            raise SequenceExhausted("Noise relay sequence number exhausted")
        if len(plaintext) > _RECORD:
            raise RecordError("Noise relay plaintext record exceeds maximum length")
        self._tx_n = n + 1
        return n, self._tx.encrypt(_NONCE_PACK(n), plaintext, None)

    def seal(self, message: bytes) -> list[tuple[int, bytes]]:
        """Frame one JSON message (4-byte length + bytes) and encrypt it into records."""
        m = len(message)
        if 0 < m <= _RECORD - 4:  # the common case: one record, inlined
            n = self._tx_n
            if n > _MAX_RECORDS:
                raise SequenceExhausted("Noise relay sequence number exhausted")
            self._tx_n = n + 1
            return [(n, self._tx.encrypt(_NONCE_PACK(n), _LENGTH_PACK(m) + message, None))]
        if m == 0 or m > _MAX_MESSAGE:
            raise RecordError("Noise relay JSON-RPC message has invalid length")
        # several records: the length prefix joins the first cut only, the rest are views
        # of the message (no copy of a big message before the cipher reads it)
        if self._tx_n + (m + 3) // _RECORD > _MAX_RECORDS:
            raise SequenceExhausted("Noise relay sequence number exhausted")
        view = memoryview(message)
        first = _RECORD - 4
        out = [self.seal_record(_LENGTH_PACK(m) + view[:first])]
        out += [self.seal_record(view[i:i + _RECORD])
                for i in range(first, m, _RECORD)]
        return out

    def seal_many(self, messages: Sequence[bytes]) -> list[tuple[int, bytes]]:
        """Frame several JSON messages queued together as ONE plaintext stream and encrypt it
        into as few records as fit (60 KiB each; a message may span two records).

        0.171 reads the record plaintext as a byte stream, so this is the same conversation
        as one :meth:`seal` per message, for one AES-GCM call per 60 KiB instead of one per
        message: the per-call cost of the binding is most of a small message's cost
        (docs/noise.md §Costs).  Every message is checked before any record is made, so a
        refused batch consumes no sequence number.
        """
        parts: list[bytes] = []
        for message in messages:
            m = len(message)
            if m == 0 or m > _MAX_MESSAGE:
                raise RecordError("Noise relay JSON-RPC message has invalid length")
            parts.append(_LENGTH_PACK(m))
            parts.append(message)
        if not parts:
            return []
        return self._seal_stream(_EMPTY.join(parts))

    def _seal_stream(self, framed: bytes) -> list[tuple[int, bytes]]:
        """Encrypt framed plaintext into consecutive records (all or none: the counter is
        checked for the whole run first)."""
        size = len(framed)
        if size <= _RECORD:
            return [self.seal_record(framed)]
        if self._tx_n + (size - 1) // _RECORD > _MAX_RECORDS:
            raise SequenceExhausted("Noise relay sequence number exhausted")
        view = memoryview(framed)
        return [self.seal_record(view[i:i + _RECORD])
                for i in range(0, size, _RECORD)]

    def open(self, seq: int, record: bytes) -> list[bytes]:
        """Accept the record sent as ``seq``; return the messages now complete, in order.

        A seq already consumed or already buffered is a duplicate and is dropped (the first
        copy wins, as in 0.171); one more than :data:`REORDER_RECORDS` ahead, or a window
        over :data:`REORDER_BYTES`, is an error.
        """
        nxt = self._rx_n
        if seq == nxt and not self._parts and not self._pending \
                and len(record) <= _RECORD + _TAG and nxt <= _MAX_RECORDS:
            # the common case, inlined: the next record, starting on a message boundary
            try:
                plaintext = self._rx.decrypt(_NONCE_PACK(nxt), record, None)
            except InvalidTag:
                raise RecordError(f"Noise relay record {nxt} failed to authenticate") from None
            self._rx_n = nxt + 1
            end = len(plaintext)
            if end >= 4:
                (m,) = _LENGTH_UNPACK(plaintext)
                if end == m + 4 and 0 < m:
                    return [plaintext[4:]]           # exactly one message: no buffer at all
            return self._split(plaintext)
        if seq != nxt:
            if seq < nxt or seq in self._pending:
                return []
            if seq - nxt > _REORDER_RECORDS:
                raise RecordError("Noise relay ciphertext exceeds reorder window")
            size = self._pending_bytes + len(record)
            if len(self._pending) >= _REORDER_RECORDS or size > _REORDER_BYTES:
                raise RecordError("Noise relay pending ciphertext buffer is full")
            self._pending[seq] = record
            self._pending_bytes = size
            return []
        out = self._feed(self._decrypt(record))
        pending = self._pending
        while pending and self._rx_n in pending:
            record = pending.pop(self._rx_n)
            self._pending_bytes -= len(record)
            out += self._feed(self._decrypt(record))
        return out

    def _split(self, plaintext: bytes) -> list[bytes]:
        """The messages of plaintext that starts on a message boundary, sliced straight from
        it; an unfinished tail is kept for the next record."""
        out: list[bytes] = []
        pos = 0
        end = len(plaintext)
        while end - pos >= 4:
            (m,) = _LENGTH_UNPACK(plaintext, pos)
            if m == 0 or m > _MAX_MESSAGE:
                raise RecordError("Noise relay JSON-RPC message has invalid length")
            stop = pos + 4 + m
            if stop > end:
                break
            out.append(plaintext[pos + 4:stop])
            pos = stop
        if pos < end:
            tail = plaintext[pos:] if pos else plaintext
            self._parts = [tail]
            self._have = len(tail)
        return out

    def _feed(self, plaintext: bytes) -> list[bytes]:
        """The messages the next record's plaintext completes, with what earlier records left.

        A message spanning records is joined once, when its last byte arrives (the pieces
        are kept as they came, not copied into a growing buffer)."""
        parts = self._parts
        if not parts:
            return self._split(plaintext)
        parts.append(plaintext)
        have = self._have = self._have + len(plaintext)
        head = parts[0]
        if len(head) < 4:                       # the length prefix itself was cut
            if have < 4:
                return []
            self._parts, self._have = [], 0
            return self._split(_EMPTY.join(parts))
        (m,) = _LENGTH_UNPACK(head)
        if m == 0 or m > _MAX_MESSAGE:
            raise RecordError("Noise relay JSON-RPC message has invalid length")
        extra = have - 4 - m
        if extra < 0:
            return []
        self._parts, self._have = [], 0
        parts[0] = head[4:]
        if not extra:
            return [_EMPTY.join(parts)]
        cut = len(plaintext) - extra            # the message ends inside this record
        parts[len(parts) - 1] = plaintext[:cut]   # (no negative index: wraparound is off)
        return [_EMPTY.join(parts)] + self._split(plaintext[cut:])

    def _decrypt(self, record: bytes) -> bytes:
        n = self._rx_n
        if n > _MAX_RECORDS:
            raise SequenceExhausted("Noise relay sequence number exhausted")
        if len(record) > _RECORD + _TAG:
            raise RecordError("Noise relay record exceeds maximum length")
        try:
            plaintext = self._rx.decrypt(_NONCE_PACK(n), record, None)
        except InvalidTag:
            raise RecordError(f"Noise relay record {n} failed to authenticate") from None
        self._rx_n = n + 1
        return plaintext


__all__ = ["Transport"]
