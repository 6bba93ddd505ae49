"""A small JSON-RPC-lite client over a websocket, for probing exec-servers (ours and codex 0.131.0).

It is deliberately dumb: it sends exactly the bytes a test asks for (objects, raw text or binary
frames) and records everything the server sends, so tests can assert on exact replies,
ordering, notifications and connection drops. Responses come back in request order on
0.131.0, so ``call`` reads until the next response and keeps notifications aside.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any, Callable

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

_MISSING = object()
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_PEER_RE = re.compile(r"(websocket )(\[[0-9a-fA-F:.]+\]|[0-9.]+):\d+")
_UUID_ANY_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Closed(Exception):
    """The server dropped the connection; ``code``/``rcvd_close`` say how."""

    def __init__(self, exc: ConnectionClosed) -> None:
        super().__init__(str(exc))
        self.rcvd_close = exc.rcvd is not None
        self.code = exc.rcvd.code if exc.rcvd is not None else 1006


def normalise(value: Any) -> Any:
    """Replace run-specific values so replies from two servers compare equal.

    UUIDs -> ``<uuid>``, ``*AtMs`` timestamps -> ``<ms>`` (0 is kept: 0.131.0 reports
    createdAtMs 0), peer address in parse errors -> ``<peer>``.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k.endswith("AtMs") and isinstance(v, int) and v != 0:
                out[k] = "<ms>"
            else:
                out[k] = normalise(v)
        return out
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        value = _PEER_RE.sub(r"\1<peer>", value)
        return _UUID_ANY_RE.sub("<uuid>", value)
    return value


def key_shapes(value: Any, out: set[tuple[str, ...]] | None = None, top: bool = True) -> set[tuple[str, ...]]:
    """Every object's key sequence (in wire order) inside a message, as a set.

    Comparing these sets between two servers for the same scenario catches missing, extra or
    reordered members anywhere (values are compared by the case assertions).
    """
    if out is None:
        out = set()
    if isinstance(value, dict):
        out.add(tuple(value))
        for v in value.values():
            key_shapes(v, out, False)
    elif isinstance(value, list):
        for v in value:
            key_shapes(v, out, False)
    return out


