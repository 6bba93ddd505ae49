"""Exec-servers of both dialects for the harness tests.

``impl`` names a server and the dialect the session must detect from its ``initialize`` answer:

* ``real171`` -- codex 0.171.0's own ``codex exec-server`` (the reference of the 0.171 dialect);
* ``real131`` -- codex 0.131.0's;
* ``ours-0.131`` -- ``execrelay exec-server --compat 0.131``;
* ``ours-0.171`` -- ``execrelay exec-server --compat 0.171``.

The real binaries come from ``tests/interop/codex.py`` (npm, cached); tests skip with the reason
when npm cannot provide them.
"""
from __future__ import annotations

import pytest

from interop.codex import CodexUnavailable, ensure_codex
from interop.procs import ours_exec_server_argv, real_exec_server_argv

DIALECT = {"real171": "0.171", "real131": "0.131", "ours-0.131": "0.131", "ours-0.171": "0.171"}
_VERSION = {"real171": "0.171.0", "real131": "0.131.0"}


def server_argv(impl: str) -> list[str]:
    if impl in _VERSION:
        try:
            return real_exec_server_argv(codex=ensure_codex(_VERSION[impl]))
        except CodexUnavailable as exc:
            pytest.skip(f"codex {_VERSION[impl]} unavailable: {exc}")
    return ours_exec_server_argv() + ["--compat", impl.split("-", 1)[1]]
