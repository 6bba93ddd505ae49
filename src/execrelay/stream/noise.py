"""The Noise channel of Codex 0.171's relay, sans I/O: handshake and record layer.

A harness and an executor that meet on a rendezvous encrypt each stream end to end, so the
rendezvous routes ciphertext it cannot read (docs/noise.md).  This module is the protocol and
nothing else: bytes in, bytes out, no sockets, no clock, no registry calls.

* :class:`Initiator` (the harness) and :class:`Responder` (the executor) run the hybrid IK
  pattern ``Noise_hybridIK_25519+MLKEM768_AESGCM_SHA256`` exactly as the 0.171.0 binary does
  (docs/noise.md §Handshake): two messages, X25519 and ML-KEM-768 mixed, the harness's
  registry authorization carried encrypted in message 1.  The responder stops between reading
  message 1 and writing message 2 so that its owner can ask the registry whether the harness
  key is authorized.
* :class:`Transport` is what a completed handshake yields: per-direction AES-256-GCM records
  (counter from 0, which is also the relay ``seq`` of the Data frame carrying the record),
  the plaintext a byte stream of 4-byte big-endian length + JSON message, cut into records of
  at most 60 KiB; inbound records are put back in order within a bounded window before they
  are decrypted (docs/noise.md §Records).

Every failure raises a :class:`NoiseError` subclass; the endpoint resets that one stream with
``Reset{noise_relay_protocol_error}`` (:data:`RESET_REASON`).  Key material lives only in
private slots: no ``repr``, log line or exception text ever contains it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import struct
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from .._accel import select as _select
from .noise_limits import (MAX_MESSAGE_BYTES, MAX_RECORDS, RECORD_PLAINTEXT_BYTES, REORDER_BYTES,
                           REORDER_RECORDS, RESET_REASON, TAG_BYTES, HandshakeError, NoiseError,
                           RecordError, SequenceExhausted)

if TYPE_CHECKING:   # the type checker sees the pure module: same API, real annotations
    from ._noiserec_py import Transport
else:   # the record layer, compiled when available (docs/noise.md §Costs)
    Transport = _select("stream.noiserec", "execrelay.stream._noiserec_c",
                        "execrelay.stream._noiserec_py").Transport

#: The name hashed into the handshake (clatter's DH name is ``25519``).
PROTOCOL_NAME: bytes = b"Noise_hybridIK_25519+MLKEM768_AESGCM_SHA256"
#: The suite label the registry's JSON carries (NOT the hashed name: 0.171 resets that one).
SUITE: str = "Noise_hybridIK_X25519+MLKEM768_AESGCM_SHA256"
#: The registry's ``security_profile`` for this channel.
SECURITY_PROFILE: str = "noise_hybrid_ik_v1"
#: First prologue field: binds the transcript to this use of the pattern.
PROLOGUE_LABEL: bytes = b"codex-exec-server-relay-noise/v1"
X25519_BYTES = 32
MLKEM768_PUBLIC_BYTES = 1184
MLKEM768_CIPHERTEXT_BYTES = 1088
#: Largest harness authorization a 0.171 executor accepts inside message 1.
MAX_AUTHORIZATION_BYTES = 4096
#: Size of message 1 without its payload, and of message 2 (observed from 0.171.0).
MESSAGE1_BASE_BYTES = (MLKEM768_CIPHERTEXT_BYTES + X25519_BYTES + MLKEM768_PUBLIC_BYTES
                       + X25519_BYTES + TAG_BYTES + MLKEM768_PUBLIC_BYTES + TAG_BYTES + TAG_BYTES)
MESSAGE2_BYTES = (MLKEM768_CIPHERTEXT_BYTES + MLKEM768_CIPHERTEXT_BYTES + TAG_BYTES
                  + X25519_BYTES + MLKEM768_PUBLIC_BYTES + TAG_BYTES)
_NONCE = struct.Struct(">4xQ")
_EMPTY = b""


# ---------------------------------------------------------------------------------------------
# keys

class PublicKey:
    """A static public key pair as the registry publishes it: X25519 (32 bytes) + ML-KEM-768
    (1184 bytes).  Immutable and hashable, so it can be pinned and compared."""

    __slots__ = ("x25519", "mlkem768")
    x25519: bytes
    mlkem768: bytes

    def __init__(self, x25519: bytes, mlkem768: bytes) -> None:
        if len(x25519) != X25519_BYTES or len(mlkem768) != MLKEM768_PUBLIC_BYTES:
            raise ValueError(f"a {SUITE} public key is {X25519_BYTES} + {MLKEM768_PUBLIC_BYTES} "
                             f"bytes, got {len(x25519)} + {len(mlkem768)}")
        object.__setattr__(self, "x25519", bytes(x25519))
        object.__setattr__(self, "mlkem768", bytes(mlkem768))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PublicKey is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.x25519 == other.x25519 and self.mlkem768 == other.mlkem768

    def __hash__(self) -> int:
        return hash((self.x25519, self.mlkem768))

    def fingerprint(self) -> str:
        """A short stable name for logs (public data only)."""
        return hashlib.sha256(self.x25519 + self.mlkem768).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"PublicKey({self.fingerprint()})"

    def to_json(self) -> dict[str, str]:
        """The registry's JSON object: suite and standard base64 of both keys."""
        return {"suite": SUITE,
                "x25519_public_key": base64.b64encode(self.x25519).decode("ascii"),
                "mlkem768_public_key": base64.b64encode(self.mlkem768).decode("ascii")}

    @classmethod
    def from_json(cls, obj: Any) -> PublicKey:
        """Parse the registry's JSON object strictly (0.171 refuses extra fields, so do we)."""
        if not isinstance(obj, dict) or set(obj) != {"suite", "x25519_public_key",
                                                     "mlkem768_public_key"}:
            raise ValueError("a public key is an object with exactly suite, x25519_public_key "
                             "and mlkem768_public_key")
        if obj["suite"] != SUITE:
            raise ValueError(f"unsupported key suite {obj['suite']!r}")
        try:
            x = base64.b64decode(obj["x25519_public_key"], validate=True)
            k = base64.b64decode(obj["mlkem768_public_key"], validate=True)
        except (TypeError, ValueError):
            raise ValueError("public key fields must be standard base64") from None
        return cls(x, k)


