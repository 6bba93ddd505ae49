"""The rendezvous + registry service: one port; HTTP on aiohttp, websockets on picows.

The websocket paths run on picows when it is the transport (:mod:`.ws_fast`), on aiohttp in
the pure build or with ``--websockets aiohttp``; both share the admission code below.

See docs/rendezvous.md §URLs and endpoints and §Tokens.

Endpoints:

- ``POST /cloud/executor/{id}/register`` (``Authorization: Bearer <executor token>``)
  -> ``{"executor_id": id, "url": "ws://host:port/executor/{id}?sig=<short-lived token>"}``
- ``POST /cloud/environment/{id}/register|connect|validate``: the Noise registry of Codex
  0.171 (:mod:`.noise_registry`, docs/rendezvous.md §Noise registry)
- ``GET /executor/{id}?sig=...``: the executor's websocket (one per executor id)
- ``GET /harness?role=harness&executor_id=ID&sig=...``: a harness websocket
- ``GET /readyz``, ``GET /metrics`` (Prometheus text)

Bad tokens are refused with 401 before the websocket upgrade.  Embedding::

    server = RendezvousServer(secret=b"...16+ bytes...", harness_grace=1.0)
    await server.start("127.0.0.1", 0)
    url = server.harness_url("exec-1")   # for a harness
    base = server.url                      # registry base for `exec-server --remote`
    await server.aclose()
"""
from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import secrets
import ssl
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import WSMsgType, web

from .._accel import FORCE_PURE
from . import tokens, ws_fast
from .config import RendezvousConfig
from .guard import ConnectionGuard
from .link import Link
from .metrics import Metrics
from .noise_registry import NoiseRegistry
from .router import Router

log = logging.getLogger("execrelay.rendezvous")


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class ClusterHooks(Protocol):
    """What a cluster node (docs/rendezvous.md §Several nodes) hears from the server beyond
    the router's directory and stream tables: harness sockets coming and going."""

    def harness_attached(self, link: Link) -> None: ...
    def harness_detached(self, link: Link) -> None: ...
    async def executor_admission(self, executor_id: str, url_token_fp: str) -> None: ...


#: the answer to any new request or socket while draining (docs/operations.md §Graceful drain)
_DRAINING_BODY: dict[str, Any] = {"error": {"code": "draining",
                                            "message": "rendezvous is draining; try another one"}}


def _unauthorized_body(message: str) -> dict[str, Any]:
    # The shape 0.131.0 parses for its error message (docs/rendezvous.md §Tokens).
    return {"error": {"code": "unauthorized", "message": message}}


def _unauthorized(message: str) -> web.Response:
    return web.json_response(_unauthorized_body(message), status=401)


