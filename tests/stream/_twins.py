"""A second copy of the whole wire + stream stack, forced compiled or pure (for the stack-level
differential test; per-module twins come from the ``twin``/``twin_pair`` fixtures of
tests/conftest.py).  The copying itself is ``execrelay.bench.stacks`` (the benchmarks use it too)."""
from __future__ import annotations

from types import ModuleType

from execrelay.bench.stacks import fresh_stack as _fresh


def fresh_stack(pure: bool) -> ModuleType:
    """The copy's ``execrelay.stream.mux`` module, checked to be the build that was asked for."""
    stack = _fresh(pure)
    want = "pure" if pure else "cython"
    # the caller checked (twin_pair) that the compiled modules exist, so this cannot skip
    assert stack.hot.IMPLEMENTATION == want and stack.wire.IMPLEMENTATION == want
    return stack.mux
