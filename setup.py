"""Build script: compiles every Cython module under ``ext/`` into the ``execrelay`` package.

``ext/<subpackage>/<name>.pyx`` becomes the extension module ``execrelay.<subpackage>.<name>``.
Each compiled module has a pure-Python twin in ``src/execrelay`` with the same API, so a
failed compile is not fatal: the install goes on with the pure twins and prints ONE warning
(the same fallback that aiohttp and the other aio-libs projects use).
``EXECRELAY_NO_EXTENSIONS=1`` skips compiling on purpose.
"""
from __future__ import annotations

import os
import pathlib
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
WARNING = (
    "\n*** execrelay: the Cython extensions could not be built ({why}).\n"
    "*** Installing the pure-Python twins instead: everything works, only slower.\n"
)


def _extensions() -> list[Extension]:
    exts = []
    for pyx in sorted((HERE / "ext").rglob("*.pyx")):
        rel = pyx.relative_to(HERE / "ext").with_suffix("")
        name = "execrelay." + ".".join(rel.parts)
        exts.append(
            Extension(
                name,
                [str(pyx.relative_to(HERE))],
                extra_compile_args=["-O3"] if sys.platform != "win32" else [],
            )
        )
    return exts


class OptionalBuildExt(build_ext):
    """build_ext that downgrades any compiler failure to a single warning."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "use the pure twins"
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        if not getattr(self, "_warned", False):
            self._warned = True
            print(WARNING.format(why=f"{type(exc).__name__}: {exc}"), file=sys.stderr)


def _ext_modules() -> list[Extension]:
    if os.environ.get("EXECRELAY_NO_EXTENSIONS") == "1":
        print(WARNING.format(why="EXECRELAY_NO_EXTENSIONS=1"), file=sys.stderr)
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print(WARNING.format(why="Cython is not installed"), file=sys.stderr)
        return []
    try:
        return cythonize(
            _extensions(),
            language_level=3,
            compiler_directives={
                "boundscheck": False,
                "wraparound": False,
                "cdivision": True,
                "initializedcheck": False,
            },
            quiet=True,
        )
    except Exception as exc:  # noqa: BLE001 - a Cython error also falls back to pure
        print(WARNING.format(why=f"Cython failed: {exc}"), file=sys.stderr)
        return []


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
