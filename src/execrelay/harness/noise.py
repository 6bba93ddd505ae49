"""The harness's side of the Noise registry (docs/noise.md §Our harness client).

:func:`noise_connect` is 0.171's ``POST /cloud/environment/{id}/connect``: the harness
publishes its static key with its bearer and learns where the executor is (the harness
websocket URL), which key to pin for it, the registration the handshakes are bound to and the
authorization to carry in message 1.  :class:`NoiseTarget` holds that answer and makes the
record layer of each new stream.
"""
from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

import orjson

from ..stream.noise import PublicKey, StaticKeyPair
from ..stream.noise_stream import RELAY_MODES_FIELD, HarnessNoiseLayer
from ..transport import tls
from .errors import HarnessError

#: The harness bearer's environment variable, as the 0.171 harness reads it.
AUTH_TOKEN_ENV = "CODEX_EXEC_SERVER_NOISE_AUTH_TOKEN"
#: Ask ``/connect`` again for a new stream once the answer is this old: the registry's
#: authorization expires (ours after 600 s) and the executor may have re-registered.
REFRESH_AFTER = 240.0
#: ``/connect`` answers 503 while no executor serves the environment; retried this long.
UNAVAILABLE_RETRY = 20.0


class NoiseTarget:
    """One ``/connect`` answer: the executor to reach and how to prove who we are."""

    __slots__ = ("url", "environment_id", "registration_id", "executor_key", "authorization",
                 "relay_modes", "fetched_at")

    def __init__(self, answer: dict, environment_id: str) -> None:
        try:
            self.url: str = _text(answer, "url")
            self.registration_id: str = _text(answer, "executor_registration_id")
            self.authorization: str = _text(answer, "harness_key_authorization")
            self.executor_key = PublicKey.from_json(answer.get("executor_public_key"))
        except ValueError as exc:
            raise HarnessError(f"noise registry answer is malformed: {exc}") from None
        self.environment_id = environment_id
        modes = answer.get(RELAY_MODES_FIELD)
        #: the stream framings the executor announced (a 0.171 executor: none, legacy only)
        self.relay_modes: tuple[str, ...] = tuple(m for m in modes if isinstance(m, str)) \
            if isinstance(modes, list) else ()
        self.fetched_at = time.monotonic()

    @property
    def stale(self) -> bool:
        return time.monotonic() - self.fetched_at > REFRESH_AFTER

    def layer(self, stream_id: str, identity: StaticKeyPair) -> HarnessNoiseLayer:
        """The record layer of a new stream to this executor."""
        return HarnessNoiseLayer(stream_id, identity, self.executor_key, self.environment_id,
                                 self.registration_id, self.authorization)

    def __repr__(self) -> str:
        return f"NoiseTarget({self.environment_id!r}, {self.registration_id!r}, {self.executor_key!r})"


def _text(answer: dict, field: str) -> str:
    value = answer.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string")
    return value


async def noise_connect(registry_url: str, environment_id: str, token: str,
                        identity: StaticKeyPair, timeout: float = 10.0,
                        ca_file: str | None = None) -> NoiseTarget:
    """``POST {registry}/cloud/environment/{id}/connect`` with our static key; HarnessError
    with the registry's reason on refusal (a 503 is retried for :data:`UNAVAILABLE_RETRY`)."""
    import aiohttp

    url = f"{registry_url.rstrip('/')}/cloud/environment/{quote(environment_id, safe='')}/connect"
    ctx = tls.for_url(url, ca_file)
    deadline = time.monotonic() + UNAVAILABLE_RETRY
    delay = 0.1
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
        while True:
            try:
                async with http.post(url, headers={"Authorization": f"Bearer {token}"},
                                     json={"harness_public_key": identity.public.to_json()},
                                     allow_redirects=False,
                                     ssl=ctx if ctx is not None else True) as resp:
                    status, body = resp.status, await resp.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                raise HarnessError(f"noise registry request failed: {exc or type(exc).__name__}") from None
            if status == 503 and time.monotonic() + delay < deadline:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            break
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not 200 <= status < 300:
        err = answer.get("error") if isinstance(answer, dict) else None
        what = f"{err.get('code')}: {err.get('message')}" if isinstance(err, dict) else body[:200].decode("utf-8", "replace")
        raise HarnessError(f"noise registry refused the connection ({status}): {what}")
    if not isinstance(answer, dict):
        raise HarnessError("noise registry answer is not a JSON object")
    return NoiseTarget(answer, environment_id)


__all__ = ["NoiseTarget", "noise_connect", "AUTH_TOKEN_ENV", "REFRESH_AFTER"]
