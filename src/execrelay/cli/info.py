"""``execrelay info``: which implementation (Cython or pure) each hot-path component uses."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="show versions and whether the Cython hot path is active")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import execrelay
    from execrelay import _accel

    print(f"execrelay {execrelay.__version__}")
    print(f"EXECRELAY_PURE forced: {_accel.FORCE_PURE}")
    for component, impl in sorted(execrelay.accelerated().items()):
        print(f"{component:12s} {impl}")
    return 0
