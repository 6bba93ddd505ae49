"""Build a child environment from ``envPolicy`` + ``env`` (docs/exec-server.md §Methods), like codex's shell policy."""
from __future__ import annotations

import fnmatch
import os
from typing import Any, Mapping

from .errors import RpcError, INVALID_PARAMS
from .params import bad_type, missing, str_list, str_map

CORE_VARS = ("HOME", "LOGNAME", "PATH", "SHELL", "USER", "USERNAME", "TMPDIR", "TEMP", "TMP", "LANG")
DEFAULT_EXCLUDES = ("*KEY*", "*SECRET*", "*TOKEN*")
#: the executor's own credentials: never inherited by a child, whatever the policy says (a
#: child could otherwise read them, and its descendants through ``/proc/<pid>/environ``)
EXECUTOR_CREDENTIALS = frozenset(("CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN", "CODEX_API_KEY",
                                  "EXECRELAY_RENDEZVOUS_SECRET"))


def _matches(name: str, patterns: list[str] | tuple[str, ...]) -> bool:
    up = name.upper()
    return any(fnmatch.fnmatchcase(up, pat.upper()) for pat in patterns)


def parse_policy(value: Any) -> dict | None:
    """Validate an ``envPolicy`` object (all five members are required when it is present)."""
    if value is None:
        return None
    if type(value) is not dict:
        raise bad_type(value, "struct ShellEnvironmentPolicy")
    inherit = value.get("inherit")
    if inherit is None and "inherit" not in value:
        raise missing("inherit")
    if inherit not in ("core", "all", "none"):
        if type(inherit) is str:
            raise RpcError(INVALID_PARAMS, f"unknown variant `{inherit}`, expected one of `core`, `all`, `none`")
        raise bad_type(inherit, "a string")
    if "ignoreDefaultExcludes" not in value:
        raise missing("ignoreDefaultExcludes")
    ide = value["ignoreDefaultExcludes"]
    if ide is not True and ide is not False:
        raise bad_type(ide, "a boolean")
    exclude = str_list(value, "exclude")
    set_ = str_map(value, "set")
    include_only = str_list(value, "includeOnly")
    return {"inherit": inherit, "ignoreDefaultExcludes": ide, "exclude": exclude,
            "set": set_, "includeOnly": include_only}


def build_env(policy: dict | None, overlay: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """With no policy, ``env`` is the child's whole environment; else policy then overlay.

    What is inherited from ``base`` never includes :data:`EXECUTOR_CREDENTIALS`; a value the
    client sets explicitly (``set``, ``env``) is its own to pass."""
    if policy is None:
        return dict(overlay)
    base = os.environ if base is None else base
    inherit = policy["inherit"]
    if inherit == "all":
        env = {k: v for k, v in base.items() if k not in EXECUTOR_CREDENTIALS}
    elif inherit == "core":
        env = {k: base[k] for k in CORE_VARS if k in base}
    else:
        env = {}
    if not policy["ignoreDefaultExcludes"]:
        env = {k: v for k, v in env.items() if not _matches(k, DEFAULT_EXCLUDES)}
    if policy["exclude"]:
        env = {k: v for k, v in env.items() if not _matches(k, policy["exclude"])}
    env.update(policy["set"])
    if policy["includeOnly"]:
        env = {k: v for k, v in env.items() if _matches(k, policy["includeOnly"])}
    env.update(overlay)
    return env
