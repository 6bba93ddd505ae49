"""Registrations valid on every node: the JetStream KV bucket ``rdv_reg``
(docs/rendezvous.md §Several nodes, "Registrations").

Two kinds of entry, each written once when an executor registers (never per frame) and read
by another node on a local miss:

- ``tok.<URL token fingerprint>`` -> the registration the executor URL token belongs to (the
  bearer token's fingerprint; docs/rendezvous.md §URLs and endpoints), so a socket on any node
  is claimed or taken over by the same rules;
- ``env.<environment id>`` -> the 0.171 Noise registration (registration id, the executor's
  public key), so ``/connect`` and ``/validate`` answer on every node
  (docs/rendezvous.md §Noise registry).

Each value carries its own expiry (Unix seconds: the URL token's, the executor bearer token's),
checked on every read; the bucket's ``max_age`` only collects what nobody reads any more.
Values hold nothing a client is not handed anyway (fingerprints, registration ids, public
keys) and are MACed with a key derived from the shared token secret, so a NATS user without
the secret cannot plant an executor key or a registration.  Reads are cached locally until
the entry's expiry; every node also subscribes to the bucket's subjects (``$KV.rdv_reg.>``)
and drops a cached entry another node rewrote, and forgets all cached Noise entries after a
NATS reconnect (it may have missed rewrites meanwhile).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from typing import Any, Callable

import orjson
from nats.aio.msg import Msg
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

from ...stream.noise import PublicKey
from .. import tokens
from ..noise_registry import NoiseRegistration
from .bus import Bus
from .config import ClusterError
from .subjects import token

log = logging.getLogger("execrelay.rendezvous.cluster")

BUCKET = "rdv_reg"
#: What the bucket keeps at most of an entry nobody rewrote (every value also expires by itself).
MAX_AGE = 7 * 24 * 3600.0
#: How long one KV read may take before the node answers as if nothing were registered.
READ_TIMEOUT = 2.0
#: Entries cached per node (the oldest goes first beyond it; a miss reads the bucket again).
MAX_CACHED = 100_000
_MAC_HEX = 64


def tok_key(url_token_fp: str) -> str:
    return f"tok.{url_token_fp}"


def env_key(environment_id: str) -> str:
    return f"env.{token(environment_id)}"


class SharedRegistrations:
    """The ``rdv_reg`` bucket with a local cache; :meth:`open` after the bus connected."""

    def __init__(self, bus: Bus, secret: bytes) -> None:
        self.bus = bus
        self._mac_key = hmac.new(secret, b"execrelay cluster registration v1", hashlib.sha256).digest()
        self.kv: KeyValue | None = None
        #: key -> (raw value, expiry in Unix seconds, decoded value)
        self._cache: dict[str, tuple[bytes, float, Any]] = {}
        #: on /metrics (cluster_registration_*): bucket reads, failed reads and writes
        self.events = bus.events

    async def open(self) -> None:
        nc = self.bus.nc
        assert nc is not None
        js = nc.jetstream()
        try:
            try:
                self.kv = await js.key_value(BUCKET)
            except BucketNotFoundError:
                # direct gets: any server answers a read, not only through the JS API
                self.kv = await js.create_key_value(bucket=BUCKET, history=1, ttl=MAX_AGE,
                                                    direct=True)
            await self.bus.subscribe(f"$KV.{BUCKET}.>", self._on_rewrite)
        except Exception as exc:  # noqa: BLE001 - nats-py raises several unrelated types
            raise ClusterError(f"JetStream KV bucket {BUCKET!r} unavailable: "
                               f"{exc or type(exc).__name__}") from None

    # -- P5.1: URL token -> registration ----------------------------------------------------
    def remember(self, url_token_fp: str, registration: str, ttl: float) -> None:
        """Write ``tok.<fp>``: a plain publish on the bucket's subject, queued before the
        register answer goes out and never waited for (an executor re-homing with every
        registration makes these the bulk of the bucket's writes: no ack round trip, no
        Task).  A node that reads it before it is stored treats the URL as of an unknown
        registration, as one node does."""
        key = tok_key(url_token_fp)
        expiry = time.time() + ttl
        raw = self._seal(key, orjson.dumps({"reg": registration, "exp": expiry}))
        self._remember(key, raw, expiry, {"reg": registration})
        self.bus.publish(f"$KV.{BUCKET}.{key}", raw)

    async def registration_of(self, url_token_fp: str) -> tuple[str, float] | None:
        """``(registration, seconds left)`` from the bucket, None when unknown or expired."""
        found = await self._read(tok_key(url_token_fp))
        if found is None:
            return None
        value, expiry = found
        registration = value.get("reg")
        return (registration, expiry - time.time()) if isinstance(registration, str) else None

    # -- Noise registrations -------------------------------------------------------------
    async def put(self, environment_id: str, registration: NoiseRegistration, bearer: str) -> None:
        """Store the environment's registration until the executor's bearer token expires
        (after that it can neither re-register nor ``/validate``: the registration is dead)."""
        parsed = tokens.canonical(bearer)
        expiry = float(parsed[0]) if parsed is not None else time.time()
        await self._put(env_key(environment_id),
                        {"rid": registration.registration_id,
                         "key": registration.executor_key.to_json()}, expiry, registration)

    async def get(self, environment_id: str) -> NoiseRegistration | None:
        found = await self._read(env_key(environment_id), _noise_registration)
        return found[0] if found is not None else None

    def forget_noise(self) -> None:
        """After a reconnect: cached Noise entries may have been rewritten meanwhile."""
        for key in [k for k in self._cache if k.startswith("env.")]:
            del self._cache[key]

    # -- the bucket ------------------------------------------------------------------------
    def _seal(self, key: str, payload: bytes) -> bytes:
        mac = hmac.new(self._mac_key, key.encode() + b"\0" + payload, hashlib.sha256).hexdigest()
        return mac.encode("ascii") + payload

    def _open(self, key: str, raw: bytes) -> dict[str, Any] | None:
        payload = raw[_MAC_HEX:]
        if len(raw) <= _MAC_HEX or not hmac.compare_digest(self._seal(key, payload), raw):
            return None
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    async def _put(self, key: str, fields: dict[str, Any], expiry: float,
                   decoded: Any = None) -> None:
        raw = self._seal(key, orjson.dumps({**fields, "exp": expiry}))
        self._remember(key, raw, expiry, fields if decoded is None else decoded)
        kv = self.kv
        try:
            if kv is None:
                raise ConnectionError("bucket not open")
            await asyncio.wait_for(kv.put(key, raw), READ_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - NATS away: this node still knows it
            self.events["registration_errors"] += 1
            log.warning("registration %s not shared with the other nodes: %r", key[:4], exc)

    async def _read(self, key: str, decode: Callable[[dict[str, Any]], Any] | None = None
                    ) -> tuple[Any, float] | None:
        now = time.time()
        cached = self._cache.get(key)
        if cached is not None:
            if cached[1] > now:
                return cached[2], cached[1]
            del self._cache[key]
        kv = self.kv
        if kv is None or not self.bus.connected:
            return None  # NATS away: unknown here (a read would wait for its timeout)
        self.events["registration_reads"] += 1
        try:
            entry = await asyncio.wait_for(kv.get(key), READ_TIMEOUT)
        except KeyNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - NATS away or slow: unknown here
            self.events["registration_errors"] += 1
            log.info("registration %s unreadable: %r", key[:4], exc)
            return None
        raw = entry.value or b""
        value = self._open(key, raw)
        if value is None:
            self.events["registration_errors"] += 1
            log.warning("registration entry %s fails its MAC: ignored", key[:4])
            return None
        expiry = value.get("exp")
        if not isinstance(expiry, (int, float)) or expiry <= time.time():
            return None
        try:
            decoded = decode(value) if decode is not None else value
        except ValueError:
            return None
        self._remember(key, raw, float(expiry), decoded)
        return decoded, float(expiry)

    def _remember(self, key: str, raw: bytes, expiry: float, decoded: Any) -> None:
        cache = self._cache
        cache.pop(key, None)
        cache[key] = (raw, expiry, decoded)
        while len(cache) > MAX_CACHED:
            del cache[next(iter(cache))]

    async def _on_rewrite(self, msg: Msg) -> None:
        """Any write to the bucket: drop the cached entry unless it is this very value."""
        key = msg.subject[len(BUCKET) + 5:]
        cached = self._cache.get(key)
        if cached is not None and cached[0] != msg.data:
            del self._cache[key]


def _noise_registration(value: dict[str, Any]) -> NoiseRegistration:
    registration_id = value.get("rid")
    if not isinstance(registration_id, str):
        raise ValueError("no registration id")
    return NoiseRegistration(registration_id, PublicKey.from_json(value.get("key")))
