"""Remote mode: register with a registry, serve many relay streams over ONE websocket.

``execrelay exec-server --remote URL --executor-id ID`` (token in
``CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN``), or programmatically::

    config = RemoteExecutorConfig.with_bearer_token(registry_url, executor_id, token)
    executor = RemoteExecutor(config, ExecServer())
    await executor.run()          # until executor.close()

Each relay stream is one JSON-RPC connection (:class:`RelayRpcConnection`) on the shared
:class:`ExecServer`, so sessions, resume and process rules are the local ones.  Streams are
demultiplexed by the sans-I/O :class:`~execrelay.stream.Multiplexer` (legacy 0.131.0 streams
and reliable ones side by side) driven by a :class:`~execrelay.transport.relay.RelayPump`.

Unlike 0.131.0 (relay-protocol.md 4.4), registry errors are retried with capped exponential
backoff and jitter (1 s .. 30 s), never fatal (P4); a lost websocket re-registers after the
backoff and reliable streams Resume on the new one, so their sessions never notice.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from dataclasses import dataclass
from urllib.parse import quote

from ..stream import ACCEPTOR, MessageTooLarge, Multiplexer, StreamClosed
from ..transport import RELAY_KEEPALIVE, connect_websocket
from ..transport.relay import RelayPump
from .connection import RpcConnection
from .server import ExecServer

log = logging.getLogger("execrelay.executor.remote")

TOKEN_ENV = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"


class RegistryError(RuntimeError):
    """The registry refused or failed a registration (retried by the executor loop)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConfigError(ValueError):
    """Bad remote-mode configuration (missing token, empty id): fatal before any request."""


@dataclass
class RemoteExecutorConfig:
    """Where and how to register.  ``backoff_*`` bound the retry delays (seconds)."""

    registry_url: str
    executor_id: str
    bearer_token: str
    name: str = "codex-exec-server"
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    connect_timeout: float = 10.0
    request_timeout: float = 10.0
    #: websocket ping after this many idle seconds, drop after no pong for the second (P3)
    keepalive: tuple[float, float] | None = RELAY_KEEPALIVE

    def __post_init__(self) -> None:
        self.registry_url = self.registry_url.strip().rstrip("/")
        self.executor_id = self.executor_id.strip()
        self.bearer_token = self.bearer_token.strip()
        if not self.executor_id:
            raise ConfigError("executor id is required for remote exec-server registration")
        if not self.bearer_token:
            raise ConfigError(f"executor registry bearer token environment variable `{TOKEN_ENV}` is empty")

    @classmethod
    def with_bearer_token(cls, registry_url: str, executor_id: str, token: str) -> "RemoteExecutorConfig":
        """For non-CLI callers and tests (upstream's ``RemoteExecutorConfig::with_bearer_token``)."""
        return cls(registry_url, executor_id, token)

    @classmethod
    def from_env(cls, registry_url: str, executor_id: str, name: str | None = None) -> "RemoteExecutorConfig":
        token = os.environ.get(TOKEN_ENV)
        if token is None:
            raise ConfigError("executor registry authentication error: executor registry bearer token "
                              f"environment variable `{TOKEN_ENV}` is not set")
        if not token.strip():
            raise ConfigError("executor registry authentication error: executor registry bearer token "
                              f"environment variable `{TOKEN_ENV}` is empty")
        return cls(registry_url, executor_id, token, name=name or "codex-exec-server")

    @property
    def register_url(self) -> str:
        return f"{self.registry_url}/cloud/executor/{quote(self.executor_id, safe='')}/register"


