"""Exec-servers of both dialects for the harness tests.

``impl`` names a server and the dialect the session must detect from its ``initialize`` answer:

* ``real171`` -- codex 0.171.0's own ``codex exec-server`` (the reference of the 0.171 dialect);
* ``real131`` -- codex 0.131.0's;
* ``ours-0.131`` -- ``execrelay exec-server --compat 0.131``;
* ``ours-0.171`` -- ``execrelay exec-server --compat 0.171``, gated by
  ``tests/interop/gate171.py``'s ``OURS_171_READY`` until the dialect is merged.

The real binaries come from ``tests/interop/codex.py`` (npm, cached); tests skip with the reason
when npm cannot provide them.
"""
from __future__ import annotations

import pytest

from interop.codex import CodexUnavailable, ensure_codex
from interop.gate171 import needs_ours_171
from interop.procs import ours_exec_server_argv, real_exec_server_argv

DIALECT = {"real171": "0.171", "real131": "0.131", "ours-0.131": "0.131", "ours-0.171": "0.171"}
_VERSION = {"real171": "0.171.0", "real131": "0.131.0"}


def impls(*names: str) -> list:
    """``parametrize`` values: ``ours-0.171`` carries the merge gate."""
    return [pytest.param(n, marks=needs_ours_171) if n == "ours-0.171" else n for n in names]


def server_argv(impl: str) -> list[str]:
    if impl in _VERSION:
        try:
            return real_exec_server_argv(codex=ensure_codex(_VERSION[impl]))
        except CodexUnavailable as exc:
            pytest.skip(f"codex {_VERSION[impl]} unavailable: {exc}")
    return ours_exec_server_argv() + ["--compat", impl.split("-", 1)[1]]
