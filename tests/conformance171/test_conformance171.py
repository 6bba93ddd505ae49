"""The codex 0.171.0 dialect, case by case (cases.py), against ``real`` (codex 0.171.0) and ``ours``.

Run one implementation:   EXECRELAY_CONFORMANCE171_IMPLS=ours pytest tests/conformance171
One case:                 pytest tests/conformance171 -k c50-
By default both halves run (``ours`` alone under EXECRELAY_PURE=1). A failing ``ours`` case
is a real difference from codex 0.171.0 (never skip/xfail it here).
"""
from __future__ import annotations

from pathlib import Path

import pytest


from conformance.cases import run_case

from .cases import CASES, Ctx171
from .conftest import Server171, server_argv

pytestmark = pytest.mark.interop

ALL = sorted(CASES)


@pytest.mark.parametrize("number", ALL, ids=[f"c{n:02d}-{CASES[n].slug}" for n in ALL])
async def test_conformance171(number: int, impl: str, exec_server171: Server171, tmp_path: Path) -> None:
    spec = CASES[number]
    ctx = Ctx171(impl=impl, url=exec_server171.url, tmp=tmp_path, http="",
                 argv_for=lambda listen: server_argv(impl, listen),
                 server_cwd=exec_server171.cwd, codex_home=exec_server171.codex_home)
    await run_case(spec, ctx, impl, number, _REAL_SHAPES, "0.171.0")


_REAL_SHAPES: dict[int, dict[str, set[tuple[str, ...]]]] = {}