async def register(config: RemoteExecutorConfig) -> tuple[str, str]:
    """POST the registration; return ``(executor_id, websocket url)`` or raise RegistryError."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=config.request_timeout)
    headers = {"Authorization": f"Bearer {config.bearer_token}"}
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(config.register_url, headers=headers, allow_redirects=False) as resp:
                body = await resp.read()
                status = resp.status
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise RegistryError(f"executor registry request failed: {exc or type(exc).__name__}") from None
    if status in (401, 403):
        raise RegistryError(f"executor registry authentication failed ({status}): {_error_text(body)}", status)
    if not 200 <= status < 300:
        raise RegistryError(f"executor registry request failed ({status}): {_error_text(body)}", status)
    try:
        import orjson

        data = orjson.loads(body)
        executor_id, url = data["executor_id"], data["url"]
        if not isinstance(executor_id, str) or not isinstance(url, str):
            raise TypeError("executor_id and url must be strings")
    except Exception:  # noqa: BLE001 - any malformed body is the same failure
        raise RegistryError("executor registry request failed: error decoding response body", status) from None
    return executor_id, url


def _error_text(body: bytes) -> str:
    try:
        import orjson

        err = orjson.loads(body)["error"]
        parts = [str(err[k]) for k in ("code", "message") if isinstance(err, dict) and err.get(k)]
        if parts:
            return ": ".join(parts)
    except Exception:  # noqa: BLE001
        pass
    text = body.decode("utf-8", "replace")[:4096]
    return text or "empty or malformed error body"


class RelayRpcConnection(RpcConnection):
    """A JSON-RPC connection carried by one relay stream.

    In relay mode 0.131.0 drops a payload that is not JSON instead of answering with an id -1
    error (relay-protocol.md 7.3, obs K); everything else is the local connection's behaviour.
    """

    __slots__ = ()

    def _send_error(self, rid: object, code: int, message: str) -> None:
        if rid == -1:
            log.debug("dropping malformed relay data message frame: %s", message)
            return
        super()._send_error(rid, code, message)


class _StreamPort:
    """What a stream's connection writes to: ``port(data)`` queues a reply in the multiplexer
    (and makes sure a flush is scheduled); ``port.closed()`` reports that the session ended
    itself.  One small slotted object per stream, because an idle executor holds thousands."""

    __slots__ = ("executor", "sid")

    def __init__(self, executor: "RemoteExecutor", sid: str) -> None:
        self.executor = executor
        self.sid = sid

    def __call__(self, data: bytes) -> None:
        executor = self.executor
        try:
            executor.mux.send(self.sid, data)
        except StreamClosed:
            return
        except MessageTooLarge as exc:
            executor._too_large(self.sid, data, exc)
        pump = executor._pump
        if pump is not None and not pump.flush_scheduled:
            pump.kick()

    def closed(self) -> None:
        self.executor._conn_closed(self.sid)


class RemoteExecutor:
    """Registration loop + one relay websocket + a session per stream."""

    def __init__(self, config: RemoteExecutorConfig, server: ExecServer) -> None:
        self.config = config
        self.server = server
        self.mux = Multiplexer(ACCEPTOR, on_message=self._on_message, on_open=self._on_open,
                               on_close=self._on_close)
        self.conns: dict[str, RelayRpcConnection] = {}
        self._pump: RelayPump | None = None
        self._closing = asyncio.Event()
        #: successful registrations so far (a re-registration follows every websocket loss)
        self.registrations = 0
        self.connected = asyncio.Event()

    # ------------------------------------------------------------------ streams
    def _on_open(self, sid: str, mode: str) -> None:
        port = _StreamPort(self, sid)
        self.conns[sid] = RelayRpcConnection(self.server, port, port.closed)

    def _on_message(self, sid: str, payload: bytes) -> None:
        conn = self.conns.get(sid)
        if conn is not None:
            conn.feed(payload)

    def _on_close(self, sid: str, reason: str | None, by_peer: bool) -> None:
        conn = self.conns.pop(sid, None)
        if conn is not None:
            conn.close(reason or "stream closed")

    def _conn_closed(self, sid: str) -> None:
        """The session ended the connection itself (e.g. an unexpected notification)."""
        if self.conns.pop(sid, None) is not None:
            # 0.131.0 goes silent here; a Reset tells the harness at once instead of leaving
            # its calls hanging (a deliberate, documented difference).
            self.mux.reset(sid, "session closed")
            self._kick()

    def _too_large(self, sid: str, data: bytes, exc: MessageTooLarge) -> None:
        """A reply too big for this stream (a 16 MiB legacy frame, or 64 MiB): the request
        gets a clear JSON-RPC error instead and the session goes on.  Only a message that
        is not a response (nobody to answer) costs the stream."""
        import orjson

        try:
            rid = orjson.loads(data).get("id")
        except (orjson.JSONDecodeError, AttributeError):
            rid = None
        if rid is None:
            log.warning("stream %s: %s; resetting the stream", sid, exc)
            self.mux.reset(sid, "message_too_large")
            return
        error = {"error": {"code": -32603, "message": f"response too large for this relay stream: {exc}"},
                 "id": rid}
        try:
            self.mux.send(sid, orjson.dumps(error))
        except StreamClosed:
            pass

    def _kick(self) -> None:
        if self._pump is not None:
            self._pump.kick()

    # ------------------------------------------------------------------ main loop
    async def run(self) -> int:
        """Register, connect, serve; repeat after any loss until :meth:`close`."""
        cfg = self.config
        self._pump = RelayPump(self.mux)
        backoff = cfg.backoff_initial
        try:
            while not self._closing.is_set():
                try:
                    executor_id, url = await register(cfg)
                except RegistryError as exc:
                    print(f"warning: {exc}; retrying", file=sys.stderr, flush=True)
                    backoff = await self._sleep(backoff)
                    continue
                self.registrations += 1
                print(f"codex exec-server remote executor registered with executor_id {executor_id}",
                      file=sys.stderr, flush=True)
                try:
                    link = await connect_websocket(url, self._pump.handler_for, timeout=cfg.connect_timeout,
                                                   keepalive=cfg.keepalive)
                except Exception as exc:  # noqa: BLE001 - refused, 4xx/5xx, bad scheme: retry
                    print(f"warning: failed to connect remote exec-server websocket: {exc}",
                          file=sys.stderr, flush=True)
                    backoff = await self._sleep(backoff)
                    continue
                self.connected.set()
                backoff = cfg.backoff_initial
                closing = asyncio.ensure_future(self._closing.wait())
                closed = asyncio.ensure_future(link.wait_closed())
                await asyncio.wait([closing, closed], return_when=asyncio.FIRST_COMPLETED)
                closing.cancel()
                if not closed.done():
                    link.close()
                    await asyncio.wait([closed], timeout=2.0)
                closed.cancel()
                self._pump.detach(link)
                self.connected.clear()
                if not self._closing.is_set():
                    backoff = await self._sleep(backoff)
        finally:
            self._pump.close()
            for sid in list(self.conns):
                self._on_close(sid, "executor shutting down", False)
        return 0

    async def _sleep(self, backoff: float) -> float:
        """Sleep ``backoff`` +- 20% jitter (or until close); return the next backoff."""
        delay = backoff * random.uniform(0.8, 1.2)
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
        except asyncio.TimeoutError:
            pass
        return min(backoff * 2, self.config.backoff_max)

    def close(self) -> None:
        self._closing.set()


async def run_remote_executor(server: ExecServer, remote_url: str, executor_id: str,
                              name: str | None = None) -> int:
    """Entry point of ``execrelay exec-server --remote``; returns the process exit code."""
    try:
        config = RemoteExecutorConfig.from_env(remote_url, executor_id, name)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    executor = RemoteExecutor(config, server)
    try:
        return await executor.run()
    finally:
        executor.close()
