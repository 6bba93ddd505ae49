"""Build script: compiles the Cython modules of ``ext/`` into the ``execrelay`` package.

Two kinds of compiled module:

- ``ext/<sub>/<name>.pyx``: hand-written Cython (the codec's wire parser, ``fs`` metadata),
  compiled as ``execrelay.<sub>.<name>``; its pure twin is a separate module in ``src/``.
- ``ext/<sub>/<stem>_c.pxd`` with no ``.pyx`` beside it: the C types of a module written ONCE in
  Cython "pure Python mode", ``src/execrelay/<sub>/<stem>_py.py``.  That file is staged with the
  ``.pxd`` under ``build/pure_mode/`` as ``<stem>_c.py`` and compiled as
  ``execrelay.<sub>.<stem>_c``; uncompiled, the same file is the pure build.

A failed compile is not fatal unless ``EXECRELAY_REQUIRE_EXT=1``: the install goes on with the
pure twins.  pip hides a successful build's output, so the fallback is also recorded in the
package (``execrelay/_build_fallback.txt``, one ``module: reason`` per line); ``execrelay``
prints the banner from it at run time (see ``execrelay._accel``).  ``EXECRELAY_NO_EXTENSIONS=1``
skips compiling on purpose (also recorded).
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE / "src" / "execrelay"
STAGE = HERE / "build" / "pure_mode"
MARKER = "_build_fallback.txt"


def _load_flags():
    # the one flag parser (execrelay._flags), loaded by path: the package is not installed yet
    spec = importlib.util.spec_from_file_location("_execrelay_flags", SRC / "_flags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_flags = _load_flags()
REQUIRE = _flags.env_flag("EXECRELAY_REQUIRE_EXT")
SKIP = _flags.env_flag("EXECRELAY_NO_EXTENSIONS")
if REQUIRE and SKIP:
    sys.exit("execrelay: EXECRELAY_REQUIRE_EXT=1 and EXECRELAY_NO_EXTENSIONS=1 contradict each other")


def _short(exc: BaseException) -> str:
    """One line for the banner and the marker (a compiler error quotes its whole command)."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 160 else f"{text[:100]} ... {text[-50:]}"


def _banner(modules: list[str], why: str) -> str:
    return (f"\n*** execrelay: these Cython extensions were not built ({why}):\n"
            f"***   {', '.join(modules)}\n"
            "*** Their pure-Python twins are used instead: everything works, only slower.\n"
            "*** Set EXECRELAY_REQUIRE_EXT=1 to make this an error.\n")


