"""The method table: JSON-RPC method name -> handler (the one table; the Codex exec-server has
one too).

Adding a method is: write its handler (``handler(conn, params) -> result``, in the module of
its family or a new one) and add one line here.  A handler returns a JSON-able result, or a
:mod:`.results` object when the answer must wait or is pre-encoded; it raises
:class:`~execrelay.executor.errors.RpcError` for an error reply.  ``conn.session`` (after the
gate) is the caller's :class:`~execrelay.executor.session.Session`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import environment, fs, fs_171, http, process
from .session import initialize

if TYPE_CHECKING:  # pragma: no cover
    from .connection import RpcConnection

#: ``handler(connection, params)``; see the module docstring for what it may return
Handler = Callable[["RpcConnection", Any], Any]

METHODS: Mapping[str, Handler] = {
    "initialize": initialize,
    "process/start": process.process_start,
    "process/read": process.process_read,
    "process/write": process.process_write,
    "process/terminate": process.process_terminate,
    "process/signal": process.process_signal,
    "fs/readFile": fs.read_file,
    "fs/writeFile": fs.write_file,
    "fs/createDirectory": fs.create_directory,
    "fs/getMetadata": fs.get_metadata,
    "fs/readDirectory": fs.read_directory,
    "fs/remove": fs.remove,
    "fs/copy": fs.copy,
    "http/request": http.http_request,
    "environment/info": environment.environment_info,
    "environment/status": environment.environment_status,
    "environmentConfig/read": environment.environment_config_read,
    "capabilityRoots/discoverV1": environment.capability_roots_discover_v1,
    "capabilities/discoverV2": environment.capabilities_discover_v2,
    "fs/canonicalize": fs_171.canonicalize,
    "fs/walk": fs_171.walk,
    "fs/open": fs_171.open_,
    "fs/readBlock": fs_171.read_block,
    "fs/writeBlock": fs_171.write_block,
    "fs/close": fs_171.close,
    "fs/watchMissing": fs_171.watch_missing,
}

#: methods 0.131.0 does not have: ``--compat 0.131`` leaves them out of the server's table, so
#: they answer -32601 there as in 0.131.0 (docs/dialects.md §New methods)
NEW_IN_171: frozenset[str] = frozenset({
    "process/signal",
    "environment/info",
    "environment/status",
    "environmentConfig/read",
    "capabilityRoots/discoverV1",
    "capabilities/discoverV2",
    "fs/canonicalize",
    "fs/walk",
    "fs/open",
    "fs/readBlock",
    "fs/writeBlock",
    "fs/close",
    "fs/watchMissing",
})
