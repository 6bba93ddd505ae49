"""The codex 0.171.0 dialect, case by case (cases.py), against ``real`` (codex 0.171.0) and ``ours``.

Run one implementation:   EXECRELAY_CONFORMANCE171_IMPLS=ours pytest tests/conformance171
One case:                 pytest tests/conformance171 -k c50-
Which halves run by default is decided by ``OURS_READY`` in conftest.py. A failing ``ours`` case
is a real difference from codex 0.171.0 (never skip/xfail it here).
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest


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
    try:
        await asyncio.wait_for(spec.fn(ctx), spec.timeout)
    finally:
        await ctx.close_all()
    # Differential wire checks: compact JSON like serde, and (when the real half ran earlier in
    # this session) exactly the same object key sequences as codex 0.171.0 for this case.
    assert ctx.non_compact() == [], "server output is not compact serde-style JSON"
    shapes = ctx.wire_shapes()
    if impl == "real":
        _REAL_SHAPES[number] = shapes
    elif number in _REAL_SHAPES:
        real = _REAL_SHAPES[number]
        for kind in sorted(set(shapes) & set(real)):
            ours_k, real_k = shapes[kind], real[kind]
            assert ours_k == real_k, (
                f"object keys or key order in {kind!r} messages differ from codex 0.171.0: "
                f"only ours {sorted(ours_k - real_k)}, only real {sorted(real_k - ours_k)}")


_REAL_SHAPES: dict[int, dict[str, set[tuple[str, ...]]]] = {}
