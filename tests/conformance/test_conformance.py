"""The 65 numbered conformance cases (cases.py, docs/exec-server.md) against ``real`` (codex 0.131.0) and ``ours``.

Run one implementation:   pytest tests/conformance -k real
One case on both:         pytest tests/conformance -k c27-
A failing ``ours`` case is a real difference from codex 0.131.0 (never skip/xfail it here).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from interop.aiohttp_thread import ThreadedApp
from interop.procs import ServerProcess

from .cases import CASES, EXTRA, Ctx, run_case
from .conftest import server_argv

pytestmark = pytest.mark.interop


ALL = [("c", n) for n in sorted(CASES)] + [("x", n) for n in sorted(EXTRA)]


@pytest.mark.parametrize("key", ALL, ids=[f"{k}{n:02d}-{(CASES if k == 'c' else EXTRA)[n].slug}" for k, n in ALL])
async def test_conformance(key: tuple[str, int], impl: str, exec_server: ServerProcess, http_fixture: ThreadedApp,
                           tmp_path: Path) -> None:
    """``cNN``: numbered case NN of cases.py; ``xNN``: extra cases (see cases.py)."""
    kind, number = key
    spec = (CASES if kind == "c" else EXTRA)[number]
    assert exec_server.url is not None
    ctx = Ctx(impl=impl, url=exec_server.url, tmp=tmp_path, http=http_fixture.base_url,
              argv_for=lambda listen: server_argv(impl, listen))
    await run_case(spec, ctx, impl, key, _REAL_SHAPES, "0.131.0")


_REAL_SHAPES: dict[tuple[str, int], dict[str, set[tuple[str, ...]]]] = {}
