"""The node's one NATS connection: publish without awaiting, requests, subscriptions, the
``rdv_owner`` KV bucket, and the connection's counters (docs/rendezvous.md §Several nodes).

nats-py only offers ``async def publish``.  While connected it never suspends (the command
goes to the client's pending buffer and the flusher task is kicked), so :meth:`Bus.publish`
drives the coroutine by hand instead of paying a Task per frame; should it suspend (the
pending buffer is over ``publish_buffer``), the rest runs as a callback on the future it waits
for.  A publish the client refuses (disconnected with a full buffer, closed) is counted and
dropped: the routing layers above treat NATS as at-most-once anyway.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from typing import Any, Awaitable, Callable, Coroutine

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from .config import ClusterConfig, ClusterError

log = logging.getLogger("execrelay.rendezvous.cluster")

MsgHandler = Callable[[Msg], Awaitable[None]]


class Bus:
    """One nats-py client plus what the node counts about it."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.nc: Client | None = None
        self.kv: KeyValue | None = None
        #: event name -> count (reconnects, disconnects, publish_errors, slow_consumer_drops)
        self.events: Counter[str] = Counter()
        #: monotonic time the connection was lost (0.0 while connected)
        self.disconnected_since = 0.0
        self.on_reconnected: Callable[[], None] | None = None
        self.on_slow_consumer: Callable[[str], None] | None = None

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    @property
    def server(self) -> str:
        nc = self.nc
        url = getattr(nc, "connected_url", None) if nc is not None else None
        return url.geturl() if url is not None else "-"

    async def connect(self) -> None:
        cfg = self.config
        nc = self.nc = Client()
        try:
            # nats-py retries the first connect forever with unlimited reconnects: bound it.
            # Seconds may be fractions (nats-py only sleeps on them; its hints say int).
            timing: dict[str, Any] = {
                "connect_timeout": cfg.connect_timeout, "ping_interval": cfg.ping_interval,
                "reconnect_time_wait": cfg.reconnect_wait + random.uniform(0.0, cfg.reconnect_jitter)}
            await asyncio.wait_for(nc.connect(
                servers=cfg.servers, name=f"execrelay-rendezvous-{cfg.node_id}",
                max_reconnect_attempts=-1, max_outstanding_pings=cfg.max_outstanding_pings,
                pending_size=cfg.publish_buffer, allow_reconnect=True, error_cb=self._error,
                disconnected_cb=self._disconnected, reconnected_cb=self._reconnected,
                skip_subject_validation=True, **timing), 2 * cfg.connect_timeout)
        except Exception as exc:  # noqa: BLE001 - nats-py raises several unrelated types
            await self.close()
            if isinstance(exc, asyncio.TimeoutError):
                exc = TimeoutError(f"no answer within {2 * cfg.connect_timeout:g} s")
            raise ClusterError(f"cannot reach NATS at {','.join(cfg.servers)}: "
                               f"{exc or type(exc).__name__}") from None
        js = nc.jetstream()
        try:
            try:
                self.kv = await js.key_value(cfg.bucket)
            except BucketNotFoundError:
                self.kv = await js.create_key_value(bucket=cfg.bucket, history=1)
        except Exception as exc:  # noqa: BLE001
            await self.close()
            raise ClusterError(f"JetStream KV bucket {cfg.bucket!r} unavailable (is the server "
                               f"started with -js?): {exc or type(exc).__name__}") from None

    async def close(self) -> None:
        nc, self.nc = self.nc, None
        if nc is not None and not nc.is_closed:
            try:
                await asyncio.wait_for(nc.close(), 5.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - shutting down anyway
                pass

    # -- callbacks of nats-py -------------------------------------------------------------
    async def _error(self, exc: Exception) -> None:
        if isinstance(exc, nats.errors.SlowConsumerError):
            self.events["slow_consumer_drops"] += 1
            if self.on_slow_consumer is not None:
                self.on_slow_consumer(exc.subject)
            return
        self.events["errors"] += 1
        log.debug("nats: %s", exc)

    async def _disconnected(self) -> None:
        if self.kv is None:
            return  # still joining (or failed to): connect() reports it
        self.events["disconnects"] += 1
        if not self.disconnected_since:
            self.disconnected_since = time.monotonic()
            log.warning("lost NATS connection")

    async def _reconnected(self) -> None:
        self.events["reconnects"] += 1
        self.disconnected_since = 0.0
        log.warning("NATS connection back (%s)", self.server)
        if self.on_reconnected is not None:
            self.on_reconnected()

    # -- messages ---------------------------------------------------------------------------
    def publish(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Queue one message now (no await, no Task); refused ones are counted and dropped."""
        nc = self.nc
        if nc is None:
            self.events["publish_errors"] += 1
            return
        _drive(nc.publish(subject, data, headers=headers), self.events)

    def reply(self, msg: Msg, data: bytes) -> None:
        if msg.reply:
            self.publish(msg.reply, data)

    async def request(self, subject: str, data: bytes, headers: dict[str, str],
                      timeout: float) -> Msg:
        """Raises ``nats.errors.NoRespondersError`` when nobody subscribes to ``subject``."""
        nc = self.nc
        if nc is None:
            raise nats.errors.ConnectionClosedError
        return await nc.request(subject, data, timeout=timeout, headers=headers)

    async def subscribe(self, subject: str, handler: MsgHandler) -> Subscription:
        """A callback subscription with the lowered pending limits."""
        nc = self.nc
        if nc is None:
            raise nats.errors.ConnectionClosedError
        cfg = self.config
        return await nc.subscribe(subject, cb=handler, pending_msgs_limit=cfg.pending_msgs,
                                  pending_bytes_limit=cfg.pending_bytes)


async def unsubscribe(sub: Subscription) -> None:
    """Drop a subscription; a closed or reconnecting connection is not an error here."""
    try:
        await sub.unsubscribe()
    except Exception:  # noqa: BLE001 - BadSubscription, ConnectionClosed: nothing to undo
        pass


def _drive(coro: Coroutine[Any, Any, None], events: Counter[str]) -> None:
    """Run ``coro`` to its first suspension now; continue it when the awaited future is done."""
    try:
        fut = coro.send(None)
    except StopIteration:
        return
    except Exception:  # noqa: BLE001 - OutboundBufferLimit, ConnectionClosed, MaxPayload
        events["publish_errors"] += 1
        return
    fut.add_done_callback(lambda _f: _drive(coro, events))


class Subscriptions:
    """Subscriptions by key (an executor or stream id).  :meth:`ensure` is idempotent and
    returns once the SUB is queued on the connection (so a publish after it is ordered after
    it); :meth:`drop` also cancels a subscription still being made."""

    def __init__(self, bus: Bus, spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self.bus = bus
        self._spawn = spawn
        self.subs: dict[str, Subscription | None] = {}

    async def ensure(self, key: str, subject: str, handler: MsgHandler) -> None:
        if key in self.subs:
            return
        self.subs[key] = None
        try:
            sub = await self.bus.subscribe(subject, handler)
        except BaseException:
            if key in self.subs and self.subs[key] is None:
                del self.subs[key]
            raise
        if key in self.subs and self.subs[key] is None:
            self.subs[key] = sub
        else:  # dropped while it was being made
            await unsubscribe(sub)

    def drop(self, key: str) -> None:
        sub = self.subs.pop(key, None)
        if sub is not None:
            self._spawn(unsubscribe(sub))

    def __contains__(self, key: str) -> bool:
        return key in self.subs

    def __len__(self) -> int:
        return len(self.subs)
