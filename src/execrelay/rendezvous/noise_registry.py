"""The Noise registry of Codex 0.171 on the rendezvous (docs/rendezvous.md §Noise registry).

Three JSON endpoints, all ``POST`` with ``Authorization: Bearer <token>``:

- ``/cloud/environment/{id}/register`` (executor token for ``id``): the executor publishes its
  static Noise key and gets ``{environment_id, url, security_profile,
  executor_registration_id}``; ``url`` is its websocket on this rendezvous.
- ``/cloud/environment/{id}/connect`` (harness token for ``id``): the harness publishes its
  static key and gets the executor's key, the harness websocket URL and a
  ``harness_key_authorization`` that binds its key to this environment and registration.
- ``/cloud/environment/{id}/validate`` (executor token): the executor asks whether an
  authorization it found inside handshake message 1 is valid for that harness key ->
  ``{"valid": bool}``.

The authorization is ``na1.<expiry>.<base64url MAC>``, the MAC an HMAC-SHA256 under a key
derived from the rendezvous secret over (harness key, environment, registration id, expiry):
stateless, so any node sharing the secret can validate it.  The rendezvous never holds a
private key and never sees plaintext: it routes the ciphertext streams like any other.
Errors are ``{"error": {"code", "message"}}``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from typing import Any, Callable
from urllib.parse import quote

from aiohttp import web

from ..stream.noise import SECURITY_PROFILE, PublicKey
from ..stream.noise_stream import RELAY_MODES, RELAY_MODES_FIELD
from . import tokens
from .config import RendezvousConfig
from .directory import ExecutorDirectory, SharedNoiseRegistrations
from .metrics import Metrics

AUTH_PREFIX = "na1"
#: Lifetime of a harness key authorization (the harness asks /connect again on reconnect).
AUTHORIZATION_TTL = 600.0
#: Registrations kept (one per environment id; the oldest goes first beyond it).
MAX_REGISTRATIONS = 100_000
#: Largest authorization string /validate reads (0.171 caps it at 4096 bytes too).
MAX_AUTHORIZATION_CHARS = 4096


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else None


class _BadRequest(Exception):
    pass


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("request body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("request body is not a JSON object")
    return body


def _public_key(body: dict[str, Any], field: str) -> PublicKey:
    try:
        return PublicKey.from_json(body.get(field))
    except ValueError as exc:
        raise _BadRequest(f"{field}: {exc}") from None


class NoiseRegistration:
    """The current registration of one environment: its id, the executor's key and the
    stream framings it announced (empty: 0.171's, legacy only)."""

    __slots__ = ("registration_id", "executor_key", "relay_modes")

    def __init__(self, registration_id: str, executor_key: PublicKey,
                 relay_modes: tuple[str, ...] = ()) -> None:
        self.registration_id = registration_id
        self.executor_key = executor_key
        self.relay_modes = relay_modes


class NoiseRegistry:
    """The three endpoints; the server mounts :meth:`routes` on its app.

    ``ws_base(request)`` is the public ``ws(s)://host:port`` the URLs point at; ``directory``
    learns the executor URL token's registration exactly as for the registrations of
    docs/rendezvous.md §URLs and endpoints, so a 0.171 executor's websocket is claimed and
    taken over by the same rules.
    """

    def __init__(self, secret: bytes, config: RendezvousConfig, metrics: Metrics,
                 directory: ExecutorDirectory, ws_base: Callable[[web.Request], str]) -> None:
        self._secret = secret
        self._auth_key = hmac.new(secret, b"execrelay noise harness key authorization v1",
                                  hashlib.sha256).digest()
        self._config = config
        self._metrics = metrics
        self._directory = directory
        self._ws_base = ws_base
        self._registrations: OrderedDict[str, NoiseRegistration] = OrderedDict()
        #: set by a cluster node: registrations valid on every node (docs/rendezvous.md
        #: §Several nodes); None on a single node
        self.shared: SharedNoiseRegistrations | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/cloud/environment/{environment_id}/register", self.register),
                web.post("/cloud/environment/{environment_id}/connect", self.connect),
                web.post("/cloud/environment/{environment_id}/validate", self.validate)]

    def registration(self, environment_id: str) -> NoiseRegistration | None:
        return self._registrations.get(environment_id)

    # -- authorization ------------------------------------------------------------------
    def _mac(self, key: PublicKey, environment_id: str, registration_id: str, expiry: int) -> bytes:
        key_hash = hashlib.sha256(key.x25519 + key.mlkem768).hexdigest()
        msg = f"{AUTH_PREFIX}|{environment_id}|{registration_id}|{expiry}|{key_hash}"
        return hmac.new(self._auth_key, msg.encode("utf-8"), hashlib.sha256).digest()

    def authorize(self, key: PublicKey, environment_id: str, registration_id: str,
                  ttl: float = AUTHORIZATION_TTL, now: float | None = None) -> str:
        """The ``harness_key_authorization`` for ``key`` on this registration."""
        expiry = int((time.time() if now is None else now) + ttl)
        mac = self._mac(key, environment_id, registration_id, expiry)
        return f"{AUTH_PREFIX}.{expiry}.{base64.urlsafe_b64encode(mac).decode('ascii').rstrip('=')}"

    def check(self, authorization: str, key: PublicKey, environment_id: str,
              registration_id: str, now: float | None = None) -> bool:
        """Constant-time check of an authorization against key, environment, registration
        and the clock."""
        parts = authorization.split(".")
        if len(parts) != 3 or parts[0] != AUTH_PREFIX or not parts[1].isascii() \
                or not parts[1].isdigit() or len(parts[1]) > 12:
            return False
        try:
            given = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
        except (binascii.Error, ValueError):
            return False
        expiry = int(parts[1])
        ok = hmac.compare_digest(given, self._mac(key, environment_id, registration_id, expiry))
        return ok and expiry > (time.time() if now is None else now)

    # -- endpoints ----------------------------------------------------------------------
    def _authenticated(self, request: web.Request, role: str, endpoint: str) -> str | None:
        token = _bearer(request)
        if not tokens.verify(self._secret, token, role, request.match_info["environment_id"]):
            self._metrics.auth_failures[endpoint] += 1
            return None
        return token

    async def register(self, request: web.Request) -> web.Response:
        environment_id = request.match_info["environment_id"]
        token = self._authenticated(request, "executor", "noise_register")
        if token is None:
            return _error(401, "unauthorized", "invalid, expired or missing executor token")
        try:
            body = await _json_object(request)
            if body.get("security_profile") != SECURITY_PROFILE:
                raise _BadRequest(f"security_profile must be {SECURITY_PROFILE!r}")
            key = _public_key(body, "executor_public_key")
            modes = body.get(RELAY_MODES_FIELD, [])
            if not isinstance(modes, list) or not all(m in RELAY_MODES for m in modes):
                raise _BadRequest(f"{RELAY_MODES_FIELD} must be a list of {', '.join(RELAY_MODES)}")
        except _BadRequest as exc:
            return _error(400, "bad_request", str(exc))
        registration_id = f"reg-{secrets.token_hex(16)}"
        regs = self._registrations
        regs.pop(environment_id, None)
        regs[environment_id] = NoiseRegistration(registration_id, key, tuple(dict.fromkeys(modes)))
        while len(regs) > MAX_REGISTRATIONS:
            regs.popitem(last=False)
        if self.shared is not None:
            await self.shared.put(environment_id, regs[environment_id], token)
        ttl = self._config.url_token_ttl
        url_token = tokens.mint(self._secret, "executor", environment_id, ttl)
        self._directory.remember_registration(
            tokens.token_fingerprint(url_token), tokens.token_fingerprint(token), ttl)
        self._metrics.registrations += 1
        url = (f"{self._ws_base(request)}/executor/{quote(environment_id, safe='')}"
               f"?sig={url_token}")
        return web.json_response({"environment_id": environment_id, "url": url,
                                  "security_profile": SECURITY_PROFILE,
                                  "executor_registration_id": registration_id})

    async def connect(self, request: web.Request) -> web.Response:
        environment_id = request.match_info["environment_id"]
        if self._authenticated(request, "harness", "noise_connect") is None:
            return _error(401, "unauthorized", "invalid, expired or missing harness token")
        try:
            key = _public_key(await _json_object(request), "harness_public_key")
        except _BadRequest as exc:
            return _error(400, "bad_request", str(exc))
        reg = self._registrations.get(environment_id) if self.shared is None \
            else await self.shared.get(environment_id)
        if reg is None:
            # 503: a 0.171 harness retries it (~19 s), as it should while an executor starts
            return _error(503, "environment_unavailable",
                          "no executor has registered this environment")
        ttl = self._config.url_token_ttl
        harness_token = tokens.mint(self._secret, "harness", environment_id, ttl)
        url = (f"{self._ws_base(request)}/harness?role=harness"
               f"&executor_id={quote(environment_id, safe='')}&sig={harness_token}")
        answer: dict[str, Any] = {
            "environment_id": environment_id, "url": url, "security_profile": SECURITY_PROFILE,
            "executor_registration_id": reg.registration_id,
            "executor_public_key": reg.executor_key.to_json(),
            "harness_key_authorization": self.authorize(key, environment_id,
                                                        reg.registration_id)}
        if reg.relay_modes:
            answer[RELAY_MODES_FIELD] = list(reg.relay_modes)
        return web.json_response(answer)

    async def validate(self, request: web.Request) -> web.Response:
        environment_id = request.match_info["environment_id"]
        if self._authenticated(request, "executor", "noise_validate") is None:
            return _error(401, "unauthorized", "invalid, expired or missing executor token")
        try:
            body = await _json_object(request)
            key = _public_key(body, "harness_public_key")
            registration_id = body.get("executor_registration_id")
            authorization = body.get("harness_key_authorization")
            if not isinstance(registration_id, str) or not isinstance(authorization, str):
                raise _BadRequest("executor_registration_id and harness_key_authorization "
                                  "must be strings")
        except _BadRequest as exc:
            return _error(400, "bad_request", str(exc))
        reg = self._registrations.get(environment_id) if self.shared is None \
            else await self.shared.get(environment_id)
        valid = (reg is not None and reg.registration_id == registration_id
                 and len(authorization) <= MAX_AUTHORIZATION_CHARS
                 and self.check(authorization, key, environment_id, registration_id))
        if not valid:
            self._metrics.auth_failures["noise_authorization"] += 1
        return web.json_response({"valid": valid})


__all__ = ["NoiseRegistry", "NoiseRegistration", "AUTHORIZATION_TTL", "AUTH_PREFIX"]
