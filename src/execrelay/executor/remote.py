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

With ``noise`` on (the CLI's default), the executor registers its static Noise key at the
Noise registry as 0.171 does and serves Noise streams besides plaintext ones: a stream that
starts with a Handshake frame gets an :class:`~execrelay.stream.noise_stream.ExecutorNoiseLayer`,
which asks the registry (``/validate``) about the harness key before it answers
(docs/noise.md §Our executor).  A registry without Noise endpoints gets the plain
registration instead (unless Noise is required).

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
from typing import TYPE_CHECKING, Callable, cast
from urllib.parse import quote

import orjson

from ..stream import ACCEPTOR, MessageTooLarge, Multiplexer
from ..stream.noise import SECURITY_PROFILE, HandshakeRequest, StaticKeyPair
from ..stream.noise_stream import RELAY_MODES, RELAY_MODES_FIELD, ExecutorNoiseLayer
from ..transport import RELAY_KEEPALIVE, connect_websocket, tls
from ..transport.endpoint import RelayEndpoint, StreamPort
from .accesslog import stream_id_of
from .connection import OVERLOADED, QUEUE_PAUSE, RpcConnection
from .drain import DRAINING_REASON
from .errors import INTERNAL_ERROR
from .server import ExecServer

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger("execrelay.executor.remote")

TOKEN_ENV = "CODEX_EXEC_SERVER_REMOTE_BEARER_TOKEN"
#: ``noise`` settings: register plainly (P5.1) only; Noise, or plainly when the registry has
#: no Noise endpoints; Noise only, plaintext streams refused (docs/noise.md §Our executor).
NOISE_OFF, NOISE_AUTO, NOISE_REQUIRE = "off", "auto", "require"
#: The Reset reason of a plaintext stream on a ``--require-noise`` executor.
NOISE_REQUIRED = ("noise_required: this executor serves only Noise-encrypted streams "
                  "(connect through the Noise registry)")
#: Handshakes whose harness key is being checked with the registry at once; past it a new
#: handshake is refused at once (a flood must not queue registry requests without bound).
MAX_VALIDATIONS = 64


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
    #: NOISE_OFF (programmatic default: the P5.1 registration), NOISE_AUTO (the CLI's) or
    #: NOISE_REQUIRE
    noise: str = NOISE_OFF
    #: the static Noise key (None: one generated per process when ``noise`` is on)
    identity: StaticKeyPair | None = None

    def __post_init__(self) -> None:
        self.registry_url = self.registry_url.strip().rstrip("/")
        self.executor_id = self.executor_id.strip()
        self.bearer_token = self.bearer_token.strip()
        if not self.executor_id:
            raise ConfigError("executor id is required for remote exec-server registration")
        if not self.bearer_token:
            raise ConfigError(f"executor registry bearer token environment variable `{TOKEN_ENV}` is empty")
        if self.noise not in (NOISE_OFF, NOISE_AUTO, NOISE_REQUIRE):
            raise ConfigError(f"noise must be one of {NOISE_OFF}, {NOISE_AUTO}, {NOISE_REQUIRE}")

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

    def noise_url(self, endpoint: str) -> str:
        """``/cloud/environment/{id}/register|validate`` of the Noise registry."""
        return f"{self.registry_url}/cloud/environment/{quote(self.executor_id, safe='')}/{endpoint}"


async def _post(config: RemoteExecutorConfig, url: str, body: dict | None = None,
                headers: dict[str, str] | None = None,
                http: "aiohttp.ClientSession | None" = None) -> tuple[int, bytes]:
    """POST to the registry with the executor's bearer: ``(status, body)`` or RegistryError."""
    import aiohttp

    hdrs = {"Authorization": f"Bearer {config.bearer_token}", **(headers or {})}
    ctx = tls.for_url(url, config.ca_file)
    try:
        if http is None:
            timeout = aiohttp.ClientTimeout(total=config.request_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as own:
                return await _post_with(own, url, body, hdrs, ctx)
        return await _post_with(http, url, body, hdrs, ctx)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise RegistryError(f"executor registry request failed: {exc or type(exc).__name__}") from None


async def _post_with(http: "aiohttp.ClientSession", url: str, body: dict | None,
                     headers: dict[str, str], ctx: object) -> tuple[int, bytes]:
    async with http.post(url, headers=headers, allow_redirects=False, json=body,
                         ssl=ctx if ctx is not None else True) as resp:
        return resp.status, await resp.read()


def _json_answer(status: int, body: bytes, fields: tuple[str, ...]) -> dict:
    """The registry's 2xx JSON answer with string ``fields``, or RegistryError."""
    if status in (401, 403):
        raise RegistryError(f"executor registry authentication failed ({status}): {_error_text(body)}", status)
    if not 200 <= status < 300:
        raise RegistryError(f"executor registry request failed ({status}): {_error_text(body)}", status)
    try:
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise TypeError("the answer must be a JSON object")
        if not all(isinstance(data[f], str) for f in fields):
            raise TypeError(f"{', '.join(fields)} must be strings")
    except Exception:  # noqa: BLE001 - any malformed body is the same failure
        raise RegistryError("executor registry request failed: error decoding response body", status) from None
    return data


async def register(config: RemoteExecutorConfig) -> tuple[str, str]:
    """POST the registration; return ``(executor_id, websocket url)`` or raise RegistryError."""
    status, body = await _post(config, config.register_url)
    data = _json_answer(status, body, ("executor_id", "url"))
    return data["executor_id"], data["url"]


class NoiseUnavailable(RegistryError):
    """The registry has no Noise endpoints (404/405 on ``/cloud/environment/{id}/register``)."""


async def register_noise(config: RemoteExecutorConfig, identity: StaticKeyPair) -> tuple[str, str]:
    """Register the executor's static key as 0.171 does (docs/noise.md §Our executor):
    ``(executor_registration_id, websocket url)``, NoiseUnavailable or RegistryError."""
    status, body = await _post(config, config.noise_url("register"), {
        "security_profile": SECURITY_PROFILE,
        "executor_public_key": identity.public.to_json(),
        RELAY_MODES_FIELD: list(RELAY_MODES)})
    if status in (404, 405):
        raise NoiseUnavailable(f"the registry has no Noise endpoints ({status})", status)
    data = _json_answer(status, body, ("executor_registration_id", "url"))
    return data["executor_registration_id"], data["url"]


def _error_text(body: bytes) -> str:
    try:
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
            if log.isEnabledFor(logging.DEBUG):
                log.debug("dropping malformed relay data message frame: %s", message,
                          extra={"fields": self._ids()})
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
            self.server.metrics.overloaded += 1
            self._send_error(rid, OVERLOADED, f"too many requests queued on this relay stream "
                                              f"(limit {QUEUE_PAUSE}) behind a running request; "
                                              "retry later")
        else:
            self.close(f"more than {QUEUE_PAUSE} messages queued behind a running request")
        return True

    def _send_parse_error(self, message: bytes | str) -> None:
        # dropped like every id -1 error, without building the text (a second parse)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("dropping malformed relay data message frame (%d bytes)", len(message),
                      extra={"fields": self._ids()})

    def _ids(self) -> dict[str, str]:
        """The log fields naming this stream and its session."""
        ids = {"stream_id": stream_id_of(self) or ""}
        if self.session is not None:
            ids["session_id"] = self.session.id
        return ids

    # on_message is RpcConnection.feed; the stream ending closes the connection.
    def on_close(self, reason: str | None = None, by_peer: bool = False) -> None:
        if by_peer:
            self.server.metrics.reset(reason or "unknown", "received")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("stream ended", extra={"fields": {**self._ids(), "reason": reason, "by_peer": by_peer}})
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
            log.warning("resetting the stream: %s", exc, extra={"fields": {"stream_id": sid}})
            conn = endpoint.handler(sid)
            if conn is not None:
                cast(RelayRpcConnection, conn).server.metrics.reset("message_too_large", "sent")
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
        conn = self.endpoint.handler(self.stream_id)
        if conn is not None:
            cast(RelayRpcConnection, conn).server.metrics.reset("session closed", "sent")
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
        #: the Reset reason of the streams still open when :meth:`run` ends
        self._close_reason = "executor shutting down"
        m = server.metrics
        m.set_gauge_source("relay_streams", "Relay streams open on the rendezvous websocket.",
                           lambda: len(self.endpoint.streams) if self.endpoint is not None else 0)
        m.set_gauge_source("relay_connected", "1 while the rendezvous websocket is up.",
                           lambda: int(self.connected.is_set()))
        #: the static Noise key (public part: ``identity.public``); None with noise off
        self.identity: StaticKeyPair | None = None
        if config.noise != NOISE_OFF:
            self.identity = config.identity or StaticKeyPair.generate()
        #: the current Noise registration (None: registered plainly, handshakes refused)
        self.registration_id: str | None = None
        #: registry answers for harness keys: (stream id, valid), the latest last (bounded)
        self.validations: list[tuple[str, bool]] = []
        self._validating = 0
        self._noise_unavailable = False
        self._last_warning = -1e18
        self._warned = 0
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Future] = set()

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

    def _on_accept(self, sid: str, mode: str) -> RelayRpcConnection | None:
        assert self.endpoint is not None
        if self.server.draining:  # docs/operations.md §Graceful drain: Reset executor_draining
            self.endpoint.refuse_reason = DRAINING_REASON
            self.server.metrics.reset(DRAINING_REASON, "sent")
            return None
        port = _StreamPort(self.endpoint, sid)
        return RelayRpcConnection(self.server, port)  # its close() calls port.closed()

    # ------------------------------------------------------------------ Noise streams
    def _noise_layer(self, sid: str, mode: str) -> ExecutorNoiseLayer | None:
        """The record layer of a stream that began a handshake (None: refused, as when the
        executor registered without Noise)."""
        if self.identity is None or self.registration_id is None:
            return None
        return ExecutorNoiseLayer(sid, self.identity, self.config.executor_id,
                                  self.registration_id, self._validate)

    def _validate(self, sid: str, request: HandshakeRequest, decided: Callable[[bool], None]) -> None:
        """Ask the registry whether the harness key of ``request`` is authorized (0.171's
        ``/validate``), then ``decided``; failures and overload count as no."""
        if self._validating >= MAX_VALIDATIONS:
            self._warn(f"stream {sid}: {MAX_VALIDATIONS} harness keys already being checked; refusing")
            decided(False)
            return
        self._validating += 1
        task = asyncio.ensure_future(self._ask_registry(sid, request, self.registration_id or ""))
        self._tasks.add(task)

        def done(t: asyncio.Future) -> None:
            self._tasks.discard(t)
            self._validating -= 1
            valid = not t.cancelled() and t.exception() is None and t.result() is True
            self.validations = self.validations[-255:] + [(sid, valid)]
            decided(valid)
        task.add_done_callback(done)

    async def _ask_registry(self, sid: str, request: HandshakeRequest, registration_id: str) -> bool:
        import aiohttp

        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.request_timeout))
        try:
            authorization = request.authorization.decode("utf-8")
        except UnicodeDecodeError:
            return False
        try:
            status, body = await _post(self.config, self.config.noise_url("validate"), {
                "executor_registration_id": registration_id,
                "harness_public_key": request.initiator_key.to_json(),
                "harness_key_authorization": authorization},
                headers={"x-codex-noise-stream-id": sid}, http=self._http)
            return _json_answer(status, body, ()).get("valid") is True
        except RegistryError as exc:
            self._warn(f"stream {sid}: harness key check failed: {exc}")
            return False

    def _warn(self, text: str) -> None:
        """A warning a harness can provoke (handshake floods, a registry down): at most one a
        minute, with the number left out."""
        now = asyncio.get_running_loop().time()
        self._warned += 1
        if now - self._last_warning >= 60.0:
            more = f" ({self._warned - 1} more since the last warning)" if self._warned > 1 else ""
            log.warning("%s%s", text, more)
            self._last_warning = now
            self._warned = 0

    async def _register(self) -> str:
        """Register (Noise first unless it is off); the websocket URL, or RegistryError."""
        cfg = self.config
        if self.identity is not None and not self._noise_unavailable:
            try:
                self.registration_id, url = await register_noise(cfg, self.identity)
                print(f"codex exec-server remote executor registered environment {cfg.executor_id} "
                      f"with Noise key {self.identity.public.fingerprint()}", file=sys.stderr, flush=True)
                return url
            except NoiseUnavailable as exc:
                if cfg.noise == NOISE_REQUIRE:
                    raise RegistryError(f"{exc}; --require-noise needs a Noise registry", exc.status) from None
                # (for the rest of this process: one warning, one request per registration)
                self._noise_unavailable = True
                print(f"warning: {exc}; registering without Noise (plaintext streams only)",
                      file=sys.stderr, flush=True)
        self.registration_id = None
        executor_id, url = await register(cfg)
        print(f"codex exec-server remote executor registered with executor_id {executor_id}",
              file=sys.stderr, flush=True)
        return url

    # ------------------------------------------------------------------ main loop
    async def run(self) -> int:
        """Register, connect, serve; repeat after any loss until :meth:`close`."""
        cfg = self.config
        endpoint = self.endpoint = RelayEndpoint(
            ACCEPTOR, on_accept=self._on_accept,
            handshake_layer=self._noise_layer if self.identity is not None else None,
            plaintext_refused=NOISE_REQUIRED if cfg.noise == NOISE_REQUIRE else None)
        metrics = self.server.metrics
        fields = {"executor_id": cfg.executor_id}
        backoff = cfg.backoff_initial
        try:
            while not self._closing.is_set():
                try:
                    url = await self._register()
                except RegistryError as exc:
                    metrics.registry_error("auth" if exc.status in (401, 403) else
                                           "network" if exc.status is None else "http")
                    log.info("registration failed: %s", exc, extra={"fields": {**fields, "status": exc.status}})
                    print(f"warning: {exc}; retrying", file=sys.stderr, flush=True)
                    backoff = await self._sleep(backoff)
                    continue
                self.registrations += 1
                metrics.registrations += 1
                log.info("registered", extra={"fields": fields})
                try:
                    link = await connect_websocket(url, endpoint.handler_for, timeout=cfg.connect_timeout,
                                                   keepalive=cfg.keepalive,
                                                   ssl_context=tls.for_url(url, cfg.ca_file))
                except Exception as exc:  # noqa: BLE001 - refused, 4xx/5xx, bad scheme: retry
                    metrics.registry_error("connect")
                    log.info("relay websocket connect failed: %s", exc, extra={"fields": fields})
                    print(f"warning: failed to connect remote exec-server websocket: {exc}",
                          file=sys.stderr, flush=True)
                    backoff = await self._sleep(backoff)
                    continue
                self.connected.set()
                metrics.relay_connects += 1
                log.info("relay connected", extra={"fields": {**fields, "connects": metrics.relay_connects}})
                backoff = cfg.backoff_initial
                closing = asyncio.ensure_future(self._closing.wait())
                closed = asyncio.ensure_future(link.wait_closed())
                await asyncio.wait([closing, closed], return_when=asyncio.FIRST_COMPLETED)
                closing.cancel()
                if not closed.done():
                    if self._closing.is_set():
                        self._end_streams()  # the Resets go out on this link before it closes
                    link.close()
                    await asyncio.wait([closed], timeout=2.0)
                closed.cancel()
                endpoint.detach(link)
                self.connected.clear()
                if not self._closing.is_set():
                    log.info("relay connection lost", extra={"fields": fields})
                    backoff = await self._sleep(backoff)
        finally:
            self._end_streams()
            for task in list(self._tasks):
                task.cancel()
            if self._http is not None:
                await self._http.close()
        return 0

    def _end_streams(self) -> None:
        """Reset every stream still open with the close reason (idempotent)."""
        endpoint = self.endpoint
        if endpoint is None or endpoint.closed:
            return
        for _ in endpoint.streams:
            self.server.metrics.reset(self._close_reason, "sent")
        endpoint.close(self._close_reason)

    async def _sleep(self, backoff: float) -> float:
        """Sleep ``backoff`` +- 20% jitter (or until close); return the next backoff."""
        delay = backoff * random.uniform(0.8, 1.2)
        try:
            await asyncio.wait_for(self._closing.wait(), delay)
        except asyncio.TimeoutError:
            pass
        return min(backoff * 2, self.config.backoff_max)

    def close(self, reason: str | None = None) -> None:
        """Stop :meth:`run`; the streams still open are Reset with ``reason`` (default
        ``executor shutting down``; a drain passes ``executor_draining``)."""
        if reason is not None:
            self._close_reason = reason
        self._closing.set()


async def run_remote_executor(server: ExecServer, remote_url: str, executor_id: str,
                              name: str | None = None, ca_file: str | None = None,
                              bearer_token: str | None = None, noise: str = NOISE_OFF,
                              identity: StaticKeyPair | None = None,
                              started: Callable[[RemoteExecutor], None] | None = None) -> int:
    """Entry point of ``execrelay exec-server --remote``; returns the process exit code.

    ``bearer_token``: read from a file or stdin by the CLI; None reads the environment.
    ``noise``/``identity``: see :class:`RemoteExecutorConfig`.
    ``started`` receives the :class:`RemoteExecutor` before it registers (readiness, drain)."""
    try:
        if bearer_token is None:
            config = RemoteExecutorConfig.from_env(remote_url, executor_id, name)
        else:
            config = RemoteExecutorConfig(remote_url, executor_id, bearer_token, name=name or "codex-exec-server")
        config.ca_file = ca_file
        config.noise = noise
        config.identity = identity
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr, flush=True)
        return 1
    executor = RemoteExecutor(config, server)
    if started is not None:
        started(executor)
    try:
        return await executor.run()
    finally:
        executor.close()