def is_compact(raw: str | bytes) -> bool:
    """True when ``raw`` is exactly serde_json's compact rendering of itself (what 0.131.0 sends)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False) == text


class JsonWsClient:
    """One websocket connection to an exec-server speaking JSON-RPC-lite."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.notifications: list[dict[str, Any]] = []
        self.frame_types: list[str] = []  # "text"/"binary" per received message
        self.raw: list[str | bytes] = []  # every received message, as received
        self._next_id = 1000
        self.session_id: str | None = None

    @classmethod
    async def connect(cls, url: str, timeout: float = 10.0, **kw: Any) -> "JsonWsClient":
        kw.setdefault("max_size", None)
        kw.setdefault("compression", None)
        kw.setdefault("ping_interval", None)
        kw.setdefault("open_timeout", timeout)
        kw.setdefault("close_timeout", 1)
        ws = await asyncio.wait_for(connect(url, **kw), timeout)
        return cls(ws)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.ws.close(), 3)
        except Exception:
            pass

    async def __aenter__(self) -> "JsonWsClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- sending ---------------------------------------------------------------------------
    async def send(self, msg: Any, binary: bool = False) -> None:
        """Send a dict/list as compact JSON, or a str/bytes frame exactly as given."""
        if isinstance(msg, (dict, list)):
            data: str | bytes = json.dumps(msg, separators=(",", ":"))
        else:
            data = msg
        if binary and isinstance(data, str):
            data = data.encode()
        try:
            await self.ws.send(data)
        except ConnectionClosed as exc:
            raise Closed(exc) from None

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def request(self, method: str, params: Any = _MISSING, id: Any = _MISSING) -> Any:
        rid = self.new_id() if id is _MISSING else id
        msg: dict[str, Any] = {"id": rid, "method": method}
        if params is not _MISSING:
            msg["params"] = params
        await self.send(msg)
        return rid

    async def notify(self, method: str, params: Any = _MISSING) -> None:
        msg: dict[str, Any] = {"method": method}
        if params is not _MISSING:
            msg["params"] = params
        await self.send(msg)

    # -- receiving -------------------------------------------------------------------------
    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        """Next message of any kind (raises Closed / asyncio.TimeoutError)."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as exc:
            raise Closed(exc) from None
        self.frame_types.append("binary" if isinstance(raw, bytes) else "text")
        self.raw.append(raw)
        return json.loads(raw)

    async def response(self, timeout: float = 10.0) -> dict[str, Any]:
        """Next response or error; notifications met on the way go to ``self.notifications``."""
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.recv(max(0.0, deadline - time.monotonic()))
            if "method" in msg and "id" not in msg:
                self.notifications.append(msg)
                continue
            return msg

    async def call(self, method: str, params: Any = _MISSING, id: Any = _MISSING,
                   timeout: float = 10.0) -> dict[str, Any]:
        """Send a request and return the whole response object (checked to carry our id)."""
        rid = await self.request(method, params, id)
        resp = await self.response(timeout)
        assert resp.get("id") == rid and type(resp.get("id")) is type(rid), (
            f"response id mismatch: sent {rid!r}, got {resp!r}")
        return resp

    async def result(self, method: str, params: Any = _MISSING, timeout: float = 10.0) -> Any:
        resp = await self.call(method, params, timeout=timeout)
        assert "result" in resp, f"{method} failed: {resp!r}"
        return resp["result"]

    async def initialize(self, client_name: str = "t", resume: Any = _MISSING,
                         initialized: bool = True) -> str:
        params: dict[str, Any] = {"clientName": client_name}
        if resume is not _MISSING:
            params["resumeSessionId"] = resume
        res = await self.result("initialize", params)
        self.session_id = res["sessionId"]
        if initialized:
            await self.notify("initialized", {})
        return self.session_id

    async def expect_closed(self, timeout: float = 5.0) -> Closed:
        """Assert the server drops the connection without sending anything first."""
        try:
            msg = await self.recv(timeout)
        except Closed as c:
            return c
        except asyncio.TimeoutError:
            raise AssertionError(f"connection still open after {timeout}s") from None
        raise AssertionError(f"expected the connection to close, got {msg!r}")

    async def expect_silence(self, seconds: float) -> None:
        try:
            msg = await self.recv(seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"expected no message for {seconds}s, got {msg!r}")

    async def collect(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0) -> list[dict[str, Any]]:
        """Read notifications into ``self.notifications`` until ``pred(notifications)`` holds."""
        deadline = time.monotonic() + timeout
        while not pred(self.notifications):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met in {timeout}s; notifications: "
                                     f"{self.notifications[-10:]!r}")
            msg = await self.recv(remaining)
            if "method" in msg and "id" not in msg:
                self.notifications.append(msg)
            else:
                raise AssertionError(f"unexpected response while waiting for notifications: {msg!r}")
        return self.notifications

    def process_events(self, process_id: str) -> list[dict[str, Any]]:
        return [n for n in self.notifications
                if n["method"].startswith("process/") and n["params"].get("processId") == process_id]

    async def wait_process_closed(self, process_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``process/closed`` and every lower seq arrived; return events sorted by seq."""
        def done(_: list[dict[str, Any]]) -> bool:
            evs = self.process_events(process_id)
            closed = [e for e in evs if e["method"] == "process/closed"]
            if not closed:
                return False
            return {e["params"]["seq"] for e in evs} >= set(range(1, closed[0]["params"]["seq"] + 1))
        await self.collect(done, timeout)
        return sorted(self.process_events(process_id), key=lambda e: e["params"]["seq"])


__all__ = ["JsonWsClient", "Closed", "normalise", "key_shapes", "is_compact", "UUID_RE", "websockets"]
