"""Local websocket authentication as codex exec-server 0.171.0 offers it (docs/dialects.md §Websocket authentication).

``--ws-auth capability-token`` accepts an upgrade whose ``Authorization: Bearer <token>``
hashes (SHA-256) to the configured digest; ``--ws-auth signed-bearer-token`` accepts an HS256
JWT signed with a shared secret, checking ``exp`` (required), ``nbf``, ``iss`` and ``aud`` with
a clock skew.  A refusal is HTTP 401 with a ``text/plain`` one-line body.  The option rules,
the texts and the checks were probed from the real 0.171.0 binary.

Pure functions plus :class:`WsAuthConfig`; the transport calls :meth:`WsAuthPolicy.authorize`
with the upgrade request's ``Authorization`` header value.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

CAPABILITY_TOKEN = "capability-token"
SIGNED_BEARER_TOKEN = "signed-bearer-token"
MODES = (CAPABILITY_TOKEN, SIGNED_BEARER_TOKEN)
DEFAULT_MAX_CLOCK_SKEW_SECONDS = 30
MIN_SECRET_BYTES = 32
HEADER = "authorization"
STATUS = 401

MISSING = "missing websocket bearer token"
INVALID_HEADER = "invalid authorization header"
INVALID_TOKEN = "invalid websocket bearer token"
INVALID_JWT = "invalid websocket jwt"
EXPIRED = "expired websocket jwt"
NOT_YET = "websocket jwt is not valid yet"
ISSUER = "websocket jwt issuer mismatch"
AUDIENCE = "websocket jwt audience mismatch"

_I64_MAX = (1 << 63) - 1
_I64_MIN = -(1 << 63)


class WsAuthError(Exception):
    """A refused upgrade: answer HTTP ``status`` with ``message`` as the plain-text body."""

    def __init__(self, message: str, status: int = STATUS) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class WsAuthConfigError(ValueError):
    """Bad command-line options or secret files: the server refuses to start with this text."""


@dataclass(frozen=True)
class WsAuthConfig:
    """The ``--ws-*`` options as given (before any file is read)."""

    mode: str | None = None
    token_file: str | None = None
    token_sha256: str | None = None
    shared_secret_file: str | None = None
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_seconds: int | None = None

    def validate(self) -> None:
        """The option combinations 0.171 accepts, with its error texts."""
        signed_only = (self.shared_secret_file, self.issuer, self.audience, self.max_clock_skew_seconds)
        if self.mode is None:
            if self.token_file is not None or self.token_sha256 is not None or any(v is not None for v in signed_only):
                raise WsAuthConfigError(
                    "websocket auth flags require `--ws-auth capability-token` or `--ws-auth signed-bearer-token`")
            return
        if self.mode == CAPABILITY_TOKEN:
            if any(v is not None for v in signed_only):
                raise WsAuthConfigError(
                    "`--ws-shared-secret-file`, `--ws-issuer`, `--ws-audience`, and "
                    "`--ws-max-clock-skew-seconds` require `--ws-auth signed-bearer-token`")
            if self.token_file is not None and self.token_sha256 is not None:
                raise WsAuthConfigError("`--ws-token-file` and `--ws-token-sha256` are mutually exclusive")
            if self.token_file is None and self.token_sha256 is None:
                raise WsAuthConfigError(
                    "`--ws-token-file` or `--ws-token-sha256` is required when `--ws-auth capability-token` is set")
            if self.token_sha256 is not None:
                _parse_digest(self.token_sha256)
            return
        if self.mode == SIGNED_BEARER_TOKEN:
            if self.token_file is not None or self.token_sha256 is not None:
                raise WsAuthConfigError(
                    "`--ws-token-file` requires `--ws-auth capability-token`, not `signed-bearer-token`")
            if self.shared_secret_file is None:
                raise WsAuthConfigError(
                    "`--ws-shared-secret-file` is required when `--ws-auth signed-bearer-token` is set")
            return
        raise WsAuthConfigError(f"invalid value '{self.mode}' for '--ws-auth <MODE>'")

    def policy(self) -> "WsAuthPolicy | None":
        """Validate, read the secret files (once, at start-up) and build the policy; None = open."""
        self.validate()
        if self.mode is None:
            return None
        if self.mode == CAPABILITY_TOKEN:
            if self.token_sha256 is not None:
                digest = _parse_digest(self.token_sha256)
            else:
                assert self.token_file is not None
                digest = hashlib.sha256(read_secret(self.token_file).encode()).digest()
            return WsAuthPolicy(token_sha256=digest)
        assert self.shared_secret_file is not None
        secret = read_secret(self.shared_secret_file).encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise WsAuthConfigError(
                f"signed websocket bearer secret {_display(self.shared_secret_file)} "
                f"must be at least {MIN_SECRET_BYTES} bytes")
        skew = DEFAULT_MAX_CLOCK_SKEW_SECONDS if self.max_clock_skew_seconds is None else self.max_clock_skew_seconds
        return WsAuthPolicy(shared_secret=secret, issuer=_norm(self.issuer), audience=_norm(self.audience),
                            max_clock_skew_seconds=skew)


def _norm(value: str | None) -> str | None:
    """0.171 trims ``--ws-issuer``/``--ws-audience`` and treats blank as absent."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def _display(path: str) -> str:
    return os.path.abspath(path)


