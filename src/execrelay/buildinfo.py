"""The build-info gauge that every component's ``/metrics`` carries.

One sample, ``execrelay_build_info{version="...",compiled="true|false"} 1`` (the Prometheus
convention for build facts: the value is always 1, the facts are labels), so an operator can
tell from a scrape which release runs and whether it runs the compiled hot path or fell back to
the pure twins (docs/deployment.md §Version and build info).  The version is
``execrelay.__version__``, the one literal the packaging also reads.
"""
from __future__ import annotations

from . import __version__, _accel

METRIC = "execrelay_build_info"


def compiled() -> bool:
    """True unless this process runs (or was installed to run) a pure twin.

    Cheap and import-free, so a scrape never loads a component the process does not use: pure
    when ``EXECRELAY_PURE`` is set, when the install recorded a fallback
    (``_build_fallback.txt``), or when a twin this process already selected is the pure one.
    """
    if _accel.FORCE_PURE or _accel.FALLBACKS or _accel.build_fallbacks():
        return False
    return all(impl == "cython" for impl in _accel.ACTIVE.values())


def metric_lines() -> list[str]:
    """The ``# HELP``/``# TYPE`` header and the one sample, as Prometheus text lines."""
    flag = "true" if compiled() else "false"
    return [
        f"# HELP {METRIC} The execrelay release and whether its Cython hot path is compiled; always 1.",
        f"# TYPE {METRIC} gauge",
        f'{METRIC}{{version="{__version__}",compiled="{flag}"}} 1',
    ]
