"""One websocket as the router sees it: batched, bounded outbound writes.

aiohttp's ``send_bytes`` writes one websocket frame per ``transport.write`` (a syscall each
when the socket is writable).  The router instead appends the frame header and the frame,
unmodified, to a list and flushes the list with one ``transport.writelines`` per loop
iteration.  Server-to-client frames are unmasked, so the header is two to ten bytes.

Bounded: ``queued_bytes`` (our list plus the transport's buffer) above ``hard_limit``, or
above ``limit`` for longer than ``slow_after`` seconds, calls ``on_overflow(link)``; the router
decides what that means (a harness is cut off).  The soft limit with a time allowance spares
a harness that reads, only slower than a burst arrives; one that stops reading is cut off.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .. import _accel
from .._wsframe import SMALL_BINARY, binary_header

#: the rendezvous's per-frame entry and the C fields it reads: compiled against the installed
#: picows (``ext/rendezvous/_rdvfast_c.pyx``) or the Python twin (``_rdvfast_py.py``)
rdvfast = _accel.select("rdvfast", "execrelay.rendezvous._rdvfast_c", "execrelay.rendezvous._rdvfast_py")
if TYPE_CHECKING:  # pragma: no cover
    from ._rdvfast_py import LinkCore
else:
    LinkCore = rdvfast.LinkCore


class Link(LinkCore):
    """A harness or executor websocket (the fields the per-frame path uses are
    :class:`LinkCore`'s: C fields when the compiled twin is used)."""

    #: True for the cluster's stand-ins for a socket on another node (docs/rendezvous.md
    #: §Several nodes); a class attribute, so a local socket pays nothing for it.
    remote = False

    __slots__ = ("role", "executor_id", "ws", "transport", "limit", "on_overflow", "streams",
                 "close_reason", "label", "_loop", "_tbuf", "hard_limit", "slow_after", "_over_since",
                 "drain", "_closed_waiter", "credential", "rate_tokens", "rate_at", "refused",
                 "refused_at", "__weakref__")

    def __init__(self, role: str, executor_id: str, ws: Any, transport: Any, limit: int,
                 on_overflow: Callable[["Link"], None] | None = None, label: str = "",
                 hard_limit: int | None = None, slow_after: float = 0.0) -> None:
        self.role = role
        self.executor_id = executor_id
        self.ws = ws
        self.transport = transport
        self.limit = limit
        self.hard_limit = hard_limit if hard_limit is not None else limit
        self.slow_after = slow_after
        self._over_since = 0.0
        self.on_overflow = on_overflow
        #: stream ids bound to this (harness) socket; insertion ordered.
        self.streams: dict[str, None] = {}
        #: refused new streams on this (harness) socket, draining at the creation rate, and when
        #: it was last updated (the router's flood rule)
        self.refused = 0.0
        self.refused_at = 0.0
        #: why the router closed this socket (None: the peer went away on its own).
        self.close_reason: str | None = None
        self.closed = False
        self.label = label
        #: the router's per-executor state, set when the router attaches the link.
        self.hub: Any = None
        #: Returns once the transport's buffer is below its low-water mark (at once when it
        #: is already); set by the server for sockets whose drain someone waits for.
        self.drain: Callable[[], Awaitable[None]] | None = None
        self._closed_waiter: asyncio.Future[None] | None = None
        #: fingerprint of the (canonical) token this socket authenticated with; an orphaned
        #: reliable stream may only be resumed by a socket with the same credential.
        self.credential = ""
        #: bytes this (harness) socket may still route before it checks the executor's
        #: backlog; set to 0 by the router when that backlog crosses its limit.
        self.budget = 0
        #: stream-creation token bucket (docs/rendezvous.md §Security model).
        self.rate_tokens = 0.0
        self.rate_at = 0.0
        self._out: list[bytes] = []
        self._out_bytes = 0
        #: ``limit`` minus what the transport held at the last flush: this tick's sends may
        #: add that much before the limit is crossed (one comparison per frame, no call).
        self._room = limit
        self._scheduled = False
        self._loop = asyncio.get_running_loop()
        tbuf = getattr(transport, "get_write_buffer_size", None)
        self._tbuf: Callable[[], int] = tbuf if tbuf is not None else (lambda: 0)

    # -- the per-frame path -------------------------------------------------------------
    # send(frame) is LinkCore's (the per-frame path: C in the compiled twin)

    def _past_room(self) -> None:
        """This tick's sends went past ``_room``: look at the transport's buffer again (called
        by :meth:`LinkCore.send`)."""
        queued = self._out_bytes + self._tbuf()
        if queued > self.limit:
            self._over(queued)
        else:  # the transport drained since the last flush
            self._room = self.limit - (queued - self._out_bytes)

    def flush(self) -> None:
        """Write everything queued with one ``writelines`` (one syscall when writable)."""
        self._scheduled = False
        if not self._out:
            return
        out, self._out = self._out, []
        self._out_bytes = 0
        t = self.transport
        if self.closed or t is None or t.is_closing():
            return
        t.writelines(out)
        queued = self._tbuf()
        self._room = self.limit - queued
        if queued > self.limit:
            self._over(queued)
        else:
            self._over_since = 0.0

    async def wait_writable(self, watch: "Link", timeout: float) -> None:
        """Wait until this socket's transport takes writes again, or ``watch`` closes.

        Flushes what is queued first; then waits (at most ``timeout`` seconds) for the
        transport's buffer to fall below its low-water mark, an event the transport signals
        (no polling).  Returns at once when it is below already, and when this socket goes
        away.  ``watch`` is the socket whose reads wait meanwhile: once it is closed, waiting
        is pointless.
        """
        if self._out:
            self.flush()
        drain = self.drain
        if drain is None or self.closed or watch.closed:
            return
        drained = asyncio.ensure_future(drain())
        # Never cancelled (cancelling it would cancel the transport protocol's shared
        # waiter); a lost connection ends it with an error nobody needs.
        drained.add_done_callback(_ignore_result)
        await asyncio.wait((drained, watch._closing()), timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)

    def _closing(self) -> asyncio.Future[None]:
        """A future done when :meth:`abort` or :meth:`close` closes this socket."""
        if self._closed_waiter is None:
            self._closed_waiter = self._loop.create_future()
            if self.closed:
                self._closed_waiter.set_result(None)
        return self._closed_waiter

    def _set_closed(self) -> None:
        self.closed = True
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def queued_bytes(self) -> int:
        return self._out_bytes + (self._tbuf() if not self.closed else 0)

    def _over(self, queued: int) -> None:
        """Above the soft limit: tolerate it for ``slow_after`` seconds, never above hard."""
        if queued <= self.hard_limit and self.slow_after > 0:
            now = self._loop.time()
            if not self._over_since:
                self._over_since = now
                return
            if now - self._over_since < self.slow_after:
                return
        self._overflow()

    def _overflow(self) -> None:
        cb = self.on_overflow
        if cb is not None and not self.closed:
            cb(self)

    # -- closing ------------------------------------------------------------------------
    def abort(self, reason: str) -> None:
        """Drop the connection now, unflushed data included (a peer that stopped reading)."""
        if self.close_reason is None:
            self.close_reason = reason
        self._set_closed()
        self._out = []
        self._out_bytes = 0
        t = self.transport
        if t is not None and not t.is_closing():
            t.abort()

    async def close(self, reason: str, code: int = 1000) -> None:
        """Flush what is queued, then close the websocket politely."""
        if self.close_reason is None:
            self.close_reason = reason
        if not self.closed:
            self.flush()
            self._set_closed()
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]), 2.0)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            t = self.transport
            if t is not None and not t.is_closing():
                t.abort()

    def __repr__(self) -> str:
        return f"<Link {self.role} {self.executor_id!r} {self.label} streams={len(self.streams)}>"


def _ignore_result(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()
