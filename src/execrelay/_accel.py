"""Choose between a compiled extension module and its pure-Python twin.

Every module compiled from ``ext/`` has a pure twin with the same API and behaviour (for the
stream windows, the very same source file, compiled or not).  The compiled one is used when it
imports.  Two environment flags, read once at import time (``execrelay._flags`` spellings):

- ``EXECRELAY_PURE`` forces the pure side of three things: these Cython twins, the websocket
  transport (``websockets`` instead of picows) and the event loop (asyncio instead of uvloop).
  CI runs the whole test suite both ways.
- ``EXECRELAY_REQUIRE_EXT`` makes a compiled module that does not import an error instead of a
  silent fallback (CI's compiled pass; ``setup.py`` also fails the build under it).

Without either, a fallback is reported once per process on stderr (a
:class:`ExtensionFallbackWarning`), with the build's reason when ``setup.py`` recorded one in
``execrelay/_build_fallback.txt``: pip hides a successful build's output, so this is where the
user learns that the install has no compiled hot path.
"""
from __future__ import annotations

import importlib
import pathlib
import warnings
from types import ModuleType

from ._flags import env_flag

#: True when ``EXECRELAY_PURE`` forces the pure side everywhere (twins, transport, loop).
FORCE_PURE: bool = env_flag("EXECRELAY_PURE")
#: True when a compiled module that does not import must raise instead of falling back.
REQUIRE_EXT: bool = env_flag("EXECRELAY_REQUIRE_EXT")

#: What ``EXECRELAY_PURE`` switches, for ``execrelay info``, the README and the benchmarks.
PURE_SWITCHES: tuple[str, ...] = (
    "Cython twins -> pure-Python twins",
    "picows -> websockets (websocket transport)",
    "uvloop -> asyncio (event loop)",
)

#: Which implementation each accelerated component uses: name -> "cython" | "pure".
ACTIVE: dict[str, str] = {}
#: Components whose compiled module failed to import although it was not forced pure:
#: name -> why.
FALLBACKS: dict[str, str] = {}

_MARKER = pathlib.Path(__file__).with_name("_build_fallback.txt")


class ExtensionFallbackWarning(RuntimeWarning):
    """A compiled module is missing and its pure twin runs instead (correct, only slower)."""


class MissingExtensionError(ImportError):
    """``EXECRELAY_REQUIRE_EXT`` is set and a compiled module does not import."""


def build_fallbacks() -> dict[str, str]:
    """What ``setup.py`` recorded at install time: compiled module -> why it was not built."""
    try:
        text = _MARKER.read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        module, _, why = line.partition(": ")
        if module:
            out[module] = why
    return out


def select(component: str, compiled: str, pure: str) -> ModuleType:
    """Import and return the compiled module ``compiled`` or, failing that, ``pure``.

    ``component`` is the short name reported by :func:`execrelay.accelerated`.
    """
    if not FORCE_PURE:
        try:
            module = importlib.import_module(compiled)
        # ValueError: Cython's "size changed" check of a cimported type (another picows release)
        except (ImportError, ValueError) as exc:
            why = build_fallbacks().get(compiled) or f"{type(exc).__name__}: {exc}"
            if REQUIRE_EXT:
                raise MissingExtensionError(
                    f"EXECRELAY_REQUIRE_EXT is set but {compiled} does not import ({why})") from exc
            _report_fallback(component, compiled, why)
        else:
            ACTIVE[component] = "cython"
            return module
    module = importlib.import_module(pure)
    ACTIVE[component] = "pure"
    return module


def _report_fallback(component: str, compiled: str, why: str) -> None:
    first = not FALLBACKS
    FALLBACKS[component] = why
    if first:   # one banner per process; `execrelay info` lists every component
        warnings.warn(
            f"execrelay: the compiled module {compiled} is not available ({why}); using the "
            "pure-Python twins (correct, slower). `execrelay info` lists every fallback; "
            "reinstall with a C compiler, or set EXECRELAY_REQUIRE_EXT=1 to make this an error.",
            ExtensionFallbackWarning, stacklevel=3)


def require_release(package: ModuleType, built_against: str) -> None:
    """Raise ImportError unless ``package`` is the release a compiled module that ``cimport``s
    it was built against (``setup.py`` compiles that release in): a C layout may differ, and
    :func:`select` then falls back to the pure twin."""
    installed = getattr(package, "__version__", None)
    if installed != built_against:
        raise ImportError(f"compiled against {package.__name__} {built_against or '(unknown)'}, "
                          f"but {package.__name__} {installed or '?'} is installed")


def load_both(compiled: str, pure: str) -> tuple[ModuleType | None, ModuleType]:
    """Return ``(compiled or None, pure)``, ignoring ``EXECRELAY_PURE``.

    Differential tests and benchmarks use this to run both twins side by side (the test
    fixture, not this function, turns a missing compiled twin into a failure under
    ``EXECRELAY_REQUIRE_EXT``).
    """
    try:
        fast: ModuleType | None = importlib.import_module(compiled)
    except ImportError:
        fast = None
    return fast, importlib.import_module(pure)
