"""Choose between a compiled extension module and its pure-Python twin.

Every module compiled from ``ext/`` has a twin written in Python with the same API and
behaviour.  The compiled one is used when it imports, unless ``EXECRELAY_PURE=1`` is set
(read once, at import time), which forces every twin to the pure side: CI runs the whole test
suite both ways.  The choice is recorded so that :func:`execrelay.accelerated` can report it.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

#: True when ``EXECRELAY_PURE=1`` forces the pure-Python twins everywhere.
FORCE_PURE: bool = os.environ.get("EXECRELAY_PURE", "") not in ("", "0")

#: Which implementation each accelerated component uses: name -> "cython" | "pure".
ACTIVE: dict[str, str] = {}


def select(component: str, compiled: str, pure: str) -> ModuleType:
    """Import and return the compiled module ``compiled`` or, failing that, ``pure``.

    ``component`` is the short name reported by :func:`execrelay.accelerated`.
    """
    if not FORCE_PURE:
        try:
            module = importlib.import_module(compiled)
        except ImportError:
            pass
        else:
            ACTIVE[component] = "cython"
            return module
    module = importlib.import_module(pure)
    ACTIVE[component] = "pure"
    return module


def load_both(compiled: str, pure: str) -> tuple[ModuleType | None, ModuleType]:
    """Return ``(compiled or None, pure)``, ignoring ``EXECRELAY_PURE``.

    Differential tests and benchmarks use this to run both twins side by side.
    """
    try:
        fast: ModuleType | None = importlib.import_module(compiled)
    except ImportError:
        fast = None
    return fast, importlib.import_module(pure)