class StaticKeyPair:
    """A static identity: X25519 and ML-KEM-768 private keys and their :class:`PublicKey`.

    ``repr`` names the public fingerprint only; :meth:`private_bytes` is the one way out
    for the secret (for a key file) and is never called by this module.
    """

    __slots__ = ("_x", "_k", "public")

    def __init__(self, x25519: X25519PrivateKey, mlkem768: MLKEM768PrivateKey) -> None:
        self._x = x25519
        self._k = mlkem768
        self.public = PublicKey(
            x25519.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
            mlkem768.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> StaticKeyPair:
        return cls(X25519PrivateKey.generate(), MLKEM768PrivateKey.generate())

    def private_bytes(self) -> bytes:
        """32-byte X25519 private key then the 64-byte ML-KEM seed (96 bytes)."""
        return (self._x.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
                + self._k.private_bytes_raw())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> StaticKeyPair:
        if len(raw) != 96:
            raise ValueError("a static key pair is 96 bytes (X25519 key + ML-KEM seed)")
        return cls(X25519PrivateKey.from_private_bytes(raw[:32]),
                   MLKEM768PrivateKey.from_seed_bytes(raw[32:]))

    def __repr__(self) -> str:
        return f"StaticKeyPair({self.public.fingerprint()})"


def prologue(environment_id: str, registration_id: str, stream_id: str) -> bytes:
    """The handshake prologue: the label, the environment, the executor registration and the
    relay stream, each as an 8-byte big-endian length then UTF-8 (a captured handshake cannot
    be spliced onto another registration or stream)."""
    out = bytearray()
    for field in (PROLOGUE_LABEL, environment_id.encode(), registration_id.encode(),
                  stream_id.encode()):
        out += len(field).to_bytes(8, "big")
        out += field
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# the symmetric state (Noise spec §5.2, SHA-256, AES-256-GCM)

def _hkdf(ck: bytes, ikm: bytes, n: int) -> list[bytes]:
    """Noise's HKDF: HKDF-SHA256 with salt ``ck``, empty info, ``n`` 32-byte outputs."""
    prk = hmac.digest(ck, ikm, "sha256")
    out: list[bytes] = []
    prev = _EMPTY
    for i in range(1, n + 1):
        prev = hmac.digest(prk, prev + bytes((i,)), "sha256")
        out.append(prev)
    return out


class _Symmetric:
    """h, ck and the handshake cipher key; discarded after :meth:`split`."""

    __slots__ = ("h", "_ck", "_aead", "_n")

    def __init__(self, prologue_bytes: bytes, responder_static: PublicKey) -> None:
        self.h = hashlib.sha256(PROTOCOL_NAME).digest()  # the name is > 32 bytes: hashed
        self._ck = self.h
        self._aead: AESGCM | None = None
        self._n = 0
        self.mix_hash(prologue_bytes)
        self.mix_hash(responder_static.x25519)
        self.mix_hash(responder_static.mlkem768)

    def __repr__(self) -> str:
        return "_Symmetric(<secret>)"

    def mix_hash(self, data: bytes) -> None:
        self.h = hashlib.sha256(self.h + data).digest()

    def mix_key(self, ikm: bytes) -> None:
        self._ck, k = _hkdf(self._ck, ikm, 2)
        self._aead = AESGCM(k)
        self._n = 0

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self._ck, t, k = _hkdf(self._ck, ikm, 3)
        self.mix_hash(t)
        self._aead = AESGCM(k)
        self._n = 0

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        if self._aead is None:
            c = plaintext
        else:
            c = self._aead.encrypt(_NONCE.pack(self._n), plaintext, self.h)
            self._n += 1
        self.mix_hash(c)
        return c

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        if self._aead is None:
            p = ciphertext
        else:
            try:
                p = self._aead.decrypt(_NONCE.pack(self._n), ciphertext, self.h)
            except InvalidTag:
                raise HandshakeError("Noise handshake message failed to authenticate") from None
            self._n += 1
        self.mix_hash(ciphertext)
        return p

    def split(self) -> tuple[bytes, bytes]:
        k1, k2 = _hkdf(self._ck, _EMPTY, 2)
        self._aead = None
        self._ck = _EMPTY
        return k1, k2


def _x25519(private: X25519PrivateKey, public: bytes) -> bytes:
    try:
        return private.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # a low-order point: all-zero shared secret
        raise HandshakeError("Noise handshake carried an invalid X25519 key") from None


def _encapsulate(public: bytes) -> tuple[bytes, bytes]:
    try:
        return MLKEM768PublicKey.from_public_bytes(public).encapsulate()
    except ValueError:
        raise HandshakeError("Noise handshake carried an invalid ML-KEM key") from None


def _decapsulate(private: MLKEM768PrivateKey, ciphertext: bytes) -> bytes:
    try:
        return private.decapsulate(ciphertext)
    except ValueError:
        raise HandshakeError("Noise handshake carried an invalid ML-KEM ciphertext") from None


class _Reader:
    """Cuts a handshake message into its fixed-size tokens."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if len(self.data) - self.pos < n:
            raise HandshakeError("Noise handshake message is too short")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos:]
        self.pos = len(self.data)
        return out


# ---------------------------------------------------------------------------------------------
# the two roles

class Initiator:
    """The harness side: pins the executor's registry key, writes message 1, reads message 2.

    Usage: ``hs = Initiator(identity, executor_key, prologue(...), authorization)``;
    send ``hs.message1`` in a Handshake frame; ``transport = hs.finish(reply_payload)``.
    """

    __slots__ = ("_sym", "_s", "_e_x", "_e_k", "_rs", "message1", "_done")

    def __init__(self, identity: StaticKeyPair, responder: PublicKey, prologue_bytes: bytes,
                 authorization: bytes) -> None:
        if len(authorization) > MAX_AUTHORIZATION_BYTES:
            raise HandshakeError(f"harness authorization exceeds {MAX_AUTHORIZATION_BYTES} bytes")
        sym = _Symmetric(prologue_bytes, responder)
        self._sym = sym
        self._s = identity
        self._rs = responder
        self._done = False
        out = bytearray()
        # skem: encapsulate to the responder's static ML-KEM key, ciphertext sent in clear
        secret, ct = _encapsulate(responder.mlkem768)
        out += sym.encrypt_and_hash(ct)
        sym.mix_key_and_hash(secret)
        # e: both ephemeral public keys, in clear
        self._e_x = X25519PrivateKey.generate()
        self._e_k = MLKEM768PrivateKey.generate()
        for pub in (self._e_x.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
                    self._e_k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)):
            out += pub
            sym.mix_hash(pub)
        sym.mix_key(_x25519(self._e_x, responder.x25519))                 # es
        out += sym.encrypt_and_hash(identity.public.x25519)                # s
        out += sym.encrypt_and_hash(identity.public.mlkem768)
        sym.mix_key(_x25519(identity._x, responder.x25519))               # ss
        out += sym.encrypt_and_hash(authorization)                         # payload
        self.message1 = bytes(out)

    def __repr__(self) -> str:
        return f"Initiator(to={self._rs!r}, done={self._done})"

    def finish(self, message2: bytes) -> Transport:
        """Read the executor's reply (order ekem, skem, e, ee, se) and split."""
        if self._done:
            raise HandshakeError("Noise handshake already finished")
        self._done = True
        if len(message2) != MESSAGE2_BYTES:
            raise HandshakeError(f"Noise handshake reply is {len(message2)} bytes, "
                                 f"expected {MESSAGE2_BYTES}")
        sym = self._sym
        r = _Reader(message2)
        ekem = r.take(MLKEM768_CIPHERTEXT_BYTES)                           # ekem, in clear
        sym.mix_hash(ekem)
        sym.mix_key(_decapsulate(self._e_k, ekem))
        skem = sym.decrypt_and_hash(r.take(MLKEM768_CIPHERTEXT_BYTES + TAG_BYTES))  # skem
        sym.mix_key_and_hash(_decapsulate(self._s._k, skem))
        re_x = r.take(X25519_BYTES)                                        # e
        sym.mix_hash(re_x)
        sym.mix_hash(r.take(MLKEM768_PUBLIC_BYTES))
        sym.mix_key(_x25519(self._e_x, re_x))                              # ee
        sym.mix_key(_x25519(self._s._x, re_x))                             # se
        if sym.decrypt_and_hash(r.rest()) != _EMPTY:                       # payload
            raise HandshakeError("Noise handshake reply carries a payload")
        k1, k2 = sym.split()
        handshake_hash = sym.h
        self._e_x = self._e_k = None  # type: ignore[assignment]  # ephemerals are single-use
        return Transport(k1, k2, handshake_hash)


class HandshakeRequest:
    """What message 1 told the executor: the harness's static key and its authorization
    (opaque; the registry's ``/validate`` judges it)."""

    __slots__ = ("initiator_key", "authorization")

    def __init__(self, initiator_key: PublicKey, authorization: bytes) -> None:
        self.initiator_key = initiator_key
        self.authorization = authorization

    def __repr__(self) -> str:
        return (f"HandshakeRequest(initiator_key={self.initiator_key!r}, "
                f"authorization={len(self.authorization)}B)")


class Responder:
    """The executor side: reads message 1, lets its owner check the harness key with the
    registry, then writes message 2.

    Usage: ``hs = Responder(identity, prologue(...))``; ``req = hs.read_request(payload)``;
    ask the registry about ``req``; ``reply, transport = hs.respond()``.
    """

    __slots__ = ("_sym", "_s", "_re_x", "_re_k", "_rs", "_state")

    def __init__(self, identity: StaticKeyPair, prologue_bytes: bytes) -> None:
        self._sym = _Symmetric(prologue_bytes, identity.public)
        self._s = identity
        self._re_x = b""
        self._re_k = b""
        self._rs: PublicKey | None = None
        self._state = 0  # 0: waiting for message 1, 1: read, 2: replied

    def __repr__(self) -> str:
        return f"Responder(as={self._s.public!r}, state={self._state})"

    def read_request(self, message1: bytes) -> HandshakeRequest:
        if self._state != 0:
            raise HandshakeError("Noise handshake message 1 out of turn")
        self._state = 1
        n = len(message1)
        if n < MESSAGE1_BASE_BYTES or n > MESSAGE1_BASE_BYTES + MAX_AUTHORIZATION_BYTES:
            raise HandshakeError(f"Noise handshake message 1 is {n} bytes")
        sym = self._sym
        r = _Reader(message1)
        ct = sym.decrypt_and_hash(r.take(MLKEM768_CIPHERTEXT_BYTES))        # skem, in clear
        sym.mix_key_and_hash(_decapsulate(self._s._k, ct))
        self._re_x = r.take(X25519_BYTES)                                   # e
        sym.mix_hash(self._re_x)
        self._re_k = r.take(MLKEM768_PUBLIC_BYTES)
        sym.mix_hash(self._re_k)
        sym.mix_key(_x25519(self._s._x, self._re_x))                        # es
        rs_x = sym.decrypt_and_hash(r.take(X25519_BYTES + TAG_BYTES))       # s
        rs_k = sym.decrypt_and_hash(r.take(MLKEM768_PUBLIC_BYTES + TAG_BYTES))
        self._rs = PublicKey(rs_x, rs_k)
        sym.mix_key(_x25519(self._s._x, rs_x))                              # ss
        authorization = sym.decrypt_and_hash(r.rest())                      # payload
        return HandshakeRequest(self._rs, authorization)

    def respond(self) -> tuple[bytes, Transport]:
        """Message 2 (order ekem, skem, e, ee, se; empty payload) and the transport."""
        if self._state != 1 or self._rs is None:
            raise HandshakeError("Noise handshake reply out of turn")
        self._state = 2
        sym = self._sym
        out = bytearray()
        secret, ct = _encapsulate(self._re_k)                               # ekem
        out += ct
        sym.mix_hash(ct)
        sym.mix_key(secret)
        secret, ct = _encapsulate(self._rs.mlkem768)                        # skem
        out += sym.encrypt_and_hash(ct)
        sym.mix_key_and_hash(secret)
        e_x = X25519PrivateKey.generate()                                   # e
        e_k = MLKEM768PrivateKey.generate()  # sent as 0.171 does; never used
        for pub in (e_x.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
                    e_k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)):
            out += pub
            sym.mix_hash(pub)
        sym.mix_key(_x25519(e_x, self._re_x))                               # ee
        sym.mix_key(_x25519(e_x, self._rs.x25519))                          # se
        out += sym.encrypt_and_hash(_EMPTY)                                 # payload
        k1, k2 = sym.split()
        return bytes(out), Transport(k2, k1, sym.h)


__all__ = ["PROTOCOL_NAME", "SUITE", "SECURITY_PROFILE", "PROLOGUE_LABEL", "RESET_REASON",
           "MAX_AUTHORIZATION_BYTES", "MESSAGE1_BASE_BYTES", "MESSAGE2_BYTES",
           "RECORD_PLAINTEXT_BYTES", "MAX_MESSAGE_BYTES", "REORDER_RECORDS", "REORDER_BYTES",
           "MAX_RECORDS", "NoiseError", "HandshakeError", "RecordError", "SequenceExhausted",
           "PublicKey", "StaticKeyPair", "prologue", "Initiator", "Responder",
           "HandshakeRequest", "Transport"]
