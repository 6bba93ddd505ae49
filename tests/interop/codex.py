"""Locate (installing on first use) a real codex-cli native binary: 0.131.0 or 0.171.0.

These binaries are the reference implementations the interop and conformance tests compare
against (0.131.0 for the original dialect, 0.171.0 for the current one), so each is pinned to
an exact version and cached outside the repo:

    npm install --prefix ~/.cache/execrelay/codex-<version> @openai/codex@<version> --no-audit --no-fund

Overrides, per version: ``EXECRELAY_CODEX_CACHE`` / ``EXECRELAY_CODEX_BIN`` (0.131.0, the
default) and ``EXECRELAY_CODEX171_CACHE`` / ``EXECRELAY_CODEX171_BIN`` (0.171.0) name the
cache directory or point straight at a binary (skipping npm). The npm ``codex`` launcher is a
Node wrapper; we run the native musl binary it wraps so process groups and signals reach the
real server directly.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

CODEX_VERSION = "0.131.0"  # the default: every call site written before 0.171.0 means this one
CODEX_171 = "0.171.0"
NPM_PACKAGE = f"@openai/codex@{CODEX_VERSION}"
INSTALL_TIMEOUT_S = 300.0

# version -> (binary override variable, cache directory override variable)
_ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    CODEX_VERSION: ("EXECRELAY_CODEX_BIN", "EXECRELAY_CODEX_CACHE"),
    CODEX_171: ("EXECRELAY_CODEX171_BIN", "EXECRELAY_CODEX171_CACHE"),
}


class CodexUnavailable(RuntimeError):
    """npm (or the registry) could not provide the binary; tests skip with this message."""


def npm_package(version: str = CODEX_VERSION) -> str:
    return f"@openai/codex@{version}"


def _overrides(version: str) -> tuple[str, str]:
    try:
        return _ENV_OVERRIDES[version]
    except KeyError:
        raise CodexUnavailable(f"codex {version} is not one of the pinned versions "
                               f"{sorted(_ENV_OVERRIDES)}") from None


def cache_dir(version: str = CODEX_VERSION) -> Path:
    env = os.environ.get(_overrides(version)[1])
    if env:
        return Path(env)
    return Path.home() / ".cache" / "execrelay" / f"codex-{version}"


def install_command(prefix: Path, version: str = CODEX_VERSION) -> list[str]:
    return ["npm", "install", "--prefix", str(prefix), npm_package(version), "--no-audit", "--no-fund"]


def _target_triple(version: str) -> tuple[str, str]:
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "linux-x64", "x86_64-unknown-linux-musl"
    if machine in ("aarch64", "arm64"):
        return "linux-arm64", "aarch64-unknown-linux-musl"
    raise CodexUnavailable(f"no codex {version} native build for machine {machine!r}")


def native_binary(prefix: Path, version: str = CODEX_VERSION) -> Path | None:
    """Return the native binary inside an npm prefix, or None when it is not installed.

    The layout moved between releases: 0.131.0 ships ``vendor/<triple>/codex/codex``,
    0.171.0 ``vendor/<triple>/bin/codex``; both are looked for (the version check of the
    caller decides whether the one found is the right release).
    """
    pkg, triple = _target_triple(version)
    candidates = []
    for package in (f"codex-{pkg}", "codex"):
        vendor = prefix / "node_modules" / "@openai" / package / "vendor" / triple
        candidates += [vendor / "codex" / "codex", vendor / "bin" / "codex"]
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def _version_ok(binary: Path, version: str = CODEX_VERSION) -> bool:
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.split()[-1:] == [version]


_FAILED: dict[str, CodexUnavailable] = {}  # remembered so one offline run pays the npm timeout once


def ensure_codex(version: str = CODEX_VERSION, *, timeout: float = INSTALL_TIMEOUT_S) -> Path:
    """Return the path of the codex ``version`` native binary, installing it with npm if needed.

    Raises CodexUnavailable (with the reason) when npm is missing or the install fails, so a
    fixture can turn that into a clear skip. A failure is remembered per version for the process.
    """
    if version in _FAILED:
        raise _FAILED[version]
    try:
        return _ensure_codex(version, timeout)
    except CodexUnavailable as exc:
        _FAILED[version] = exc
        raise


def _ensure_codex(version: str, timeout: float) -> Path:
    bin_var, _ = _overrides(version)
    explicit = os.environ.get(bin_var)
    if explicit:
        path = Path(explicit)
        if not _version_ok(path, version):
            raise CodexUnavailable(f"{bin_var}={explicit} is not codex-cli {version}")
        return path
    prefix = cache_dir(version)
    found = native_binary(prefix, version)
    if found is not None and _version_ok(found, version):
        return found
    npm = shutil.which("npm")
    package = npm_package(version)
    if npm is None:
        raise CodexUnavailable(f"npm is not installed; cannot fetch {package}")
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = install_command(prefix, version)
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
    found = native_binary(prefix, version)
    if found is None or not _version_ok(found, version):
        raise CodexUnavailable(f"{package} installed into {prefix} but no working native binary found")
    return found


if __name__ == "__main__":  # `python tests/interop/codex.py [VERSION]` pre-installs (used by CI setup)
    import sys

    print(ensure_codex(sys.argv[1] if len(sys.argv) > 1 else CODEX_VERSION))
