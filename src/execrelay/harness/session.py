"""One JSON-RPC session with an executor, whatever carries it (a relay stream or a websocket).

The carrier gives the session a ``send(bytes)`` callable and calls :meth:`ExecSession.deliver`
for every message that arrives and :meth:`ExecSession.lost` when the carrier ends.  Requests are
pipelined: many may be in flight, answers are matched by id.

The session speaks both server dialects (docs/dialects.md): :meth:`ExecSession.initialize`
learns which one from the answer (``environmentInfo`` present: 0.171) and every typed call
then sends paths the way that server takes them -- native paths to 0.131, ``file://`` URIs to
0.171 -- while the caller passes ``str``/``os.PathLike`` and gets native ``str`` paths back
(``harness/paths.py``).  The 0.171-only calls raise :class:`UnsupportedMethod` on a 0.131
server without a round trip.
"""
from __future__ import annotations

import asyncio
import base64
import os
import uuid
from typing import Any, AsyncIterator, Callable, Sequence

import orjson

from .errors import ConnectionLost, RpcCallError, UnsupportedMethod
from .paths import DIALECT_171, PathArg, dialect_of, native_environment_info, native_path, wire_path

_END = object()
#: Default bounds of a session's unread notifications (count, payload bytes).  Past either,
#: the session ends with a reason saying so: a reader that falls this far behind would
#: otherwise grow the harness without limit, and dropping notifications silently would
#: corrupt process output.
MAX_NOTIFICATIONS = 65536
MAX_NOTIFICATION_BYTES = 64 * 1024 * 1024


