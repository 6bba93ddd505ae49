"""A second copy of the whole wire + stream stack, forced compiled or pure (for the stack-level
differential test; per-module twins come from the ``twin``/``twin_pair`` fixtures of
tests/conftest.py)."""
from __future__ import annotations


def fresh_stack(pure: bool):
    """Import execrelay.wire + execrelay.stream a second time, with every twin forced pure (or
    compiled), and return that copy's ``execrelay.stream.mux`` module.  The regular modules are
    put back afterwards, so both stacks live side by side in one process."""
    import importlib
    import sys

    import execrelay
    from execrelay import _accel

    prefixes = ("execrelay.wire", "execrelay.stream")
    # the exceptions stay shared: a compiled module imported twice rebinds its (process-wide C)
    # globals, so two copies of ProtocolViolation would leak into the regular stack
    shared = "execrelay.stream.errors"
    saved = {k: v for k, v in sys.modules.items() if k.startswith(prefixes) and k != shared}
    attrs = {a: getattr(execrelay, a) for a in ("wire", "stream") if hasattr(execrelay, a)}
    for k in saved:
        del sys.modules[k]
    for a in attrs:
        delattr(execrelay, a)
    old = _accel.FORCE_PURE
    active = dict(_accel.ACTIVE)   # the second import records its choice: put the real one back
    _accel.FORCE_PURE = pure
    try:
        mux = importlib.import_module("execrelay.stream.mux")
        hot = importlib.import_module("execrelay.stream.hot")
        wire = importlib.import_module("execrelay.wire")
    finally:
        _accel.FORCE_PURE = old
        _accel.ACTIVE.clear()
        _accel.ACTIVE.update(active)
        for k in [k for k in sys.modules if k.startswith(prefixes) and k != shared]:
            del sys.modules[k]
        sys.modules.update(saved)
        for a, v in attrs.items():
            setattr(execrelay, a, v)
    want = "pure" if pure else "cython"
    # the caller checked (twin_pair) that the compiled modules exist, so this cannot skip
    assert hot.IMPLEMENTATION == want and wire.IMPLEMENTATION == want
    return mux
