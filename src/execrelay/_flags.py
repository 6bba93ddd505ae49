"""Boolean environment flags (``EXECRELAY_PURE``, ``EXECRELAY_REQUIRE_EXT``, ...), parsed one way.

A typo must not silently flip a build: ``EXECRELAY_PURE=false`` used to mean "pure" because any
non-empty value other than ``0`` did.  Only the spellings below are accepted; anything else is
an error naming the variable.  ``setup.py`` loads this file by path (no imports beyond ``os``).
"""
from __future__ import annotations

import os

TRUE = frozenset(("1", "true", "yes", "on"))
FALSE = frozenset(("", "0", "false", "no", "off"))


def parse_flag(name: str, value: str | None) -> bool:
    """``value`` of the variable ``name`` as a bool; unset or empty is False."""
    text = (value or "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{name}={value!r}: expected one of 1/true/yes/on or 0/false/no/off/empty")


def env_flag(name: str) -> bool:
    """The environment variable ``name`` parsed by :func:`parse_flag`."""
    return parse_flag(name, os.environ.get(name))
