"""Stateless signed tokens for the rendezvous (docs/rendezvous.md §Tokens, normative format).

``v1.<expiry unix seconds>.<base64url HMAC-SHA256(secret, "v1|<role>|<executor id>|<expiry>")>``

Stateless so that several rendezvous nodes sharing one secret accept each other's tokens (see
docs/rendezvous.md §Tokens).  The MAC is RFC 4648 base64url *with* its ``=`` padding, exactly what
Python's ``base64.urlsafe_b64encode`` gives an operator's script; an unpadded MAC (JWT style)
is accepted too, and so is any other spelling of the same token (see :func:`canonical`).
Comparison is constant time, over the decoded MAC.  Tokens are never logged.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time

ROLES: tuple[str, ...] = ("executor", "harness")
TOKEN_PREFIX = "v1"
MIN_SECRET_BYTES = 16
SECRET_ENV = "EXECRELAY_RENDEZVOUS_SECRET"
#: An unpadded base64 SHA-256 MAC is 43 characters.
_MAC_CHARS = 43


class SecretError(ValueError):
    """The configured secret is missing, unreadable or too short."""


def _mac(secret: bytes, role: str, executor_id: str, expiry: int) -> str:
    msg = f"{TOKEN_PREFIX}|{role}|{executor_id}|{expiry}".encode("utf-8")
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


def mint(secret: bytes, role: str, executor_id: str, ttl: float = 3600.0,
         now: float | None = None) -> str:
    """Return a token for ``role`` on ``executor_id`` valid for ``ttl`` seconds."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if not executor_id:
        raise ValueError("executor id must be non-empty")
    expiry = int((time.time() if now is None else now) + ttl)
    return f"{TOKEN_PREFIX}.{expiry}.{_mac(secret, role, executor_id, expiry)}"


def canonical(token: str | None) -> tuple[int, bytes] | None:
    """``(expiry, mac bytes)`` of a well-formed token, None otherwise.

    Token *text* is malleable: the MAC may carry any number of ``=`` (or none), its last
    base64 character has unused low bits, and the expiry may have leading zeros.  Everything
    that compares or keys tokens goes through this parsed form (or :func:`token_fingerprint`),
    never through the text.
    """
    if not token:
        return None
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    expiry_text, mac_text = parts[1], parts[2].rstrip("=")
    if not (expiry_text.isascii() and expiry_text.isdigit()) or len(expiry_text) > 12:
        return None
    if len(mac_text) != _MAC_CHARS or not mac_text.isascii():
        return None
    try:
        mac = base64.b64decode(mac_text + "=", altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return None
    return int(expiry_text), mac


def verify(secret: bytes, token: str | None, role: str, executor_id: str,
           now: float | None = None) -> bool:
    """True when ``token`` is a current token for exactly this role and executor id."""
    if not executor_id:
        return False
    parsed = canonical(token)
    if parsed is None:
        return False
    expiry, given = parsed
    msg = f"{TOKEN_PREFIX}|{role}|{executor_id}|{expiry}".encode("utf-8")
    expected = hmac.new(secret, msg, hashlib.sha256).digest()
    # Compare first (constant time over the MAC), then the expiry.
    ok = hmac.compare_digest(expected, given)
    return ok and expiry > (time.time() if now is None else now)


def token_fingerprint(token: str) -> str:
    """A non-reversible identifier for a token (used to recognise "the same registration").

    Computed over the canonical form (:func:`canonical`), so two spellings of one token have
    one fingerprint; text that does not parse is fingerprinted as is.
    """
    parsed = canonical(token)
    key = (f"{parsed[0]}.".encode("ascii") + parsed[1]) if parsed is not None \
        else b"raw:" + token.encode("utf-8", "replace")
    return hashlib.sha256(key).hexdigest()[:32]


def load_secret(secret_file: str | None = None, *, env: dict[str, str] | None = None,
                allow_random: bool = True) -> tuple[bytes, str]:
    """Return ``(secret, source)`` from ``--secret-file``, the env var, or a random one.

    The file wins over the env var when both are given (an explicit flag beats ambient
    configuration).  Surrounding whitespace (a trailing newline) is stripped.
    """
    environ = os.environ if env is None else env
    if secret_file:
        try:
            with open(secret_file, "rb") as fh:
                secret = fh.read().strip()
        except OSError as exc:
            raise SecretError(f"cannot read secret file {secret_file}: {exc.strerror}") from None
        source = f"file {secret_file}"
    elif environ.get(SECRET_ENV, "").strip():
        secret = environ[SECRET_ENV].strip().encode("utf-8")
        source = f"env {SECRET_ENV}"
    elif allow_random:
        return secrets.token_bytes(32), "random (in-memory)"
    else:
        raise SecretError(f"no secret: set {SECRET_ENV} or pass --secret-file")
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(f"secret from {source} is shorter than {MIN_SECRET_BYTES} bytes")
    return secret, source
