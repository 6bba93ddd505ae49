"""Token format (P5.1), checked against an independent HMAC computation."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

import pytest

from execrelay.rendezvous import tokens

SECRET = b"0123456789abcdef-secret"


def independent_mac(secret: bytes, role: str, executor_id: str, expiry: int) -> str:
    digest = hmac.new(secret, f"v1|{role}|{executor_id}|{expiry}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


def test_format_matches_independent_hmac() -> None:
    now = 1_800_000_000
    token = tokens.mint(SECRET, "harness", "exec-1", ttl=60, now=now)
    assert re.fullmatch(r"v1\.\d+\.[A-Za-z0-9_-]{43}=", token)
    _, expiry, mac = token.split(".")
    assert int(expiry) == now + 60
    assert mac == independent_mac(SECRET, "harness", "exec-1", now + 60)


def test_verify_accepts_exact_role_id_and_unexpired() -> None:
    token = tokens.mint(SECRET, "executor", "e1", ttl=100)
    assert tokens.verify(SECRET, token, "executor", "e1")
    assert not tokens.verify(SECRET, token, "harness", "e1")
    assert not tokens.verify(SECRET, token, "executor", "e2")
    assert not tokens.verify(b"another-secret-0123456", token, "executor", "e1")
    assert not tokens.verify(SECRET, token, "executor", "e1", now=time.time() + 101)


def test_verify_accepts_unpadded_mac_and_rejects_garbage() -> None:
    token = tokens.mint(SECRET, "harness", "e1", ttl=100)
    assert token.endswith("=")  # RFC 4648 base64url keeps its padding
    assert tokens.verify(SECRET, token.rstrip("="), "harness", "e1")
    for bad in ("", "v1", "v1..", "v2" + token[2:], token.rstrip("=")[:-1], token + "A", "v1.abc." + token.split(".")[2],
                "v1.-5." + token.split(".")[2], token.replace(".", "|"), "v1.\u00b2." + token.split(".")[2],
                "v1.1" + "0" * 20 + "." + token.split(".")[2], "v1.99." + "\u00e9" * 43):
        assert not tokens.verify(SECRET, bad, "harness", "e1"), bad
    assert not tokens.verify(SECRET, None, "harness", "e1")


def test_token_for_another_executor_with_same_expiry_differs() -> None:
    a = tokens.mint(SECRET, "harness", "a", ttl=10, now=1000)
    b = tokens.mint(SECRET, "harness", "b", ttl=10, now=1000)
    assert a != b


def test_load_secret_sources(tmp_path) -> None:
    f = tmp_path / "secret"
    f.write_bytes(b"file-secret-0123456789\n")
    assert tokens.load_secret(str(f), env={})[0] == b"file-secret-0123456789"
    env = {tokens.SECRET_ENV: "env-secret-0123456789"}
    assert tokens.load_secret(None, env=env)[0] == b"env-secret-0123456789"
    short = tmp_path / "short"
    short.write_bytes(b"short")
    with pytest.raises(tokens.SecretError):
        tokens.load_secret(str(short), env={})
    with pytest.raises(tokens.SecretError):
        tokens.load_secret(None, env={tokens.SECRET_ENV: "tooshort"})
    with pytest.raises(tokens.SecretError):
        tokens.load_secret(None, env={}, allow_random=False)
    secret, source = tokens.load_secret(None, env={})
    assert len(secret) == 32 and source.startswith("random")
