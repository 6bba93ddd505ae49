"""The 0.171 methods about the executor's environment: ``environment/info``,
``environment/status``, ``environmentConfig/read``, ``capabilityRoots/discoverV1``,
``capabilities/discoverV2`` (docs/dialects.md §Environment info, §New methods).

execrelay reads no Codex configuration and discovers no plugins or skills, so the last three
answer what 0.171 answers for a home without any (empty layers, no roots' contents) after the
same param checks; their capabilities (``environmentConfigRead``, ``capabilityDiscoveryV2``)
stay false, so the 0.171 harness does not rely on them.
"""
from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from .errors import INVALID_PARAMS, RpcError
from .fileuri import to_path, to_uri
from .params import MISSING, bad_type, missing, req_str, struct
from .session import gate

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection

AT_LEAST_ONE_PATH = "at least one config or requirements path is required"
EMPTY_TOML_PATH = "TOML paths must contain at least one key segment"


def _unit(params: Any) -> None:
    """0.171 declares these methods' params as ``()``: absent, null or ``{}`` (probed)."""
    if params is not None and params != {}:
        raise bad_type(params, "unit")


def _gated(conn: "RpcConnection", family: str) -> None:
    session = conn.session
    if session is None or session.conn is not conn or not conn.initialized:
        gate(conn, family)


def environment_info(conn: "RpcConnection", params: Any) -> Any:
    _unit(params)
    _gated(conn, "environment info")
    return conn.server.envinfo.info


def environment_status(conn: "RpcConnection", params: Any) -> Any:
    _unit(params)
    _gated(conn, "environment status")
    return {"status": "ready"}


def _uri_arg(p: dict, name: str) -> str:
    """A URI param of a method only 0.171 has (so a URI in every compat mode)."""
    v = req_str(p, name)
    return to_path(v, INVALID_PARAMS)


def _toml_paths(p: dict, name: str) -> list[list[str]]:
    v = p.get(name, MISSING)
    if v is MISSING:
        raise missing(name)
    if type(v) is not list:
        raise bad_type(v, "a sequence")
    for path in v:
        if type(path) is not list:
            raise bad_type(path, "a sequence")
        for key in path:
            if type(key) is not str:
                raise bad_type(key, "a string")
    return v


def _codex_home() -> str:
    home = os.environ.get("CODEX_HOME")
    return os.path.abspath(home) if home else os.path.join(os.path.expanduser("~"), ".codex")


def environment_config_read(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "EnvironmentConfigReadParams")
    _uri_arg(p, "cwd")
    config = _toml_paths(p, "configPaths")
    requirements = _toml_paths(p, "requirementsPaths")
    _gated(conn, "environment config")
    if not config and not requirements:
        raise RpcError(INVALID_PARAMS, AT_LEAST_ONE_PATH)
    if any(not path for path in config) or any(not path for path in requirements):
        raise RpcError(INVALID_PARAMS, EMPTY_TOML_PATH)
    return {"userHomeDir": conn.server.envinfo.info["userHomeDir"], "codexHomeDir": to_uri(_codex_home()),
            "hostname": socket.gethostname(), "config": {"layers": [], "cloudInsertionIndex": 0},
            "requirements": {"layers": [], "cloudInsertionIndex": 0}}


def capability_roots_discover_v1(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "WireCapabilityRootsDiscoverParams")
    roots = p.get("roots", MISSING)
    if roots is MISSING:
        raise missing("roots")
    if type(roots) is not list:
        raise bad_type(roots, "a sequence")
    out: list[dict[str, Any]] = []
    for root in roots:
        r = struct(root, "WireCapabilityRootDiscoverRequest")
        root_id = req_str(r, "id")
        path = _uri_arg(r, "path")
        out.append({"id": root_id, "path": to_uri(path), "plugin": None, "skills": [], "namespaceManifests": [],
                    "warnings": [], "error": None})
    _gated(conn, "capability discovery")
    return {"roots": out}


def capabilities_discover_v2(conn: "RpcConnection", params: Any) -> Any:
    p = struct(params, "DiscoverV2CapabilitiesRequest")
    _uri_arg(p, "cwd")
    _gated(conn, "capability discovery")
    return {"plugins": [], "skills": [], "warnings": []}