class RendezvousServer:
    """Registry, executor websockets and harness websockets on one port.

    ``secret`` signs and checks tokens (>= 16 bytes; random when omitted, which only works
    when this process also mints the tokens).  Keyword overrides are fields of
    :class:`RendezvousConfig`, e.g. ``harness_grace=0.5``.
    """

    def __init__(self, secret: bytes | str | None = None, *, config: RendezvousConfig | None = None,
                 fast_frames: bool = True, **overrides: Any) -> None:
        if secret is None:
            secret = secrets.token_bytes(32)
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if len(secret) < tokens.MIN_SECRET_BYTES:
            raise tokens.SecretError(f"secret is shorter than {tokens.MIN_SECRET_BYTES} bytes")
        self._secret = secret
        cfg = config or RendezvousConfig()
        self.config = dataclasses.replace(cfg, **overrides) if overrides else cfg
        self.metrics = Metrics()
        self.router = Router(self.config, self.metrics)
        self.guard = ConnectionGuard(self.config.handshake_timeout, self.config.max_unauthenticated,
                                     self.metrics)
        self.tls = False
        self.host = ""
        self.port = 0
        self._links: set[Link] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        #: serve the websocket paths on picows when it is the transport (docs/rendezvous.md
        #: §URLs and endpoints); False keeps them on aiohttp (the pure build's path)
        self.fast_websockets = not FORCE_PURE
        #: route a bound stream's frames in the compiled listener when it is built
        #: (docs/rendezvous.md §The compiled frame path); False keeps every frame on the
        #: Python path (for tests that watch the router's per-frame functions)
        self.fast_frames = fast_frames
        self._front: ws_fast.FastFront | None = None
        #: set by a cluster node joining this server (None: a single node)
        self.cluster: ClusterHooks | None = None
        self.noise = NoiseRegistry(secret, self.config, self.metrics, self.router.directory,
                                   self._public_ws_base)
        #: set by :meth:`drain`: new connections and registrations get 503, new streams a Reset
        self.draining = False
        self.app = self._build_app()

    # -- public API ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http(s)://host:port``: the registry base URL (``exec-server --remote``)."""
        return f"{'https' if self.tls else 'http'}://{_host_for_url(self.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{_host_for_url(self.host)}:{self.port}"

    def mint_token(self, role: str, executor_id: str, ttl: float = 3600.0) -> str:
        """A signed token for ``role`` (``executor`` or ``harness``) on ``executor_id``."""
        return tokens.mint(self._secret, role, executor_id, ttl)

    def harness_url(self, executor_id: str, ttl: float = 3600.0, base: str | None = None) -> str:
        """The harness websocket URL (usable as ``CODEX_EXEC_SERVER_URL`` by 0.131.0)."""
        return harness_url(base or self.ws_url, executor_id, self.mint_token("harness", executor_id, ttl))

    def executor_url(self, executor_id: str, ttl: float = 3600.0) -> str:
        """A direct executor websocket URL (what the registry hands out)."""
        token = self.mint_token("executor", executor_id, ttl)
        return f"{self.ws_url}/executor/{quote(executor_id, safe='')}?sig={token}"

    async def start(self, host: str = "127.0.0.1", port: int = 0,
                    ssl_context: ssl.SSLContext | None = None) -> str:
        """Listen; returns :attr:`url`.  Port 0 picks a free port (see :attr:`port`).

        With ``ssl_context`` (see :func:`execrelay.transport.tls.server_context`) it serves
        https and wss, and the registry hands out ``wss://`` URLs.
        """
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        assert runner.server is not None
        self.guard.install(runner.server)
        self.tls = ssl_context is not None
        if self.fast_websockets and ws_fast.available():
            # websocket paths on picows, the rest on aiohttp, one port (rendezvous/ws_fast.py)
            front = ws_fast.FastFront(self, runner.server)
            self.port = await front.start(host, port, ssl_context)
            self._front = front
            self._runner = runner
            self.host = host
            return self.url
        site = web.TCPSite(runner, host, port, backlog=1024, reuse_address=True,
                           ssl_context=ssl_context)
        await site.start()
        self._runner = runner
        server = site._server  # noqa: SLF001 - aiohttp exposes no public accessor for the port
        sockname = server.sockets[0].getsockname() if server and server.sockets else (host, port)
        self.host, self.port = host, int(sockname[1])
        return self.url

    async def aclose(self) -> None:
        """Drop every socket and stop listening."""
        for link in list(self._links):
            link.abort("shutdown")
        for task in list(self._tasks):
            task.cancel()
        self.router.close()
        self.guard.close()
        if self._front is not None:
            self._front.close()
            self._front = None
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def drain(self, timeout: float, abort: "asyncio.Future[None] | None" = None) -> str:
        """Stop accepting (503 for registrations and new sockets, Reset ``rendezvous_draining``
        for new streams, ``/readyz`` 503) and keep routing the open streams until none is left,
        ``timeout`` seconds pass or ``abort`` is done (docs/operations.md §Graceful drain).
        Returns ``drained``, ``timeout`` or ``aborted``; :meth:`aclose` ends the rest."""
        self.draining = self.router.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        log.info("drain started", extra={"fields": {"streams": self.router.stream_count(), "timeout_s": timeout}})
        outcome = "drained"
        while self.router.stream_count():
            left = deadline - loop.time()
            if left <= 0:
                outcome = "timeout"
                break
            if abort is not None:
                await asyncio.wait([abort], timeout=min(0.05, left))
                if abort.done():
                    outcome = "aborted"
                    break
            else:
                await asyncio.sleep(min(0.05, left))
        log.info("drain finished", extra={"fields": {"outcome": outcome, "streams": self.router.stream_count()}})
        return outcome

    async def __aenter__(self) -> "RendezvousServer":
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- HTTP ---------------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024,
                              middlewares=[self.guard.middleware, self._drain_middleware])
        app.router.add_post("/cloud/executor/{executor_id}/register", self._register)
        app.router.add_get("/executor/{executor_id}", self._executor_ws)
        app.router.add_get("/harness", self._harness_ws)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_routes(self.noise.routes())
        return app

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.draining:
            return web.Response(text="draining\n", status=503)
        return web.Response(text="ok\n")

    @web.middleware
    async def _drain_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """While draining, everything but ``/readyz`` and ``/metrics`` is refused with 503 (a
        registration, a new executor or harness socket, the Noise registry); open sockets are
        not HTTP requests any more and keep being routed."""
        if self.draining and request.path not in ("/readyz", "/metrics"):
            return web.json_response(_DRAINING_BODY, status=503)
        return await handler(request)

    async def _metrics(self, request: web.Request) -> web.Response:
        want = self.config.metrics_token
        if want:
            auth = request.headers.get("Authorization", "")
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(given.encode("utf-8", "replace"), want.encode("utf-8")):
                self.metrics.auth_failures["metrics"] += 1
                return _unauthorized("invalid or missing metrics bearer token")
        return web.Response(body=self.metrics.render().encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    def _public_ws_base(self, request: web.Request) -> str:
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        secure = request.secure or (self.config.trust_forwarded_proto
                                    and request.headers.get("X-Forwarded-Proto", "").strip().lower()
                                    == "https")
        scheme = "wss" if secure else "ws"
        return f"{scheme}://{request.host}"

    async def _register(self, request: web.Request) -> web.Response:
        executor_id = request.match_info["executor_id"]
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
        if not tokens.verify(self._secret, token, "executor", executor_id):
            self.metrics.auth_failures["register"] += 1
            return _unauthorized("invalid, expired or missing executor token")
        assert token is not None
        ttl = self.config.url_token_ttl
        url_token = tokens.mint(self._secret, "executor", executor_id, ttl)
        self.router.directory.remember_registration(
            tokens.token_fingerprint(url_token), tokens.token_fingerprint(token), ttl)
        self.metrics.registrations += 1
        url = f"{self._public_ws_base(request)}/executor/{quote(executor_id, safe='')}?sig={url_token}"
        return web.json_response({"executor_id": executor_id, "url": url})

    def _new_ws(self) -> web.WebSocketResponse:
        cfg = self.config
        return web.WebSocketResponse(max_msg_size=cfg.message_limit, compress=False,
                                     heartbeat=cfg.heartbeat, autoping=True)

    # -- admission (shared by the aiohttp path and the picows fast path) ----------------
    def admit_executor(self, executor_id: str, sig: str | None) -> str | tuple[int, dict[str, Any]]:
        """Check an executor socket's token and claim the id: its registration, or the
        refusal ``(status, body)`` to answer before the upgrade (docs/rendezvous.md §URLs and
        endpoints)."""
        if self.draining:  # the picows path does not pass the aiohttp middleware
            return 503, _DRAINING_BODY
        if not tokens.verify(self._secret, sig, "executor", executor_id):
            self.metrics.auth_failures["executor"] += 1
            return 401, _unauthorized_body("invalid, expired or missing executor token")
        assert sig is not None
        sig_fp = tokens.token_fingerprint(sig)
        registration = self.router.directory.registration_of(sig_fp) or sig_fp
        if self.router.executor_claim(executor_id, registration) == "refused":
            self.metrics.auth_failures["executor_conflict"] += 1
            return 409, {"error": {"code": "conflict",
                                   "message": "executor id is connected with another registration"}}
        return registration

    async def prepare_executor_admission(self, executor_id: str, sig: str | None) -> None:
        """On a cluster, read what the other nodes know of this id and URL token (the KV
        entries of docs/rendezvous.md §Several nodes) so that the synchronous
        :meth:`admit_executor` that follows sees them; nothing to do on a single node."""
        cluster = self.cluster
        if cluster is None or sig is None or not tokens.verify(self._secret, sig, "executor", executor_id):
            return
        await cluster.executor_admission(executor_id, tokens.token_fingerprint(sig))

    def admit_harness(self, executor_id: str, role: str | None, sig: str | None
                      ) -> tuple[int, dict[str, Any]] | None:
        """Check a harness socket's query: None when it may upgrade, else ``(status, body)``."""
        if self.draining:
            return 503, _DRAINING_BODY
        if role != "harness" or not executor_id:
            return 400, {"error": {"code": "bad_request",
                                   "message": "harness URL needs role=harness and executor_id"}}
        if not tokens.verify(self._secret, sig, "harness", executor_id):
            self.metrics.auth_failures["harness"] += 1
            return 401, _unauthorized_body("invalid, expired or missing harness token")
        return None

    def executor_link(self, executor_id: str, ws: Any, transport: Any, label: str) -> Link:
        """The router's view of an executor socket (its writes bounded by ``executor_high_water``)."""
        # Harness reads wait while this socket's queue is above the high-water mark and
        # resume when the transport signals it fell below half of it (_wait_executor_drain).
        # Crossing it stops every harness before its next frame (Router.executor_congested):
        # a total cap, not one per harness.
        high = self.config.executor_high_water
        link = Link("executor", executor_id, ws, transport, high,
                    on_overflow=self.router.executor_congested, label=label)
        if transport is not None:
            transport.set_write_buffer_limits(high=high, low=high // 2)
        return link

    def harness_link(self, executor_id: str, ws: Any, transport: Any, label: str, sig: str) -> Link:
        """The router's view of a harness socket (bounded queue, slow-reader cut-off)."""
        cfg = self.config
        link = Link("harness", executor_id, ws, transport, cfg.harness_queue_bytes,
                    on_overflow=self.router.harness_overflow, label=label,
                    hard_limit=cfg.harness_queue_hard_limit, slow_after=cfg.harness_slow_after)
        link.credential = tokens.token_fingerprint(sig)
        return link

    def attach_executor(self, link: Link, registration: str) -> bool:
        """Hand an upgraded executor socket to the router; False: it lost a race with another
        registration (the caller closes it with 1008)."""
        old = self.router.executor_attached(link, registration)
        if old is False:
            return False
        self._links.add(link)
        self.metrics.connections["executor"] += 1
        self.metrics.connections_total["executor"] += 1
        log.info("executor connected", extra={"fields": {"executor_id": link.executor_id, "peer": link.label}})
        if isinstance(old, Link):
            self._links.discard(old)
            self.spawn(old.close("superseded"))
        return True

    def detach_executor(self, link: Link) -> None:
        self._links.discard(link)
        self.metrics.connections["executor"] -= 1
        self.router.executor_detached(link)
        log.info("executor disconnected", extra={"fields": {"executor_id": link.executor_id}})

    def attach_harness(self, link: Link) -> None:
        self._links.add(link)
        self.metrics.connections["harness"] += 1
        self.metrics.connections_total["harness"] += 1
        self.router.harness_attached(link)
        log.info("harness connected", extra={"fields": {"executor_id": link.executor_id, "peer": link.label}})
        if self.cluster is not None:
            self.cluster.harness_attached(link)

    def detach_harness(self, link: Link) -> None:
        self._links.discard(link)
        self.metrics.connections["harness"] -= 1
        log.info("harness disconnected", extra={"fields": {"executor_id": link.executor_id,
                                                            "streams": len(link.streams)}})
        self.router.harness_detached(link)
        if self.cluster is not None:
            self.cluster.harness_detached(link)

    # -- executor socket ----------------------------------------------------------------
    async def _executor_ws(self, request: web.Request) -> web.StreamResponse:
        executor_id = request.match_info["executor_id"]
        await self.prepare_executor_admission(executor_id, request.query.get("sig"))
        admitted = self.admit_executor(executor_id, request.query.get("sig"))
        if isinstance(admitted, tuple):
            return web.json_response(admitted[1], status=admitted[0])
        ws = self._new_ws()
        await ws.prepare(request)
        link = self.executor_link(executor_id, ws, request.transport, str(request.remote))
        link.drain = request.writer.drain
        if not self.attach_executor(link, admitted):  # lost a race with another registration
            await ws.close(code=1008, message=b"executor id taken")
            return ws
        try:
            await self._read_loop(ws, link, self.router.from_executor, None)
        finally:
            self.detach_executor(link)
        return ws

    # -- harness socket -----------------------------------------------------------------
    async def _harness_ws(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        executor_id = query.get("executor_id", "")
        sig = query.get("sig")
        refused = self.admit_harness(executor_id, query.get("role"), sig)
        if refused is not None:
            return web.json_response(refused[1], status=refused[0])
        assert sig is not None
        ws = self._new_ws()
        await ws.prepare(request)
        link = self.harness_link(executor_id, ws, request.transport, str(request.remote), sig)
        self.attach_harness(link)
        try:
            await self._read_loop(ws, link, self.router.from_harness, executor_id)
        finally:
            self.detach_harness(link)
        return ws

    # -- shared read loop ---------------------------------------------------------------
    async def _read_loop(self, ws: web.WebSocketResponse, link: Link, route: Any,
                         backpressure_for: str | None) -> None:
        """Receive messages and hand binary ones to ``route``; never raises for bad input.

        ``backpressure_for``: a harness socket's executor id; its reads pause while more
        than ``executor_high_water`` bytes wait for that executor (TCP pushes back on the
        harness instead of the rendezvous buffering without bound) and resume when the
        executor's transport has drained below half of that.  Checked once per MiB read, and
        before the next frame whenever the executor's queue crosses the mark (the router
        zeroes ``link.budget``), so the per-frame cost is one subtraction.
        """
        receive = ws.receive
        binary = WSMsgType.BINARY
        if backpressure_for is None:
            while not link.closed:
                kind, data, _ = await receive()
                if kind is binary:
                    route(link, data)
                elif self._non_binary(link, kind, data):
                    return
            return
        check_every = 1 << 20
        high = self.config.executor_high_water
        link.budget = check_every
        while not link.closed:
            kind, data, _ = await receive()
            if kind is binary:
                link.budget -= len(data)
                if link.budget <= 0:
                    # A loop, not an if: harnesses woken together re-check.  The new budget
                    # is at most the room left under the mark, so harnesses passing their
                    # checks together cannot each add a full interval: the queue exceeds the
                    # mark by about one frame in all, not one interval per harness.
                    backlog = self.router.executor_backlog(backpressure_for)
                    while backlog > high and not link.closed:
                        await self._wait_executor_drain(link, backpressure_for)
                        backlog = self.router.executor_backlog(backpressure_for)
                    link.budget = min(check_every, high - backlog) - len(data)
                route(link, data)
            elif self._non_binary(link, kind, data):
                return

    def _non_binary(self, link: Link, kind: WSMsgType, data: Any) -> bool:
        """Handle a non-binary message; True when the socket is finished."""
        if kind is WSMsgType.TEXT:
            self.router._bad(link, "text", "text websocket message")
            return False
        if kind is WSMsgType.ERROR:
            if getattr(data, "code", None) == 1009:
                self.router._bad(link, "too_large", str(data))
            return True
        return kind in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)

    async def _wait_executor_drain(self, link: Link, executor_id: str) -> None:
        """Hold the harness ``link``'s reads until the executor's socket drains (an hour at
        most), it goes away, or the harness socket is closed."""
        executor = self.router.executor_link(executor_id)
        if executor is not None:
            await executor.wait_writable(link, 3600.0)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` as a task the server keeps (and cancels on close)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def harness_url(base: str, executor_id: str, token: str) -> str:
    """``<base>/harness?role=harness&executor_id=ID&sig=TOKEN`` (docs/rendezvous.md §URLs and endpoints)."""
    return (f"{base.rstrip('/')}/harness?role=harness&executor_id={quote(executor_id, safe='')}"
            f"&sig={token}")
