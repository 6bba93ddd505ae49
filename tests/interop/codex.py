"""Locate (installing on first use) the real codex-cli 0.131.0 native binary.

The binary is the reference implementation every interop and conformance test compares
against, so it is pinned to exactly 0.131.0 and cached outside the repo:

    npm install --prefix ~/.cache/execrelay/codex-0.131.0 @openai/codex@0.131.0 --no-audit --no-fund

``EXECRELAY_CODEX_CACHE`` overrides the cache directory; ``EXECRELAY_CODEX_BIN`` points straight
at a binary (skips npm entirely). The npm ``codex`` launcher is a Node wrapper; we run the
native musl binary it wraps so process groups and signals reach the real server directly.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

CODEX_VERSION = "0.131.0"
NPM_PACKAGE = f"@openai/codex@{CODEX_VERSION}"
INSTALL_TIMEOUT_S = 300.0


class CodexUnavailable(RuntimeError):
    """npm (or the registry) could not provide the binary; tests skip with this message."""


def cache_dir() -> Path:
    env = os.environ.get("EXECRELAY_CODEX_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "execrelay" / f"codex-{CODEX_VERSION}"


def install_command(prefix: Path) -> list[str]:
    return ["npm", "install", "--prefix", str(prefix), NPM_PACKAGE, "--no-audit", "--no-fund"]


def _target_triple() -> tuple[str, str]:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "linux-x64", "x86_64-unknown-linux-musl"
    if machine in ("aarch64", "arm64"):
        return "linux-arm64", "aarch64-unknown-linux-musl"
    raise CodexUnavailable(f"no codex {CODEX_VERSION} native build for machine {machine!r}")


def native_binary(prefix: Path) -> Path | None:
    """Return the native binary inside an npm prefix, or None when it is not installed."""
    pkg, triple = _target_triple()
    candidates = [
        prefix / "node_modules" / "@openai" / f"codex-{pkg}" / "vendor" / triple / "codex" / "codex",
        prefix / "node_modules" / "@openai" / "codex" / "vendor" / triple / "codex" / "codex",
    ]
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def _version_ok(binary: Path) -> bool:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and CODEX_VERSION in out.stdout


_FAILED: CodexUnavailable | None = None  # remembered so one offline run pays the npm timeout once


def ensure_codex(timeout: float = INSTALL_TIMEOUT_S) -> Path:
    """Return the path of the codex 0.131.0 native binary, installing it with npm if needed.

    Raises CodexUnavailable (with the reason) when npm is missing or the install fails, so a
    fixture can turn that into a clear skip. A failure is remembered for the process.
    """
    global _FAILED
    if _FAILED is not None:
        raise _FAILED
    try:
        return _ensure_codex(timeout)
    except CodexUnavailable as exc:
        _FAILED = exc
        raise


def _ensure_codex(timeout: float) -> Path:
    explicit = os.environ.get("EXECRELAY_CODEX_BIN")
    if explicit:
        path = Path(explicit)
        if not _version_ok(path):
            raise CodexUnavailable(f"EXECRELAY_CODEX_BIN={explicit} is not codex-cli {CODEX_VERSION}")
        return path
    prefix = cache_dir()
    found = native_binary(prefix)
    if found is not None and _version_ok(found):
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise CodexUnavailable(f"npm is not installed; cannot fetch {NPM_PACKAGE}")
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = install_command(prefix)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CodexUnavailable(f"`{' '.join(cmd)}` timed out after {timeout:.0f}s "
                               "(npm registry unreachable?)") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        key = [ln for ln in lines if any(w in ln for w in ("code", "errno", "ECONN", "ENOTFOUND", "ETIMEDOUT",
                                                                "EAI_AGAIN", "network", "404"))]
        detail = " | ".join((key or lines)[:4] if key else lines[-4:])
        raise CodexUnavailable(f"`{' '.join(cmd)}` failed (rc {proc.returncode}; npm registry unreachable?): "
                               + detail)
    found = native_binary(prefix)
    if found is None or not _version_ok(found):
        raise CodexUnavailable(f"{NPM_PACKAGE} installed into {prefix} but no working native binary found")
    return found


if __name__ == "__main__":  # `python tests/interop/codex.py` pre-installs (used by CI setup)
    print(ensure_codex())
