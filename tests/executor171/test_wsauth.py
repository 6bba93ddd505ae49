"""wsauth: 0.171.0's --ws-auth rules (texts probed from the real binary)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from execrelay.executor import wsauth
from execrelay.executor.wsauth import WsAuthConfig, WsAuthConfigError, WsAuthError

SECRET = b"x" * 40
NOW = 1_800_000_000


def b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims: dict, secret: bytes = SECRET, header: dict | None = None) -> str:
    p = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return p + "." + b64(hmac.new(secret, p.encode(), hashlib.sha256).digest())


def refused(policy: wsauth.WsAuthPolicy, header) -> str:
    with pytest.raises(WsAuthError) as ei:
        policy.authorize(header, clock=lambda: NOW)
    assert ei.value.status == 401
    return ei.value.message


def test_capability_token(tmp_path) -> None:
    (tmp_path / "tok").write_text("  s3cret-token\n")
    for cfg in (WsAuthConfig(mode="capability-token", token_file=str(tmp_path / "tok")),
                WsAuthConfig(mode="capability-token", token_sha256=hashlib.sha256(b"s3cret-token").hexdigest())):
        p = cfg.policy()
        assert p is not None
        p.authorize("Bearer s3cret-token")
        p.authorize("bearer    s3cret-token  ")
        assert refused(p, None) == "missing websocket bearer token"
        assert refused(p, "Bearer nope") == "invalid websocket bearer token"
        for bad in ("Basic s3cret-token", "s3cret-token", "Bearer ", "Bearer    ", b"Bearer \xff"):
            assert refused(p, bad) == "invalid authorization header"


def test_signed_bearer(tmp_path) -> None:
    (tmp_path / "sec").write_bytes(SECRET + b"\n")
    p = WsAuthConfig(mode="signed-bearer-token", shared_secret_file=str(tmp_path / "sec"), issuer=" iss1 ",
                     audience="aud1", max_clock_skew_seconds=10).policy()
    assert p is not None and p.issuer == "iss1"
    ok = {"exp": NOW + 60, "iss": "iss1", "aud": "aud1"}
    p.authorize("Bearer " + jwt(ok), clock=lambda: NOW)
    p.authorize("Bearer " + jwt({**ok, "aud": ["x", "aud1"]}), clock=lambda: NOW)
    p.authorize("Bearer " + jwt({**ok, "exp": NOW - 5}), clock=lambda: NOW)  # within the skew
    cases = [
        ({**ok, "exp": NOW - 30}, SECRET, None, "expired websocket jwt"),
        ({**ok, "nbf": NOW + 60}, SECRET, None, "websocket jwt is not valid yet"),
        ({**ok, "iss": "other"}, SECRET, None, "websocket jwt issuer mismatch"),
        ({"exp": NOW + 60, "aud": "aud1"}, SECRET, None, "websocket jwt issuer mismatch"),
        ({**ok, "aud": "x"}, SECRET, None, "websocket jwt audience mismatch"),
        ({"iss": "iss1", "aud": "aud1"}, SECRET, None, "invalid websocket jwt"),
        (ok, b"y" * 40, None, "invalid websocket jwt"),
        (ok, SECRET, {"alg": "HS384"}, "invalid websocket jwt"),
        (ok, SECRET, {"alg": "none"}, "invalid websocket jwt"),
        (ok, SECRET + b"\n", None, "invalid websocket jwt"),
        ({**ok, "exp": NOW + 60.5}, SECRET, None, "invalid websocket jwt"),
    ]
    for claims, secret, header, message in cases:
        assert refused(p, "Bearer " + jwt(claims, secret, header)) == message, claims
    assert refused(p, "Bearer a.b") == "invalid websocket jwt"


def test_signed_bearer_defaults(tmp_path) -> None:
    (tmp_path / "sec").write_bytes(SECRET)
    p = WsAuthConfig(mode="signed-bearer-token", shared_secret_file=str(tmp_path / "sec"), issuer="  ").policy()
    assert p is not None and p.issuer is None and p.max_clock_skew_seconds == 30
    p.authorize("Bearer " + jwt({"exp": NOW - 29}), clock=lambda: NOW)


@pytest.mark.parametrize("kwargs,message", [
    (dict(mode="capability-token"),
     "`--ws-token-file` or `--ws-token-sha256` is required when `--ws-auth capability-token` is set"),
    (dict(mode="capability-token", token_sha256="abc"), "--ws-token-sha256 must be a 64-character hex SHA-256 digest"),
    (dict(mode="capability-token", token_sha256="zz" * 32), "--ws-token-sha256 must be a 64-character hex SHA-256 digest"),
    (dict(mode="signed-bearer-token"),
     "`--ws-shared-secret-file` is required when `--ws-auth signed-bearer-token` is set"),
    (dict(token_file="/tmp/x"),
     "websocket auth flags require `--ws-auth capability-token` or `--ws-auth signed-bearer-token`"),
    (dict(mode="capability-token", token_file="/tmp/x", token_sha256="0" * 64),
     "`--ws-token-file` and `--ws-token-sha256` are mutually exclusive"),
    (dict(mode="capability-token", issuer="x"),
     "`--ws-shared-secret-file`, `--ws-issuer`, `--ws-audience`, and `--ws-max-clock-skew-seconds` require "
     "`--ws-auth signed-bearer-token`"),
    (dict(mode="signed-bearer-token", token_file="/x", shared_secret_file="/y"),
     "`--ws-token-file` requires `--ws-auth capability-token`, not `signed-bearer-token`"),
])
def test_option_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(WsAuthConfigError) as ei:
        WsAuthConfig(**kwargs).policy()
    assert str(ei.value) == message


def test_secret_file_errors(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WsAuthConfigError) as ei:
        WsAuthConfig(mode="capability-token", token_file="rel").policy()
    assert str(ei.value) == f"failed to read websocket auth secret {tmp_path}/rel: No such file or directory (os error 2)"
    (tmp_path / "short").write_text("short\n")
    with pytest.raises(WsAuthConfigError) as ei:
        WsAuthConfig(mode="signed-bearer-token", shared_secret_file=str(tmp_path / "short")).policy()
    assert str(ei.value) == f"signed websocket bearer secret {tmp_path}/short must be at least 32 bytes"
    (tmp_path / "blank").write_text(" \n")
    with pytest.raises(WsAuthConfigError) as ei:
        WsAuthConfig(mode="capability-token", token_file=str(tmp_path / "blank")).policy()
    assert str(ei.value) == f"websocket auth secret {tmp_path}/blank must not be empty"


def test_no_auth_is_open() -> None:
    assert WsAuthConfig().policy() is None