class ExecSession:
    """Typed client for every exec-server method of 0.131.0 and 0.171.0, plus notifications."""

    def __init__(self, send: Callable[[bytes], None], close: Callable[[str], None],
                 label: str = "", *, max_notifications: int = MAX_NOTIFICATIONS,
                 max_notification_bytes: int = MAX_NOTIFICATION_BYTES, trace: bool = True) -> None:
        self._send = send
        #: W3C trace id of this session's requests (None: no ``trace`` member is sent); each
        #: request carries ``trace.traceparent`` = 00-<trace_id>-<new span id>-01, which the
        #: executor logs with the request (docs/operations.md §Trace context)
        self.trace_id: str | None = os.urandom(16).hex() if trace else None
        self._close = close
        self.label = label
        self.session_id: str | None = None
        #: ``"0.131"`` or ``"0.171"`` once initialized (None before)
        self.dialect: str | None = None
        #: a 0.171 server's ``environmentInfo`` with native paths (None for 0.131)
        self.environment_info: dict | None = None
        self._next_id = 1
        self._pending: dict[int, asyncio.Future] = {}
        #: unread notifications: (method, params, payload size), then _END once the session ended
        self._notes: asyncio.Queue = asyncio.Queue()
        self._note_bytes = 0
        self._max_notes = max_notifications
        self._max_note_bytes = max_notification_bytes
        self.closed_reason: str | None = None
        self.closed = False

    # ------------------------------------------------------------------ carrier side
    def deliver(self, payload: bytes | str) -> None:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return  # a malformed answer cannot be matched to a call; the call times out
        if not isinstance(msg, dict):
            return
        if "method" in msg and "id" not in msg:
            if self.closed:
                return
            n = len(payload)
            if (self._notes.qsize() >= self._max_notes
                    or self._note_bytes + n > self._max_note_bytes):
                reason = (f"notification queue overflow: {self._notes.qsize()} unread "
                          f"notifications ({self._note_bytes} bytes); the reader fell behind")
                self.lost(reason)
                self._close(reason)
                return
            self._note_bytes += n
            self._notes.put_nowait((msg["method"], msg.get("params"), n))
            return
        fut = self._pending.pop(msg.get("id"), None)  # type: ignore[arg-type]
        if fut is None or fut.done():
            return
        if "error" in msg:
            err = msg["error"] or {}
            fut.set_exception(RpcCallError(err.get("code", 0), err.get("message", ""), err.get("data")))
        else:
            fut.set_result(msg.get("result"))

    def lost(self, reason: str | None) -> None:
        """The carrier is gone: every pending call fails, the notification stream ends."""
        if self.closed:
            return
        self.closed = True
        self.closed_reason = reason
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionLost(reason))
        self._notes.put_nowait(_END)

    # ------------------------------------------------------------------ generic calls
    async def call(self, method: str, params: Any = None, timeout: float | None = 30.0, *,
                   traceparent: str | None = None) -> Any:
        """Send a request and wait for its result (RpcCallError / ConnectionLost otherwise).

        ``traceparent``: the caller's W3C trace context for this request (default: the
        session's trace id with a fresh span id, see :attr:`trace_id`)."""
        if self.closed:
            raise ConnectionLost(self.closed_reason)
        rid = self._next_id
        self._next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        msg: dict[str, Any] = {"id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        if traceparent is None and self.trace_id is not None:
            traceparent = f"00-{self.trace_id}-{os.urandom(8).hex()}-01"
        if traceparent is not None:
            msg["trace"] = {"traceparent": traceparent}
        self._send(orjson.dumps(msg))
        try:
            return await asyncio.wait_for(fut, timeout) if timeout else await fut
        finally:
            self._pending.pop(rid, None)

    def notify(self, method: str, params: Any = None) -> None:
        msg: dict[str, Any] = {"method": method}
        if params is not None:
            msg["params"] = params
        self._send(orjson.dumps(msg))

    async def notifications(self) -> AsyncIterator[tuple[str, Any]]:
        """``(method, params)`` of every server notification until the session ends."""
        while True:
            item = await self._notes.get()
            if item is _END:
                self._notes.put_nowait(_END)  # later iterators end too
                return
            self._note_bytes -= item[2]
            yield item[0], item[1]

    async def next_notification(self, timeout: float = 10.0) -> tuple[str, Any]:
        item = await asyncio.wait_for(self._notes.get(), timeout)
        if item is _END:
            self._notes.put_nowait(_END)
            raise ConnectionLost(self.closed_reason)
        self._note_bytes -= item[2]
        return item[0], item[1]

    async def initialize(self, client_name: str = "execrelay-harness",
                         resume_session_id: str | None = None, timeout: float = 10.0) -> str:
        """The handshake: ``initialize`` then the ``initialized`` notification.  Sets
        :attr:`dialect` and :attr:`environment_info` from the answer."""
        result = await self.call("initialize", {"clientName": client_name,
                                                "resumeSessionId": resume_session_id}, timeout)
        self.session_id = result["sessionId"]
        self.dialect = dialect_of(result)
        if self.dialect == DIALECT_171:
            self.environment_info = native_environment_info(result["environmentInfo"])
        self.notify("initialized", {})
        return self.session_id

    def close(self, reason: str = "harness closed the session") -> None:
        if not self.closed:
            self._close(reason)
            self.lost(reason)

    # ------------------------------------------------------------------ dialect helpers
    def _path(self, path: PathArg) -> str:
        return wire_path(path, self.dialect)

    def _require_171(self, method: str) -> None:
        if self.dialect != DIALECT_171:
            raise UnsupportedMethod(method, self.dialect)

    # ------------------------------------------------------------------ typed methods
    async def process_start(self, process_id: str, argv: list[str], cwd: PathArg,
                            env: dict[str, str] | None = None, tty: bool = False,
                            pipe_stdin: bool = False, arg0: str | None = None,
                            env_policy: dict | None = None) -> dict:
        return await self.call("process/start", {
            "processId": process_id, "argv": argv, "cwd": self._path(cwd), "env": env or {},
            "tty": tty, "pipeStdin": pipe_stdin, "arg0": arg0, "envPolicy": env_policy})

    async def process_read(self, process_id: str, after_seq: int | None = None,
                           max_bytes: int | None = None, wait_ms: int | None = None) -> dict:
        timeout = 30.0 + (wait_ms or 0) / 1000.0
        return await self.call("process/read", {"processId": process_id, "afterSeq": after_seq,
                                                "maxBytes": max_bytes, "waitMs": wait_ms}, timeout)

    async def process_write(self, process_id: str, data: bytes, write_id: str | None = None) -> dict:
        """Write to a process's stdin.  0.171 requires a ``writeId`` (an idempotency key: a
        repeated id is not delivered twice), so one is made (uuid4) when none is given; a 0.131
        server gets one only when the caller passes it."""
        params: dict[str, Any] = {"processId": process_id, "chunk": base64.b64encode(data).decode()}
        if write_id is None and self.dialect == DIALECT_171:
            write_id = str(uuid.uuid4())
        if write_id is not None:
            params["writeId"] = write_id
        return await self.call("process/write", params)

    async def process_terminate(self, process_id: str) -> dict:
        return await self.call("process/terminate", {"processId": process_id})

    async def fs_read_file(self, path: PathArg) -> bytes:
        result = await self.call("fs/readFile", {"path": self._path(path), "sandbox": None})
        return base64.b64decode(result["dataBase64"])

    async def fs_write_file(self, path: PathArg, data: bytes) -> None:
        await self.call("fs/writeFile", {"path": self._path(path),
                                         "dataBase64": base64.b64encode(data).decode(), "sandbox": None})

    async def fs_create_directory(self, path: PathArg, recursive: bool = True) -> None:
        await self.call("fs/createDirectory", {"path": self._path(path), "recursive": recursive,
                                               "sandbox": None})

    async def fs_get_metadata(self, path: PathArg) -> dict:
        return await self.call("fs/getMetadata", {"path": self._path(path), "sandbox": None})

    async def fs_read_directory(self, path: PathArg) -> list[dict]:
        result = await self.call("fs/readDirectory", {"path": self._path(path), "sandbox": None})
        return result["entries"]

    async def fs_remove(self, path: PathArg, recursive: bool = True, force: bool = True) -> None:
        await self.call("fs/remove", {"path": self._path(path), "recursive": recursive, "force": force,
                                      "sandbox": None})

    async def fs_copy(self, source: PathArg, destination: PathArg, recursive: bool = False) -> None:
        await self.call("fs/copy", {"sourcePath": self._path(source),
                                    "destinationPath": self._path(destination),
                                    "recursive": recursive, "sandbox": None})

    # ------------------------------------------------------------------ 0.171 methods
    async def refresh_environment_info(self) -> dict:
        """``environment/info`` (the same object as ``initialize``'s, with native paths): stored
        in :attr:`environment_info` and returned.  (Named apart from the attribute it refreshes.)"""
        self._require_171("environment/info")
        self.environment_info = native_environment_info(await self.call("environment/info"))
        return self.environment_info

    async def environment_status(self) -> str:
        """``environment/status``: ``"ready"`` once the session is initialized."""
        self._require_171("environment/status")
        return (await self.call("environment/status"))["status"]

    async def process_signal(self, process_id: str, signal: str = "interrupt") -> None:
        """``process/signal`` (0.171 knows only ``"interrupt"``: SIGINT)."""
        self._require_171("process/signal")
        await self.call("process/signal", {"processId": process_id, "signal": signal})

    async def fs_canonicalize(self, path: PathArg) -> str:
        """``fs/canonicalize``: the path with links resolved (native)."""
        self._require_171("fs/canonicalize")
        result = await self.call("fs/canonicalize", {"path": self._path(path)})
        return native_path(result["path"], self.dialect)

    async def fs_walk(self, path: PathArg, *, max_depth: int, max_directories: int,
                      max_entries: int, follow_directory_symlinks: bool = False) -> dict:
        """``fs/walk``: ``{"entries": [{"path", "kind"}], "errors": [{"path", "message"}],
        "truncated"}``, breadth first, the root not listed; every ``path`` native."""
        self._require_171("fs/walk")
        result = await self.call("fs/walk", {"path": self._path(path), "options": {
            "maxDepth": max_depth, "maxDirectories": max_directories, "maxEntries": max_entries,
            "followDirectorySymlinks": follow_directory_symlinks}})
        for key in ("entries", "errors"):
            result[key] = [dict(e, path=native_path(e["path"], self.dialect)) if "path" in e else e
                           for e in result.get(key) or ()]
        return result

    async def fs_open(self, path: PathArg, mode: str = "read", handle_id: str | None = None) -> str:
        """``fs/open`` (``mode`` ``"read"`` or ``"replace"``: create or truncate); returns the
        handle id, a fresh uuid4 in hex unless given (0.171.0 refuses ids over 32 bytes:
        ``-32600 file handle ID must not exceed 32 bytes``, probed).  Handles belong to the
        connection."""
        self._require_171("fs/open")
        hid = uuid.uuid4().hex if handle_id is None else handle_id
        result = await self.call("fs/open", {"handleId": hid, "path": self._path(path), "mode": mode})
        return result["handleId"]

    async def fs_read_block(self, handle_id: str, offset: int, length: int) -> tuple[bytes, bool]:
        """``fs/readBlock``: ``(data, eof)``; ``length`` is 1..1048576."""
        self._require_171("fs/readBlock")
        result = await self.call("fs/readBlock", {"handleId": handle_id, "offset": offset,
                                                  "len": length})
        return base64.b64decode(result["chunk"]), bool(result["eof"])

    async def fs_write_block(self, handle_id: str, offset: int, data: bytes) -> None:
        """``fs/writeBlock``: write ``data`` (1..1048576 bytes) at ``offset`` of a replace handle."""
        self._require_171("fs/writeBlock")
        await self.call("fs/writeBlock", {"handleId": handle_id, "offset": offset,
                                          "chunk": base64.b64encode(data).decode()})

    async def fs_close(self, handle_id: str) -> None:
        """``fs/close`` (idempotent)."""
        self._require_171("fs/close")
        await self.call("fs/close", {"handleId": handle_id})

    async def fs_watch_missing(self, watch_id: int, missing: Sequence[PathArg]) -> bool:
        """``fs/watchMissing``: ask for one ``fs/missingChanged`` when any of the ``missing``
        paths appears; the answer says whether the watch is on (False when a path already
        exists or ``watch_id`` is not higher than the current one's).  One watch per connection:
        a higher ``watch_id`` replaces it."""
        self._require_171("fs/watchMissing")
        result = await self.call("fs/watchMissing", {"watchId": watch_id,
                                                     "missing": [self._path(p) for p in missing]})
        return bool(result["watching"])

    async def wait_missing_changed(self, watch_id: int | None = None, timeout: float = 10.0) -> int:
        """Wait for ``fs/missingChanged`` (of ``watch_id``, or any) and return its watch id.
        Like :meth:`run` it consumes the notifications before it; read :meth:`notifications`
        instead to see every one."""
        self._require_171("fs/missingChanged")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            method, params = await self.next_notification(max(0.01, deadline - loop.time()))
            if method == "fs/missingChanged" and isinstance(params, dict) and (
                    watch_id is None or params.get("watchId") == watch_id):
                return params["watchId"]

    async def http_request(self, method: str, url: str, request_id: str,
                           headers: list[dict] | None = None, body: bytes | None = None,
                           timeout_ms: int | None = None, stream_response: bool = False) -> dict:
        return await self.call("http/request", {
            "method": method, "url": url, "requestId": request_id, "headers": headers or [],
            "bodyBase64": base64.b64encode(body).decode() if body is not None else None,
            "timeoutMs": timeout_ms, "streamResponse": stream_response})

    async def run(self, argv: list[str], cwd: PathArg = "/", process_id: str | None = None,
                  env: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int | None, bytes, bytes]:
        """Convenience: start a process, collect its output from notifications until
        ``process/closed``; return ``(exit code, stdout, stderr)``."""
        pid = process_id or f"run-{self._next_id}"
        out: list[bytes] = []
        err: list[bytes] = []
        code: int | None = None
        await self.process_start(pid, argv, cwd, env if env is not None else {"PATH": "/usr/bin:/bin"})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            method, params = await self.next_notification(max(0.01, deadline - loop.time()))
            if not isinstance(params, dict) or params.get("processId") != pid:
                continue
            if method == "process/output":
                chunk = base64.b64decode(params.get("chunk") or "")
                (err if params.get("stream") == "stderr" else out).append(chunk)
            elif method == "process/exited":
                code = params.get("exitCode")
            elif method == "process/closed":
                return code, b"".join(out), b"".join(err)
