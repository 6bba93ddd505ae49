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
