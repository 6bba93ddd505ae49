"""Remote mode: register with a registry, serve many relay streams over ONE websocket.

``execrelay exec-server --remote URL --executor-id ID`` (token in
``CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN``), or programmatically::

    config = RemoteExecutorConfig.with_bearer_token(registry_url, executor_id, token)
    executor = RemoteExecutor(config, ExecServer())
    await executor.run()          # until executor.close()

Each relay stream is one JSON-RPC connection (:class:`RelayRpcConnection`) on the shared
:class:`ExecServer`, so sessions, resume and process rules are the local ones.  Streams (legacy
0.131.0 streams and reliable ones side by side) are accepted, fed, flushed and timed by one
:class:`~execrelay.transport.endpoint.RelayEndpoint`.

Unlike 0.131.0 (docs/relay-protocol.md §Legacy streams), registry errors are retried with capped
exponential backoff and jitter (1 s .. 30 s), never fatal (docs/relay-protocol.md §Executor
behaviour); a lost websocket re-registers after the backoff and reliable streams Resume on the
new one, so their sessions never notice.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from dataclasses import dataclass
from typing import cast
from urllib.parse import quote

import orjson

from ..stream import ACCEPTOR, MessageTooLarge, Multiplexer
from ..transport import RELAY_KEEPALIVE, connect_websocket, tls
from ..transport.endpoint import RelayEndpoint, StreamPort
from .connection import OVERLOADED, QUEUE_PAUSE, RpcConnection
from .errors import INTERNAL_ERROR
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
    #: websocket ping after this many idle seconds, drop after no pong for the second
    #: (docs/relay-protocol.md §Reliable mode)
    keepalive: tuple[float, float] | None = RELAY_KEEPALIVE
    #: CA bundle that https/wss certificates must chain to (None: the system store).
    ca_file: str | None = None

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
        ctx = tls.for_url(config.register_url, config.ca_file)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            async with http.post(config.register_url, headers=headers, allow_redirects=False,
                                 ssl=ctx if ctx is not None else True) as resp:
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
    """A JSON-RPC connection carried by one relay stream (the stream's handler).

    In relay mode 0.131.0 drops a payload that is not JSON instead of answering with an id -1
    error (docs/relay-protocol.md §Legacy streams); everything else is the local connection's
    behaviour.
    """

    __slots__ = ()

    def _send_error(self, rid: object, code: int, message: str) -> None:
        if rid == -1:
            log.debug("dropping malformed relay data message frame: %s", message)
            return
        super()._send_error(rid, code, message)

    def _refuse_queued(self, message: bytes | str) -> bool:
        # A relay stream cannot pause reading (its socket carries every other stream), so the
        # local websocket's cap of QUEUE_PAUSE messages behind an async handler is kept by
        # refusing the excess: a request gets the overload error at once, anything else
        # (a notification or junk, which 0.131.0 would close on or drop) ends the session.
        try:
            msg = orjson.loads(message)
        except orjson.JSONDecodeError:
            msg = None
        rid = msg.get("id") if type(msg) is dict and type(msg.get("method")) is str else None
        if type(rid) is str or (type(rid) is int and -(1 << 63) <= rid < (1 << 63)):
            self._send_error(rid, OVERLOADED, f"too many requests queued on this relay stream "
                                              f"(limit {QUEUE_PAUSE}) behind a running request; "
                                              "retry later")
        else:
            self.close(f"more than {QUEUE_PAUSE} messages queued behind a running request")
        return True

    def _send_parse_error(self, message: bytes | str) -> None:
        # dropped like every id -1 error, without building the text (a second parse)
        log.debug("dropping malformed relay data message frame (%d bytes)", len(message))

    # on_message is RpcConnection.feed; the stream ending closes the connection.
    def on_close(self, reason: str | None = None, by_peer: bool = False) -> None:
        self.close(reason or "stream closed")

    def close(self, reason: str | None = None) -> None:
        # The port is told through the connection's own send callable rather than a stored
        # ``port.closed`` bound method (48 bytes per idle stream).
        if self.closed:
            return
        super().close(reason)
        cast(_StreamPort, self._send).closed()


class _StreamPort(StreamPort):
    """What a stream's connection writes to: ``port(data)`` queues a reply (a reply for a
    stream that ended is dropped); ``port.closed()`` reports that the session ended itself.
    One small slotted object per stream, because an idle executor holds thousands."""

    __slots__ = ()

    def failed(self, payload: bytes, exc: Exception) -> None:
        if isinstance(exc, MessageTooLarge):
            self._too_large(payload, exc)

    def _too_large(self, data: bytes, exc: MessageTooLarge) -> None:
        """A reply too big for this stream (a 16 MiB legacy frame, or 64 MiB): the request
        gets a clear JSON-RPC error instead and the session goes on.  Only a message that is
        not a response (nobody to answer) costs the stream."""
        import orjson

        endpoint, sid = self.endpoint, self.stream_id
        try:
            rid = orjson.loads(data).get("id")
        except (orjson.JSONDecodeError, AttributeError):
            rid = None
        if rid is None:
            log.warning("stream %s: %s; resetting the stream", sid, exc)
            conn = endpoint.handler(sid)
            endpoint.reset(sid, "message_too_large")
            if conn is not None:
                conn.on_close("message_too_large", False)
            return
        self(orjson.dumps({"error": {"code": INTERNAL_ERROR,
                                     "message": f"response too large for this relay stream: {exc}"},
                           "id": rid}))

    def closed(self) -> None:
        # 0.131.0 goes silent here; a Reset tells the harness at once instead of leaving its
        # calls hanging (a deliberate, documented difference).  A no-op when the stream ended
        # first (that is what closed the connection).
        self.endpoint.reset(self.stream_id, "session closed")


class RemoteExecutor:
    """Registration loop + one relay websocket + a session per stream."""

    def __init__(self, config: RemoteExecutorConfig, server: ExecServer) -> None:
        self.config = config
        self.server = server
        #: the relay endpoint (created by :meth:`run`, on its event loop)
        self.endpoint: RelayEndpoint | None = None
        self._closing = asyncio.Event()
        #: successful registrations so far (a re-registration follows every websocket loss)
        self.registrations = 0
        self.connected = asyncio.Event()

    @property
    def mux(self) -> Multiplexer | None:
        """The relay multiplexer (inspection: streams, counters); None before :meth:`run`."""
        return self.endpoint.mux if self.endpoint is not None else None

    @property
    def conns(self) -> dict[str, RelayRpcConnection]:
        """The connection of every live stream, by stream id (a snapshot)."""
        if self.endpoint is None:
            return {}
        return {sid: cast(RelayRpcConnection, st.handler) for sid, st in self.endpoint.streams.items()}

    def _on_accept(self, sid: str, mode: str) -> RelayRpcConnection:
        assert self.endpoint is not None
        port = _StreamPort(self.endpoint, sid)
        return RelayRpcConnection(self.server, port)  # its close() calls port.closed()

    # ------------------------------------------------------------------ main loop
    async def run(self) -> int:
        """Register, connect, serve; repeat after any loss until :meth:`close`."""
        cfg = self.config
        endpoint = self.endpoint = RelayEndpoint(ACCEPTOR, on_accept=self._on_accept)
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
                    link = await connect_websocket(url, endpoint.handler_for, timeout=cfg.connect_timeout,
                                                   keepalive=cfg.keepalive,
                                                   ssl_context=tls.for_url(url, cfg.ca_file))
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
                endpoint.detach(link)
                self.connected.clear()
                if not self._closing.is_set():
                    backoff = await self._sleep(backoff)
        finally:
            endpoint.close("executor shutting down")
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
                              name: str | None = None, ca_file: str | None = None,
                              bearer_token: str | None = None) -> int:
    """Entry point of ``execrelay exec-server --remote``; returns the process exit code.

    ``bearer_token``: read from a file or stdin by the CLI; None reads the environment."""
    try:
        if bearer_token is None:
            config = RemoteExecutorConfig.from_env(remote_url, executor_id, name)
        else:
            config = RemoteExecutorConfig(remote_url, executor_id, bearer_token, name=name or "codex-exec-server")
        config.ca_file = ca_file
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    executor = RemoteExecutor(config, server)
    try:
        return await executor.run()
    finally:
        executor.close()
