"""``environmentInfo`` as codex exec-server 0.171.0 reports it (docs/dialects.md §Environment info).

0.171 adds ``environmentInfo`` to the ``initialize`` result and answers ``environment/info``
with the same object; the 0.171 harness reads ``capabilities`` to decide which newer requests
it may send, so a capability is advertised true only when the caller says it is implemented.
Everything here is fixed for the life of a server, so :class:`EnvInfo` computes the object once
and every ``initialize`` reuses it (the reply stays as cheap as 0.131's).
"""
from __future__ import annotations

import hashlib
import os
import pwd
import sys
import tempfile
from dataclasses import dataclass, field
from typing import AbstractSet, Any

from .errors import RpcError, INVALID_REQUEST
from .fileuri import to_uri

#: every capability 0.171.0 reports, in its wire order (observed)
CAPABILITIES: tuple[str, ...] = (
    "networkProxyLaunch",
    "networkProxyReviewDomains",
    "networkProxyTransparentTcp",
    "credentialMasking",
    "credentialMaskingCustomProviders",
    "capabilityDiscoverySandbox",
    "fsWatchMissing",
    "capabilityDiscoveryV2",
    "environmentConfigRead",
    "httpHeaderEnvVars",
    "sandboxedFileStreaming",
    "fileWriteStreaming",
    "shellSnapshotV2",
    "windowsMxc",
    "linuxRootWritePreservesDevices",
    "linuxApprovedRootWritePreservesRestrictions",
)

#: what execrelay implements (docs/dialects.md §Capabilities): the missing-path watch
#: (fs_watch.py, served by fs_171.py) and nothing else of the list
IMPLEMENTED: frozenset[str] = frozenset({"fsWatchMissing"})

EXECUTOR_VERSION = "0.171.0"
STATUS_READY: dict[str, str] = {"status": "ready"}

#: Python's platform names -> Rust's ``std::env::consts::OS``
_PLATFORMS = {"darwin": "macos", "win32": "windows"}
_SHELLS = ("zsh", "bash", "sh", "fish", "pwsh", "powershell", "cmd")


#: the exact refusals 0.171 sends before ``initialize`` / before the ``initialized`` notification
NOT_INITIALIZED_INFO = "client must call initialize before using environment info methods"
NOT_INITIALIZED_STATUS = "client must call initialize before using environment status methods"
NOT_INITIALIZED_DISCOVERY = "client must call initialize before using capability discovery methods"
NO_INITIALIZED_NOTIFICATION_STATUS = "client must send initialized before using environment status methods"


def detect_shell() -> dict[str, str]:
    """The user's login shell from the password database, then ``$SHELL``, then ``/bin/sh``.

    0.171 reports ``{name, path}``; the name is the shell family (``bash`` for ``/bin/bash``).
    """
    candidates = []
    try:
        candidates.append(pwd.getpwuid(os.getuid()).pw_shell)
    except KeyError:
        pass
    candidates.append(os.environ.get("SHELL", ""))
    for path in candidates:
        if path and os.access(path, os.X_OK):
            name = os.path.basename(path)
            for family in _SHELLS:
                if name == family or name.startswith(family + "."):
                    return {"name": family, "path": path}
    return {"name": "sh", "path": "/bin/sh"}


def _dir_uri(path: str | None) -> str | None:
    if not path:
        return None
    return to_uri(os.path.abspath(path))


def _cwd() -> str | None:
    """The server's cwd, or None when it was deleted (0.171 then reports ``cwd: null``)."""
    try:
        return os.getcwd()
    except OSError:
        return None


def temporary_directories(env: dict[str, str] | None = None) -> list[str]:
    """``$TMPDIR`` as a URI when set (made absolute against the cwd), else nothing: 0.171's rule."""
    value = (os.environ if env is None else env).get("TMPDIR")
    return [to_uri(os.path.abspath(value))] if value else []


def capabilities(implemented: AbstractSet[str]) -> dict[str, bool]:
    """The 16-entry map in 0.171's order; true only for what ``implemented`` names."""
    unknown = set(implemented) - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities: {sorted(unknown)}")
    return {name: name in implemented for name in CAPABILITIES}


@dataclass(frozen=True)
class EnvInfo:
    """One server's environment description, built once.

    ``provider_id`` identifies the executor installation to the harness; 0.171 sends a
    ``sha256:`` digest whose input is not documented, so ours digests the environment id.
    """

    implemented: AbstractSet[str] = IMPLEMENTED
    environment_id: str = ""
    executor_version: str = EXECUTOR_VERSION
    prepend_path_dirs: tuple[str, ...] = ()
    info: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "info", self._build())

    def _build(self) -> dict[str, Any]:
        digest = hashlib.sha256(f"execrelay:{self.environment_id}".encode()).hexdigest()
        info: dict[str, Any] = {
            "shell": detect_shell(),
            "executorVersion": self.executor_version,
            "providerId": f"sha256:{digest}",
            "cwd": _dir_uri(_cwd()),
            "userHomeDir": _dir_uri(os.path.expanduser("~")),
            "platformOs": _PLATFORMS.get(sys.platform, sys.platform),
            "prependPathDirs": [to_uri(os.path.abspath(p)) for p in self.prepend_path_dirs],
            "temporaryDirectories": temporary_directories(),
            "tempDir": _dir_uri(tempfile.gettempdir()),
            "capabilities": capabilities(self.implemented),
        }
        return info

    def initialize_result(self, session_id: str) -> dict[str, Any]:
        """``initialize``'s result: the session id, then the cached object (not copied)."""
        return {"sessionId": session_id, "environmentInfo": self.info}

    def environment_info(self, initialized: bool) -> dict[str, Any]:
        """``environment/info``: the same object, after ``initialize``."""
        if not initialized:
            raise RpcError(INVALID_REQUEST, NOT_INITIALIZED_INFO)
        return self.info


def environment_status(initialized: bool, notified: bool) -> dict[str, str]:
    """``environment/status``: needs ``initialize`` and then the ``initialized`` notification."""
    if not initialized:
        raise RpcError(INVALID_REQUEST, NOT_INITIALIZED_STATUS)
    if not notified:
        raise RpcError(INVALID_REQUEST, NO_INITIALIZED_NOTIFICATION_STATUS)
    return STATUS_READY
