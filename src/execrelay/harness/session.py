"""One JSON-RPC session with an executor, whatever carries it (a relay stream or a websocket).

The carrier gives the session a ``send(bytes)`` callable and calls :meth:`ExecSession.deliver`
for every message that arrives and :meth:`ExecSession.lost` when the carrier ends.  Requests are
pipelined: many may be in flight, answers are matched by id.
"""
from __future__ import annotations

import asyncio
import base64
from typing import Any, AsyncIterator, Callable

import orjson

from .errors import ConnectionLost, RpcCallError

_END = object()
#: Default bounds of a session's unread notifications (count, payload bytes).  Past either,
#: the session ends with a reason saying so: a reader that falls this far behind would
#: otherwise grow the harness without limit, and dropping notifications silently would
#: corrupt process output.
MAX_NOTIFICATIONS = 65536
MAX_NOTIFICATION_BYTES = 64 * 1024 * 1024


class ExecSession:
    """Typed client for every exec-server method of 0.131.0, plus notifications."""

    def __init__(self, send: Callable[[bytes], None], close: Callable[[str], None],
                 label: str = "", *, max_notifications: int = MAX_NOTIFICATIONS,
                 max_notification_bytes: int = MAX_NOTIFICATION_BYTES) -> None:
        self._send = send
        self._close = close
        self.label = label
        self.session_id: str | None = None
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
    async def call(self, method: str, params: Any = None, timeout: float | None = 30.0) -> Any:
        """Send a request and wait for its result (RpcCallError / ConnectionLost otherwise)."""
        if self.closed:
            raise ConnectionLost(self.closed_reason)
        rid = self._next_id
        self._next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        msg: dict[str, Any] = {"id": rid, "method": method}
        if params is not None:
            msg["params"] = params
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
        """The handshake: ``initialize`` then the ``initialized`` notification."""
        result = await self.call("initialize", {"clientName": client_name,
                                                "resumeSessionId": resume_session_id}, timeout)
        self.session_id = result["sessionId"]
        self.notify("initialized", {})
        return self.session_id

    def close(self, reason: str = "harness closed the session") -> None:
        if not self.closed:
            self._close(reason)
            self.lost(reason)

    # ------------------------------------------------------------------ typed methods
    async def process_start(self, process_id: str, argv: list[str], cwd: str,
                            env: dict[str, str] | None = None, tty: bool = False,
                            pipe_stdin: bool = False, arg0: str | None = None,
                            env_policy: dict | None = None) -> dict:
        return await self.call("process/start", {
            "processId": process_id, "argv": argv, "cwd": cwd, "env": env or {}, "tty": tty,
            "pipeStdin": pipe_stdin, "arg0": arg0, "envPolicy": env_policy})

    async def process_read(self, process_id: str, after_seq: int | None = None,
                           max_bytes: int | None = None, wait_ms: int | None = None) -> dict:
        timeout = 30.0 + (wait_ms or 0) / 1000.0
        return await self.call("process/read", {"processId": process_id, "afterSeq": after_seq,
                                                "maxBytes": max_bytes, "waitMs": wait_ms}, timeout)

    async def process_write(self, process_id: str, data: bytes) -> dict:
        return await self.call("process/write", {"processId": process_id,
                                                 "chunk": base64.b64encode(data).decode()})

    async def process_terminate(self, process_id: str) -> dict:
        return await self.call("process/terminate", {"processId": process_id})

    async def fs_read_file(self, path: str) -> bytes:
        result = await self.call("fs/readFile", {"path": path, "sandbox": None})
        return base64.b64decode(result["dataBase64"])

    async def fs_write_file(self, path: str, data: bytes) -> None:
        await self.call("fs/writeFile", {"path": path, "dataBase64": base64.b64encode(data).decode(),
                                         "sandbox": None})

    async def fs_create_directory(self, path: str, recursive: bool = True) -> None:
        await self.call("fs/createDirectory", {"path": path, "recursive": recursive, "sandbox": None})

    async def fs_get_metadata(self, path: str) -> dict:
        return await self.call("fs/getMetadata", {"path": path, "sandbox": None})

    async def fs_read_directory(self, path: str) -> list[dict]:
        return (await self.call("fs/readDirectory", {"path": path, "sandbox": None}))["entries"]

    async def fs_remove(self, path: str, recursive: bool = True, force: bool = True) -> None:
        await self.call("fs/remove", {"path": path, "recursive": recursive, "force": force,
                                      "sandbox": None})

    async def fs_copy(self, source: str, destination: str, recursive: bool = False) -> None:
        await self.call("fs/copy", {"sourcePath": source, "destinationPath": destination,
                                    "recursive": recursive, "sandbox": None})

    async def http_request(self, method: str, url: str, request_id: str,
                           headers: list[dict] | None = None, body: bytes | None = None,
                           timeout_ms: int | None = None, stream_response: bool = False) -> dict:
        return await self.call("http/request", {
            "method": method, "url": url, "requestId": request_id, "headers": headers or [],
            "bodyBase64": base64.b64encode(body).decode() if body is not None else None,
            "timeoutMs": timeout_ms, "streamResponse": stream_response})

    async def run(self, argv: list[str], cwd: str = "/", process_id: str | None = None,
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
