"""A second copy of the whole wire + stream stack, forced compiled or pure, beside the regular one.

Used where both builds must run in one process: the stack-level differential test
(tests/stream/test_stack_differential.py) and the engine-to-engine benchmarks
(benchmarks/bench_stream.py).  See docs/architecture.md §Compiled and pure builds.
"""
from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import NamedTuple

import execrelay
from execrelay import _accel

_PREFIXES = ("execrelay.wire", "execrelay.stream")
# the exceptions stay shared: a compiled module imported twice rebinds its (process-wide C)
# globals, so two copies of ProtocolViolation would leak into the regular stack
_SHARED = "execrelay.stream.errors"


class Stack(NamedTuple):
    """The fresh copy's modules."""

    mux: ModuleType
    engine: ModuleType
    hot: ModuleType
    wire: ModuleType


def fresh_stack(pure: bool) -> Stack:
    """Import execrelay.wire + execrelay.stream a second time, with every twin forced pure (or
    compiled: the one that is built), and return that copy's modules.  The regular modules are
    put back afterwards, so both stacks live side by side in one process."""
    saved = {k: v for k, v in sys.modules.items() if k.startswith(_PREFIXES) and k != _SHARED}
    attrs = {a: getattr(execrelay, a) for a in ("wire", "stream") if hasattr(execrelay, a)}
    for k in saved:
        del sys.modules[k]
    for a in attrs:  # else "from .. import wire" would hand back the already-imported twin
        delattr(execrelay, a)
    old = _accel.FORCE_PURE
    active = dict(_accel.ACTIVE)   # the second import records its choice: put the real one back
    _accel.FORCE_PURE = pure
    try:
        stack = Stack(mux=importlib.import_module("execrelay.stream.mux"),
                      engine=importlib.import_module("execrelay.stream.engine"),
                      hot=importlib.import_module("execrelay.stream.hot"),
                      wire=importlib.import_module("execrelay.wire"))
    finally:
        _accel.FORCE_PURE = old
        _accel.ACTIVE.clear()
        _accel.ACTIVE.update(active)
        for k in [k for k in sys.modules if k.startswith(_PREFIXES) and k != _SHARED]:
            del sys.modules[k]
        sys.modules.update(saved)
        for a, v in attrs.items():
            setattr(execrelay, a, v)
    return stack
