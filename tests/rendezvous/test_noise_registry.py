"""The Noise registry endpoints (register / connect / validate) as Codex 0.171 calls them.

The real 0.171 binaries against these endpoints are in tests/interop/test_noise171.py.
"""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from execrelay.stream.noise import SUITE, StaticKeyPair

ENV = "env-1"


async def post(http: aiohttp.ClientSession, server: Any, path: str, token: str | None,
               body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    async with http.post(f"{server.url}{path}", json=body, headers=h,
                         timeout=aiohttp.ClientTimeout(total=10)) as resp:
        return resp.status, await resp.json(content_type=None)


async def register(http, server, key: StaticKeyPair, env: str = ENV) -> dict[str, Any]:
    status, body = await post(http, server, f"/cloud/environment/{env}/register",
                              server.mint_token("executor", env),
                              {"security_profile": "noise_hybrid_ik_v1",
                               "executor_public_key": key.public.to_json()})
    assert status == 200, body
    return body


async def test_register_connect_validate(make_server, http) -> None:
    server = await make_server()
    executor, harness = StaticKeyPair.generate(), StaticKeyPair.generate()
    reg = await register(http, server, executor)
    assert set(reg) == {"environment_id", "url", "security_profile", "executor_registration_id"}
    assert reg["environment_id"] == ENV and reg["security_profile"] == "noise_hybrid_ik_v1"
    assert reg["url"].startswith(f"{server.ws_url}/executor/{ENV}?sig=")

    status, conn = await post(http, server, f"/cloud/environment/{ENV}/connect",
                              server.mint_token("harness", ENV),
                              {"harness_public_key": harness.public.to_json()})
    assert status == 200, conn
    assert conn["executor_registration_id"] == reg["executor_registration_id"]
    assert conn["executor_public_key"] == executor.public.to_json()
    assert conn["executor_public_key"]["suite"] == SUITE
    assert conn["url"].startswith(f"{server.ws_url}/harness?role=harness&executor_id={ENV}&sig=")
    auth = conn["harness_key_authorization"]
    assert auth

    async def validate(key: StaticKeyPair, authorization: str, registration: str,
                       env: str = ENV) -> bool:
        status, body = await post(
            http, server, f"/cloud/environment/{env}/validate", server.mint_token("executor", env),
            {"executor_registration_id": registration,
             "harness_public_key": key.public.to_json(),
             "harness_key_authorization": authorization},
            headers={"x-codex-noise-stream-id": "0f0e0d0c-0b0a-4908-8706-050403020100"})
        assert status == 200, body
        assert set(body) == {"valid"}
        return body["valid"]

    rid = reg["executor_registration_id"]
    assert await validate(harness, auth, rid) is True
    assert await validate(StaticKeyPair.generate(), auth, rid) is False   # another key
    assert await validate(harness, auth, "reg-other") is False            # another registration
    assert await validate(harness, auth[:-2] + "AA", rid) is False        # forged MAC
    assert await validate(harness, "garbage", rid) is False
    # re-registration (a restarted executor, a new key) retires old authorizations
    reg2 = await register(http, server, StaticKeyPair.generate())
    assert reg2["executor_registration_id"] != rid
    assert await validate(harness, auth, rid) is False
    assert await validate(harness, auth, reg2["executor_registration_id"]) is False


async def test_authorization_expires(make_server) -> None:
    server = await make_server()
    key = StaticKeyPair.generate().public
    auth = server.noise.authorize(key, ENV, "reg-1", ttl=5, now=1000.0)
    assert server.noise.check(auth, key, ENV, "reg-1", now=1004.0)
    assert not server.noise.check(auth, key, ENV, "reg-1", now=1005.0)
    assert not server.noise.check(auth, key, "env-2", "reg-1", now=1000.0)


async def test_tokens_and_roles_are_checked(make_server, http) -> None:
    server = await make_server()
    key = StaticKeyPair.generate()
    body = {"security_profile": "noise_hybrid_ik_v1", "executor_public_key": key.public.to_json()}
    path = f"/cloud/environment/{ENV}/register"
    for token in (None, "junk", server.mint_token("harness", ENV),
                  server.mint_token("executor", "env-2")):
        status, err = await post(http, server, path, token, body)
        assert status == 401 and err["error"]["code"] == "unauthorized"
    await register(http, server, key)
    conn = {"harness_public_key": key.public.to_json()}
    status, err = await post(http, server, f"/cloud/environment/{ENV}/connect",
                             server.mint_token("executor", ENV), conn)
    assert status == 401 and set(err["error"]) == {"code", "message"}
    status, err = await post(http, server, f"/cloud/environment/{ENV}/validate",
                             server.mint_token("harness", ENV), {})
    assert status == 401


async def test_bad_bodies_and_unknown_environment(make_server, http) -> None:
    server = await make_server()
    key = StaticKeyPair.generate().public.to_json()
    tok = server.mint_token("executor", ENV)
    path = f"/cloud/environment/{ENV}/register"
    for body in ({"security_profile": "other", "executor_public_key": key},
                 {"security_profile": "noise_hybrid_ik_v1"},
                 {"security_profile": "noise_hybrid_ik_v1", "executor_public_key": {**key, "x": 1}},
                 [1, 2]):
        status, err = await post(http, server, path, tok, body)
        assert status == 400 and err["error"]["code"] == "bad_request", body
    # connect before any executor registered: 503, which a 0.171 harness retries
    status, err = await post(http, server, f"/cloud/environment/{ENV}/connect",
                             server.mint_token("harness", ENV), {"harness_public_key": key})
    assert status == 503 and err["error"]["code"] == "environment_unavailable"
    status, err = await post(http, server, f"/cloud/environment/{ENV}/validate", tok,
                             {"harness_public_key": key})
    assert status == 400


async def test_p51_registration_is_unchanged(make_server, http) -> None:
    server = await make_server()
    status, body = await post(http, server, "/cloud/executor/exec-1/register",
                              server.mint_token("executor", "exec-1"), {})
    assert status == 200 and set(body) == {"executor_id", "url"}
    await asyncio.sleep(0)
