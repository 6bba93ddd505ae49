"""Harness client: reach an executor through a rendezvous (relay) or a local exec-server.

::

    async with HarnessClient(url) as client:
        session = await client.open_session()          # initialize + initialized
        meta = await session.fs_get_metadata("/tmp")
        code, out, err = await session.run(["echo", "hi"])

``url`` decides the carrier, exactly as the Codex harness decides
(docs/rendezvous.md §URLs and endpoints):

* a URL whose query has ``role=harness`` (``execrelay rendezvous harness-url`` prints one) is a
  rendezvous: ONE websocket carries every session, one relay stream each;
* any other ``ws://`` URL is a local exec-server (``execrelay exec-server --listen``): JSON
  text, one websocket per session.

Relay streams are reliable (docs/relay-protocol.md §Reliable mode) by default: the client
proposes it with ``Resume{1}`` and falls back to legacy when the executor is a 0.131.0 one
(``mode="auto"``, docs/relay-protocol.md §Stream modes); ``"reliable"`` or ``"legacy"`` force
a mode.  One :class:`~execrelay.transport.endpoint.RelayEndpoint` carries the relay streams.

**Noise** (docs/noise.md §Our harness client): given ``environment_id``, ``url`` is a Noise
registry (``http(s)://``): the client asks its ``/connect`` with a static key (``identity``,
else one per client) and the bearer ``auth_token`` (else ``CODEX_EXEC_SERVER_NOISE_AUTH_TOKEN``),
dials the websocket it names and runs every session in an end-to-end encrypted stream pinned
to the executor's registered key.  ``mode="auto"`` uses reliable streams when the executor
announced them (an execrelay executor) and 0.171's legacy framing otherwise.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..stream import LEGACY, OPENER, PENDING, RELIABLE, StreamClosed
from ..stream.noise import RESET_REASON as NOISE_RESET
from ..stream.noise import StaticKeyPair
from ..transport import RELAY_KEEPALIVE, Link, connect_websocket, tls
from ..transport.endpoint import RelayEndpoint, StreamPort
from .errors import ConnectionLost, HarnessError
from .noise import AUTH_TOKEN_ENV, NoiseTarget, noise_connect
from .session import ExecSession

_MODES = {"auto": PENDING, "reliable": RELIABLE, "legacy": LEGACY}


def is_relay_url(url: str) -> bool:
    """True for a rendezvous harness URL (its query carries ``role=harness``)."""
    return ("role", "harness") in parse_qsl(urlsplit(url).query)


class HarnessClient:
    """Sessions with one executor.  See the module docstring."""

    def __init__(self, url: str, *, mode: str = "auto", client_name: str = "execrelay-harness",
                 impl: str | None = None, connect_timeout: float = 10.0,
                 keepalive: tuple[float, float] | None = RELAY_KEEPALIVE,
                 ca_file: str | None = None, environment_id: str | None = None,
                 auth_token: str | None = None, identity: StaticKeyPair | None = None) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}")
        #: Noise: the environment to reach through the registry at ``url`` (None: no Noise)
        self.environment_id = environment_id
        if environment_id is not None:
            token = auth_token if auth_token is not None else os.environ.get(AUTH_TOKEN_ENV, "")
            if not token.strip():
                raise HarnessError(f"a Noise connection needs a harness token (auth_token or {AUTH_TOKEN_ENV})")
            self._auth_token = token.strip()
            #: our static Noise key (public part sent to the registry)
            self.identity = identity or StaticKeyPair.generate()
        #: the registry's answer for the current connection (Noise only)
        self.noise_target: NoiseTarget | None = None
        self._ca_file = ca_file
        self.url = url
        self.mode = mode
        self.client_name = client_name
        self.impl = impl
        self.connect_timeout = connect_timeout
        #: relay websocket ping interval / pong timeout (docs/relay-protocol.md §Reliable mode);
        #: None disables
        self.keepalive = keepalive
        self.relay = environment_id is not None or is_relay_url(url)
        #: the relay websocket URL (a Noise registry names it in its answer)
        self.ws_url = url
        #: wss:// URLs: the server certificate is verified against the system store, or
        #: only against ``ca_file`` (docs/rendezvous.md §Security model).
        self.ssl_context = tls.for_url(url, ca_file)
        self.sessions: dict[str, ExecSession] = {}
        self._endpoint: RelayEndpoint | None = None
        self._link: Link | None = None
        self._direct_links: dict[str, Link] = {}
        self._reconnect_task: asyncio.Future | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> "HarnessClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Open the relay websocket (relay URLs; direct URLs connect per session)."""
        if not self.relay or self._link is not None:
            return
        if self._endpoint is None:
            self._endpoint = RelayEndpoint(OPENER, on_link_lost=self._on_link_lost)
        if self.environment_id is not None:
            await self._noise_connect()
        self._link = await connect_websocket(self.ws_url, self._endpoint.handler_for, impl=self.impl,
                                             timeout=self.connect_timeout, keepalive=self.keepalive,
                                             ssl_context=tls.for_url(self.ws_url, self._ca_file))

    async def _noise_connect(self) -> NoiseTarget:
        """Ask the registry's ``/connect`` (again); the answer names the websocket."""
        assert self.environment_id is not None
        target = await noise_connect(self.url, self.environment_id, self._auth_token, self.identity,
                                     timeout=self.connect_timeout, ca_file=self._ca_file)
        self.noise_target = target
        self.ws_url = target.url
        return target

    def _stream_mode(self) -> int:
        """The mode of a new relay stream: Noise in ``auto`` uses reliable streams only with
        an executor that announced them (a 0.171 one frames records as legacy Data)."""
        target = self.noise_target
        if target is not None and self.mode == "auto":
            return PENDING if "reliable" in target.relay_modes else LEGACY
        return _MODES[self.mode]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        for session in list(self.sessions.values()):
            session.close("harness client closed")
        if self._endpoint is not None:
            self._endpoint.close("harness client closed")  # the Resets go out before the socket closes
        links = ([self._link] if self._link is not None else []) + list(self._direct_links.values())
        for link in links:
            link.close(graceful=True)
        for link in links:
            try:
                await asyncio.wait_for(link.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                link.close()

    # ------------------------------------------------------------------ sessions
    async def open_session(self, resume_session_id: str | None = None,
                           initialize: bool = True, timeout: float = 10.0) -> ExecSession:
        """A new session (a relay stream, or a websocket for a direct URL), initialized.

        Noise: a handshake the executor refuses is tried once more after a new ``/connect``
        (the executor may have re-registered since: a new key or registration id)."""
        if self._closed:
            raise HarnessError("the harness client is closed")
        try:
            return await self._open_session(resume_session_id, initialize, timeout)
        except ConnectionLost as exc:
            if self.environment_id is None or exc.reason != NOISE_RESET or not initialize:
                raise
        self.noise_target = None
        return await self._open_session(resume_session_id, initialize, timeout)

    async def _open_session(self, resume_session_id: str | None, initialize: bool,
                            timeout: float) -> ExecSession:
        sid = str(uuid.uuid4())
        if self.relay:
            if self._link is None:
                await self.connect()
            assert self._endpoint is not None
            record = None
            if self.environment_id is not None:
                target = self.noise_target
                if target is None or target.stale:
                    target = await self._noise_connect()
                record = target.layer(sid, self.identity)
            session = ExecSession(_SessionPort(self._endpoint, sid), partial(self._stream_close, sid), sid)
            self.sessions[sid] = session
            self._endpoint.open_stream(sid, _RelaySessionHandler(self, session), self._stream_mode(),
                                       record=record)
        else:
            session = await self._open_direct(sid)
        if initialize:
            try:
                await session.initialize(self.client_name, resume_session_id, timeout)
            except BaseException:
                session.close("initialize failed")
                raise
        return session

    async def _open_direct(self, sid: str) -> ExecSession:
        holder: dict[str, Any] = {}

        class _Handler:
            def on_message(self, data: bytes | str, binary: bool) -> None:
                holder["session"].deliver(data)

            def on_close(self) -> None:
                holder["session"].lost("websocket closed")

            def on_write_paused(self, paused: bool) -> None:
                pass

        def factory(link: Link) -> _Handler:
            holder["link"] = link
            session = ExecSession(lambda data: link.send(data), lambda reason: link.close(graceful=True), sid)
            holder["session"] = session
            return _Handler()

        link = await connect_websocket(self.url, factory, impl=self.impl, timeout=self.connect_timeout,
                                       ssl_context=self.ssl_context)
        self._direct_links[sid] = link
        session = holder["session"]
        self.sessions[sid] = session
        return session

    # ------------------------------------------------------------------ relay plumbing
    def _stream_close(self, sid: str, reason: str) -> None:
        self.sessions.pop(sid, None)
        if self._endpoint is not None:
            self._endpoint.reset(sid, reason)

    def _on_link_lost(self) -> None:
        """The relay websocket dropped.  Legacy streams ended with it (the multiplexer closed
        them, as 0.131.0 does); reliable ones live on, so reconnect and let them Resume."""
        self._link = None
        if not self._closed and self.sessions and self._reconnect_task is None:
            self._reconnect_task = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.05
        refresh = False
        try:
            while not self._closed and self.sessions:
                try:
                    assert self._endpoint is not None
                    if refresh and self.environment_id is not None:
                        # The URL's harness token may have expired (the registry's are
                        # short-lived): ask /connect again.  The rendezvous binds a stream to
                        # the token that opened it, so streams opened under the old token end
                        # (stream_in_use) while new sessions work (docs/noise.md §Our harness
                        # client); hence the old URL is tried first.
                        await self._noise_connect()
                    refresh = True
                    self._link = await connect_websocket(self.ws_url, self._endpoint.handler_for,
                                                         impl=self.impl, timeout=self.connect_timeout,
                                                         keepalive=self.keepalive,
                                                         ssl_context=tls.for_url(self.ws_url, self._ca_file))
                    return
                except Exception:  # noqa: BLE001 - refused / 401 / timeout: try again
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            self._reconnect_task = None

    def stream_mode(self, session: ExecSession) -> str | None:
        """``"legacy"``, ``"pending"`` or ``"reliable"`` for a relay session (None if direct)."""
        if self._endpoint is None:
            return None
        return self._endpoint.stream_mode(session.label)


class _SessionPort(StreamPort):
    """A relay session's ``send``: stream errors become the harness's own exceptions."""

    __slots__ = ()

    def failed(self, payload: bytes, exc: Exception) -> None:
        if isinstance(exc, StreamClosed):
            raise ConnectionLost(str(exc)) from None
        raise HarnessError(str(exc)) from None


class _RelaySessionHandler:
    """A relay stream's handler: messages to the session, the stream's end to the client."""

    __slots__ = ("client", "session", "on_message")

    def __init__(self, client: HarnessClient, session: ExecSession) -> None:
        self.client = client
        self.session = session
        self.on_message = session.deliver

    def on_close(self, reason: str | None, by_peer: bool) -> None:
        self.client.sessions.pop(self.session.label, None)
        self.session.lost(reason)
