"""Locate (installing on first use) the real codex-cli 0.171.0 native binary.

0.171.0 is the current Codex whose exec-server dialect (``file://`` URIs, ``environmentInfo``,
``writeId``...) differs from 0.131.0's; its own ``codex exec-server`` is the control for the 0.171
interop tests. Same pinning, cache and skip rules as ``codex.py`` (which this file will be folded
into as ``ensure_codex(version)``), except for the npm layout: the 0.171 native binary is
``vendor/<triple>/bin/codex`` (0.131: ``vendor/<triple>/codex/codex``).

    npm install --prefix ~/.cache/execrelay/codex-0.171.0 @openai/codex@0.171.0 --no-audit --no-fund

``EXECRELAY_CODEX171_CACHE`` overrides the cache directory; ``EXECRELAY_CODEX171_BIN`` points
straight at a binary (skips npm entirely).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .codex import INSTALL_TIMEOUT_S, CodexUnavailable, _target_triple

CODEX171_VERSION = "0.171.0"
NPM_PACKAGE_171 = f"@openai/codex@{CODEX171_VERSION}"


def cache_dir171() -> Path:
    env = os.environ.get("EXECRELAY_CODEX171_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "execrelay" / f"codex-{CODEX171_VERSION}"


def install_command171(prefix: Path) -> list[str]:
    return ["npm", "install", "--prefix", str(prefix), NPM_PACKAGE_171, "--no-audit", "--no-fund"]


def native_binary171(prefix: Path) -> Path | None:
    """Return the 0.171 native binary inside an npm prefix, or None when it is not installed."""
    pkg, triple = _target_triple()
    candidates = [
        prefix / "node_modules" / "@openai" / f"codex-{pkg}" / "vendor" / triple / "bin" / "codex",
        prefix / "node_modules" / "@openai" / "codex" / "vendor" / triple / "bin" / "codex",
    ]
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    return None


def _is_171(binary: Path) -> bool:
    # codex.py's _version_ok checks against 0.131.0; "0.131.0" is not a substring of a 0.171 version.
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and CODEX171_VERSION in out.stdout


_FAILED: CodexUnavailable | None = None  # one offline run pays the npm timeout once


def ensure_codex171(timeout: float = INSTALL_TIMEOUT_S) -> Path:
    """Return the path of the codex 0.171.0 native binary, installing it with npm if needed.

    Raises CodexUnavailable (with the reason) when npm is missing or the install fails, so the
    fixture can turn that into a clear skip. A failure is remembered for the process.
    """
    global _FAILED
    if _FAILED is not None:
        raise _FAILED
    try:
        return _ensure_codex171(timeout)
    except CodexUnavailable as exc:
        _FAILED = exc
        raise


def _ensure_codex171(timeout: float) -> Path:
    explicit = os.environ.get("EXECRELAY_CODEX171_BIN")
    if explicit:
        if not _is_171(Path(explicit)):
            raise CodexUnavailable(f"EXECRELAY_CODEX171_BIN={explicit} is not codex-cli {CODEX171_VERSION}")
        return Path(explicit)
    prefix = cache_dir171()
    found = native_binary171(prefix)
    if found is not None and _is_171(found):
        return found
    if shutil.which("npm") is None:
        raise CodexUnavailable(f"npm is not installed; cannot fetch {NPM_PACKAGE_171}")
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = install_command171(prefix)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CodexUnavailable(f"`{' '.join(cmd)}` timed out after {timeout:.0f}s "
                               "(npm registry unreachable?)") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        raise CodexUnavailable(f"`{' '.join(cmd)}` failed (rc {proc.returncode}; npm registry unreachable?): {tail}")
    found = native_binary171(prefix)
    if found is None or not _is_171(found):
        raise CodexUnavailable(f"{NPM_PACKAGE_171} installed into {prefix} but no working native binary found")
    return found


@pytest.fixture(scope="session")
def codex171_bin() -> Path:
    """The real codex 0.171.0 binary; skips (with npm's reason) only when npm cannot provide it."""
    try:
        return ensure_codex171()
    except CodexUnavailable as exc:
        pytest.skip(f"codex {CODEX171_VERSION} unavailable: {exc}")
