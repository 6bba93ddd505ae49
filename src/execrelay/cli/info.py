"""``execrelay info``: which implementation (Cython or pure) each hot-path component uses, what
``EXECRELAY_PURE`` switches, and why a component fell back to pure when it was not asked to."""
from __future__ import annotations

import argparse

from ._ops import add_log_args, setup_logging


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="show versions and whether the Cython hot path is active")
    add_log_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    import execrelay
    from execrelay import _accel

    active = execrelay.accelerated()
    print(f"execrelay {execrelay.__version__}")
    print(f"EXECRELAY_PURE: {'set' if _accel.FORCE_PURE else 'not set'} (it switches: "
          f"{'; '.join(_accel.PURE_SWITCHES)})")
    print(f"EXECRELAY_REQUIRE_EXT: {'set' if _accel.REQUIRE_EXT else 'not set'}")
    for component, impl in sorted(active.items()):
        why = _accel.FALLBACKS.get(component)
        print(f"{component:15s} {impl}" + (f"  (FALLBACK: {why})" if why else ""))
    if _accel.FALLBACKS:
        print("*** some compiled modules are missing: the pure twins run instead (correct, "
              "slower); reinstall with a C compiler (EXECRELAY_REQUIRE_EXT=1 makes it an error)")
    return 0