def _staged(pxd: pathlib.Path, rel: pathlib.Path) -> str:
    """Copy the pure-mode source and its .pxd to build/pure_mode/execrelay/...; return the .py."""
    stem = rel.name[:-2]                       # "_window_c" -> "_window"
    source = SRC.joinpath(*rel.parts[:-1], stem + "_py.py")
    if not source.is_file():
        raise SystemExit(f"execrelay: {pxd} has no .pyx and no pure-mode source {source}")
    dest = STAGE.joinpath("execrelay", *rel.parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _copy_if_changed(source, dest.with_suffix(".py"))
    _copy_if_changed(pxd, dest.with_suffix(".pxd"))
    return str(dest.with_suffix(".py").relative_to(HERE))


def _copy_if_changed(source: pathlib.Path, dest: pathlib.Path) -> None:
    """Copy only a changed file: a fresh mtime on an unchanged one would make cythonize and
    build_ext redo their work, and a second build of the same tree (``pip install .`` then
    ``pip wheel .``, as ``.ci/run`` does) reuses the compiled modules of the first."""
    if not dest.is_file() or dest.read_bytes() != source.read_bytes():
        shutil.copyfile(source, dest)


#: modules that ``cimport`` another package's .pxd: module -> that package (it must be importable
#: at build time; pyproject.toml's [build-system] requires it)
CIMPORTS = {"execrelay.transport._picows_c": "picows", "execrelay.rendezvous._rdvfast_c": "picows"}
#: modules left out of this build (their package is missing): module -> why
UNBUILDABLE: dict[str, str] = {}


def _cimport_macros(name: str) -> list[tuple[str, str]] | None:
    """``-D`` macros naming the release of the package ``name`` cimports (the module refuses to
    import against another release: a C layout may differ), or None when it is not installed."""
    package = CIMPORTS.get(name)
    if package is None:
        return []
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        UNBUILDABLE[name] = f"{package} is not installed at build time ({exc})"
        return None
    version = str(getattr(module, "__version__", ""))
    return [(f"EXECRELAY_{package.upper()}_VERSION", '"' + version.replace('"', "") + '"')]


def _extensions() -> list[Extension]:
    exts = []
    args = ["-O3"] if sys.platform != "win32" else []
    for path in sorted((HERE / "ext").rglob("*.p[yx][xd]")):
        rel = path.relative_to(HERE / "ext").with_suffix("")
        name = "execrelay." + ".".join(rel.parts)
        if path.suffix == ".pyx":
            source = str(path.relative_to(HERE))
        elif path.with_suffix(".pyx").exists():
            continue                           # a .pxd that belongs to a hand-written .pyx
        else:
            source = _staged(path, rel)
        macros = _cimport_macros(name)
        if macros is None:
            continue
        exts.append(Extension(name, [source], extra_compile_args=args, define_macros=macros))
    return exts


ALL_MODULES = [ext.name for ext in _extensions()] + sorted(UNBUILDABLE)


class CheckedBuildExt(build_ext):
    """build_ext that either fails (``EXECRELAY_REQUIRE_EXT=1``) or records every module that
    fell back to its pure twin in the package, for the run-time banner."""

    def run(self) -> None:
        if UNBUILDABLE and REQUIRE:
            sys.exit(f"execrelay: EXECRELAY_REQUIRE_EXT=1 but {UNBUILDABLE}")
        self._failed: dict[str, str] = dict(UNBUILDABLE)
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any failure means "use the pure twins"
            if REQUIRE:
                raise
            for ext in self.extensions:
                self._failed.setdefault(ext.name, _short(exc))
        self._record(self._failed)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            if REQUIRE:
                raise
            self._failed[ext.name] = _short(exc)

    def _record(self, failed: dict[str, str]) -> None:
        targets = [pathlib.Path(self.build_lib) / "execrelay"]
        if self.inplace or getattr(self, "editable_mode", False):
            targets.append(SRC)
        for target in targets:
            _write_marker(target, failed)
        if failed:
            print(_banner(sorted(failed), "the compiler failed"), file=sys.stderr)


def _write_marker(package_dir: pathlib.Path, failed: dict[str, str]) -> None:
    marker = package_dir / MARKER
    if failed:
        package_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text("".join(f"{m}: {why}\n" for m, why in sorted(failed.items())))
    elif marker.exists():
        marker.unlink()                        # a later successful build clears an old fallback


def _ext_modules() -> list[Extension]:
    why = None
    if SKIP:
        why = "EXECRELAY_NO_EXTENSIONS=1"
    else:
        try:
            from Cython.Build import cythonize
        except ImportError:
            why = "Cython is not installed"
    if why is None:
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
                include_path=[str(STAGE)],   # where the staged .pxd files are found
                quiet=True,
            )
        except Exception as exc:  # noqa: BLE001 - a Cython error also falls back to pure
            if REQUIRE:
                raise
            why = f"Cython failed: {exc}"
    if REQUIRE:
        sys.exit(f"execrelay: EXECRELAY_REQUIRE_EXT=1 but the extensions cannot be built ({why})")
    # nothing to compile: build_ext never runs, so the marker is written here, for the source
    # tree (editable installs) and for build_py to ship (regular installs)
    _write_marker(SRC, dict.fromkeys(ALL_MODULES, why))
    print(_banner(ALL_MODULES, why), file=sys.stderr)
    return []


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": CheckedBuildExt})
