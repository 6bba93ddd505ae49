"""The Noise flags of ``execrelay exec-server --remote`` and ``execrelay call`` (processes), and
the executor's key file (docs/noise.md §Our executor)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from execrelay.executor.noise_key import KeyFileError, load_or_create
from execrelay.executor.remote import TOKEN_ENV
from execrelay.harness.noise import AUTH_TOKEN_ENV
from execrelay.rendezvous import RendezvousServer

SECRET = b"noise-cli-tests-secret-0123456789abcdef"
pytestmark = pytest.mark.timeout(60)
CMD = [sys.executable, "-m", "execrelay"]


def test_key_file_is_created_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "executor.key"
    key, created = load_or_create(str(path))
    assert created and stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create(str(path))
    assert not created_again and again.public == key.public
    assert key.public.fingerprint() in repr(key) and path.read_text().split()[1] not in repr(key)


@pytest.mark.parametrize("mode, content, text", [
    (0o644, None, "accessible by group or others (mode 0644)"),
    (0o600, "hello world\n", "is not an execrelay-noise-key-v1 key file"),
    (0o600, "execrelay-noise-key-v1 AAAA\n", "holds a malformed key"),
])
def test_unusable_key_files_are_refused(tmp_path: Path, mode: int, content: str | None, text: str) -> None:
    path = tmp_path / "executor.key"
    load_or_create(str(path))
    if content is not None:
        path.write_text(content)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=text.replace("(", r"\(").replace(")", r"\)")):
        load_or_create(str(path))


@pytest.mark.parametrize("args, text", [
    (["--require-noise"], "--remote <URL>"),
    (["--key-file", "/x"], "--remote <URL>"),
    (["--remote", "http://127.0.0.1:9", "--environment-id", "e", "--require-noise", "--no-noise"],
     "'--require-noise' cannot be used with '--no-noise'"),
])
def test_noise_flag_errors(args: list[str], text: str) -> None:
    out = subprocess.run([*CMD, "exec-server", *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and text in out.stderr, out.stderr


def test_bad_key_file_is_a_clear_start_error(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("nope\n")
    path.chmod(0o600)
    out = subprocess.run([*CMD, "exec-server", "--remote", "http://127.0.0.1:9", "--environment-id", "e",
                          "--key-file", str(path)], capture_output=True, text=True, timeout=30,
                         env={**os.environ, TOKEN_ENV: "t"})
    assert out.returncode == 1 and "is not an execrelay-noise-key-v1 key file" in out.stderr


async def _registered_key(rdv: RendezvousServer, env_id: str, proc: subprocess.Popen) -> str:
    for _ in range(300):
        reg = rdv.noise.registration(env_id)
        if reg is not None and rdv.metrics.connections["executor"] >= 1:
            return reg.executor_key.fingerprint()
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        await asyncio.sleep(0.05)
    raise AssertionError("the executor did not register")


async def test_key_file_survives_a_restart_and_call_speaks_noise(tmp_path: Path) -> None:
    """``exec-server --remote --key-file``: the same static key after a restart; ``execrelay
    call --environment-id`` reaches it over Noise; the key never appears in its output."""
    key_file = tmp_path / "executor.key"
    env_id = "env-cli"
    async with RendezvousServer(SECRET, heartbeat=None) as rdv:
        env = {**os.environ, TOKEN_ENV: rdv.mint_token("executor", env_id)}
        argv = [*CMD, "exec-server", "--remote", rdv.url, "--environment-id", env_id, "--key-file", str(key_file)]
        fingerprints, logs = [], []
        for _ in range(2):
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True)
            try:
                fingerprints.append(await _registered_key(rdv, env_id, proc))
                if len(fingerprints) == 2:
                    out = await asyncio.to_thread(subprocess.run, [
                        *CMD, "call", rdv.url, "fs/getMetadata", json.dumps({"path": str(tmp_path)}),
                        "--environment-id", env_id], capture_output=True, text=True, timeout=30,
                        env={**os.environ, AUTH_TOKEN_ENV: rdv.mint_token("harness", env_id)})
                    assert out.returncode == 0, out.stderr
                    assert json.loads(out.stdout)["isDirectory"] is True
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                stderr = await asyncio.to_thread(proc.communicate, timeout=20)
            logs.append(stderr[1].decode())
            assert "Noise key" in logs[-1] and key_file.read_text().split()[1] not in logs[-1]
            while rdv.metrics.connections["executor"] >= 1:
                await asyncio.sleep(0.05)
        assert fingerprints[0] == fingerprints[1]
        assert "created Noise key file" in logs[0] and "created Noise key file" not in logs[1]
