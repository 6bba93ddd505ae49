"""Fixtures for the stream tests: both twins of each hot-path module."""
from __future__ import annotations

import pytest

from execrelay._accel import load_both

MODULES = {
    "window": ("execrelay.stream._window_c", "execrelay.stream._window_py"),
    "sendwin": ("execrelay.stream._sendwin_c", "execrelay.stream._sendwin_py"),
    "reasm": ("execrelay.stream._reasm_c", "execrelay.stream._reasm_py"),
}


def twins(name: str):
    """(compiled module or None, pure module)."""
    return load_both(*MODULES[name])


def impls(name: str) -> list:
    """pytest params: each available implementation of a hot-path module."""
    fast, pure = twins(name)
    return [
        pytest.param(pure, id="pure"),
        pytest.param(fast, id="cython", marks=pytest.mark.skipif(
            fast is None, reason="compiled twin not built (python setup.py build_ext --inplace)")),
    ]


def both(name: str):
    fast, pure = twins(name)
    if fast is None:
        pytest.skip("compiled twin not built (python setup.py build_ext --inplace)")
    return fast, pure


def fresh_stack(pure: bool):
    """Import execrelay.wire + execrelay.stream a second time, with every twin forced pure (or
    compiled), and return that copy's ``execrelay.stream.mux`` module.  The regular modules are
    put back afterwards, so both stacks live side by side in one process."""
    import importlib
    import sys

    import execrelay
    from execrelay import _accel

    prefixes = ("execrelay.wire", "execrelay.stream")
    saved = {k: v for k, v in sys.modules.items() if k.startswith(prefixes)}
    attrs = {a: getattr(execrelay, a) for a in ("wire", "stream") if hasattr(execrelay, a)}
    for k in saved:
        del sys.modules[k]
    for a in attrs:
        delattr(execrelay, a)
    old = _accel.FORCE_PURE
    _accel.FORCE_PURE = pure
    try:
        mux = importlib.import_module("execrelay.stream.mux")
        hot = importlib.import_module("execrelay.stream.hot")
        wire = importlib.import_module("execrelay.wire")
    finally:
        _accel.FORCE_PURE = old
        for k in [k for k in sys.modules if k.startswith(prefixes)]:
            del sys.modules[k]
        sys.modules.update(saved)
        for a, v in attrs.items():
            setattr(execrelay, a, v)
    want = "pure" if pure else "cython"
    if hot.IMPLEMENTATION != want or wire.IMPLEMENTATION != want:
        pytest.skip(f"cannot build a {want} stack (compiled twins not built?)")
    return mux