def _parse_digest(text: str) -> bytes:
    if len(text) != 64:
        raise WsAuthConfigError("--ws-token-sha256 must be a 64-character hex SHA-256 digest")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise WsAuthConfigError("--ws-token-sha256 must be a 64-character hex SHA-256 digest") from None


def read_secret(path: str) -> str:
    """A secret file's text, trimmed; relative paths resolve against the cwd (as 0.171 does)."""
    shown = _display(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = f.read()
    except OSError as exc:
        text = f"{os.strerror(exc.errno)} (os error {exc.errno})" if exc.errno else str(exc)
        raise WsAuthConfigError(f"failed to read websocket auth secret {shown}: {text}") from None
    except UnicodeDecodeError:
        raise WsAuthConfigError(
            f"failed to read websocket auth secret {shown}: stream did not contain valid UTF-8") from None
    trimmed = raw.strip()
    if not trimmed:
        raise WsAuthConfigError(f"websocket auth secret {shown} must not be empty")
    return trimmed


def bearer_token(header: str | bytes | None) -> str:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive, token trimmed)."""
    if header is None:
        raise WsAuthError(MISSING)
    if isinstance(header, bytes):
        try:
            header = header.decode("ascii")
        except UnicodeDecodeError:
            raise WsAuthError(INVALID_HEADER) from None
    scheme, sep, token = header.partition(" ")
    if not sep or scheme.lower() != "bearer":
        raise WsAuthError(INVALID_HEADER)
    token = token.strip()
    if not token:
        raise WsAuthError(INVALID_HEADER)
    return token


def _b64url(segment: str) -> bytes:
    if "=" in segment:
        raise ValueError("padding")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _i64(value: Any) -> int:
    if type(value) is not int or not _I64_MIN <= value <= _I64_MAX:
        raise ValueError("not an i64")
    return value


def decode_jwt(token: str, secret: bytes) -> dict[str, Any]:
    """Verify an HS256 JWT's signature and return its claims; every defect -> ``invalid websocket jwt``."""
    try:
        head_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(_b64url(head_b64))
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise ValueError("alg")
        expected = hmac.new(secret, f"{head_b64}.{claims_b64}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _b64url(sig_b64)):
            raise ValueError("signature")
        claims = json.loads(_b64url(claims_b64))
        if not isinstance(claims, dict):
            raise ValueError("claims")
        _i64(claims["exp"])
        if claims.get("nbf") is not None:
            _i64(claims["nbf"])
        iss = claims.get("iss")
        if iss is not None and type(iss) is not str:
            raise ValueError("iss")
        aud = claims.get("aud")
        if aud is not None and type(aud) is not str and not (
                type(aud) is list and all(type(a) is str for a in aud)):
            raise ValueError("aud")
        return claims
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise WsAuthError(INVALID_JWT) from None


def _sat(a: int, b: int) -> int:
    return max(_I64_MIN, min(_I64_MAX, a + b))


def check_claims(claims: dict[str, Any], issuer: str | None, audience: str | None,
                 skew: int, now: int) -> None:
    """``exp``/``nbf`` with the skew (saturating, as Rust's i64), then ``iss`` and ``aud``."""
    if now > _sat(claims["exp"], skew):
        raise WsAuthError(EXPIRED)
    nbf = claims.get("nbf")
    if nbf is not None and now < _sat(nbf, -skew):
        raise WsAuthError(NOT_YET)
    if issuer is not None and claims.get("iss") != issuer:
        raise WsAuthError(ISSUER)
    if audience is not None:
        aud = claims.get("aud")
        if not (aud == audience or (type(aud) is list and audience in aud)):
            raise WsAuthError(AUDIENCE)


@dataclass(frozen=True)
class WsAuthPolicy:
    """A configured check: exactly one of ``token_sha256`` or ``shared_secret`` is set."""

    token_sha256: bytes | None = None
    shared_secret: bytes | None = None
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_seconds: int = DEFAULT_MAX_CLOCK_SKEW_SECONDS

    def authorize(self, header: str | bytes | None, clock: Callable[[], float] = time.time) -> None:
        """Accept the upgrade or raise :class:`WsAuthError` (HTTP 401 + its message)."""
        token = bearer_token(header)
        if self.token_sha256 is not None:
            if not hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self.token_sha256):
                raise WsAuthError(INVALID_TOKEN)
            return
        assert self.shared_secret is not None
        claims = decode_jwt(token, self.shared_secret)
        check_claims(claims, self.issuer, self.audience, self.max_clock_skew_seconds, int(clock()))
