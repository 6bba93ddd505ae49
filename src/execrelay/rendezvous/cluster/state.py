"""The NATS-backed versions of the router's two state interfaces
(:mod:`execrelay.rendezvous.directory`; docs/rendezvous.md §Several nodes).

- :class:`ClusterDirectory` keeps the local directory (sockets on this node, registrations)
  and tells the node about local executor sockets coming and going, which is when the
  ``rdv_owner`` KV entry is written (with the socket's registration).  Registrations also go
  to the ``rdv_reg`` bucket (:mod:`.registrations`); before an executor socket is accepted,
  :meth:`ClusterDirectory.admit` fetches what another node knows: the URL token's
  registration, and the registration of a live owner elsewhere, which ``owner`` then reports
  so the router refuses another registration with 409 exactly as on one node.  Links to executors on other nodes
  (:class:`~.links.RemoteExecutor`) are not owners: they never enter the local table, and a
  local socket for the same id retires one (the node does, before the router installs the
  socket).
- :class:`ClusterStreamTable` is the local table plus a callback when a stream is unbound (the
  node drops its ``rdv.s.<stream id>`` subscription).  ``get`` is still ``dict.get``.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, Iterator

from nats.js.errors import KeyNotFoundError

from ..directory import LocalExecutorDirectory, LocalStreamTable
from . import subjects
from .registrations import READ_TIMEOUT, SharedRegistrations

if TYPE_CHECKING:
    from .node import ClusterNode

log = logging.getLogger("execrelay.rendezvous.cluster")


class ClusterDirectory:
    def __init__(self, local: LocalExecutorDirectory, node: "ClusterNode",
                 shared: SharedRegistrations) -> None:
        self.local = local
        self.node = node
        self.shared = shared
        #: executor id -> registration of its live owner on another node, set by :meth:`admit`
        #: for the ``owner`` call that follows it
        self._elsewhere: dict[str, str] = {}

    def owner(self, executor_id: str) -> tuple[Any, str] | None:
        local = self.local.owner(executor_id)
        elsewhere = self._elsewhere.pop(executor_id, None)
        if local is None and elsewhere is not None:
            return None, elsewhere
        return local

    async def admit(self, executor_id: str, url_token_fp: str) -> None:
        """Before a socket for ``executor_id`` is checked: learn its URL token's registration
        from the bucket on a local miss, and the registration of a live owner on another node
        (the ``rdv_owner`` entry of a node whose heartbeats arrive); both reads at once."""
        self._elsewhere.pop(executor_id, None)
        known = self.local.registration_of(url_token_fp) is not None
        check_owner = self.local.owner(executor_id) is None and self.node.bus.connected
        if known and not check_owner:
            return
        found, owner = await asyncio.gather(
            _none() if known else self.shared.registration_of(url_token_fp),
            self._live_owner_registration(executor_id) if check_owner else _none())
        if found is not None:
            self.local.remember_registration(url_token_fp, found[0], found[1])
        if owner is not None:
            self._elsewhere[executor_id] = owner

    async def _live_owner_registration(self, executor_id: str) -> str | None:
        kv = self.node.bus.kv
        if kv is None:
            return None
        try:
            entry = await asyncio.wait_for(kv.get(subjects.owner_key(executor_id)), READ_TIMEOUT)
        except KeyNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - NATS away: as on one node without an owner
            log.info("owner of %r unreadable: %r", executor_id, exc)
            return None
        value = subjects.loads(entry.value or b"")
        holder, registration = value.get("node"), value.get("reg")
        if isinstance(registration, str) and isinstance(holder, str) \
                and self.node.node_alive(holder):
            return registration
        return None

    def claim(self, executor_id: str, link: Any, registration: str) -> tuple[str, Any]:
        if link.remote:
            return "new", None
        outcome, old = self.local.claim(executor_id, link, registration)
        if outcome != "refused":
            self.node.executor_claimed(link, registration)
        return outcome, old

    def release(self, executor_id: str, link: Any) -> bool:
        if link.remote:
            return True
        released = self.local.release(executor_id, link)
        if released:
            self.node.executor_released(link)
        return released

    def remember_registration(self, url_token_fp: str, registration: str, ttl: float) -> None:
        self.local.remember_registration(url_token_fp, registration, ttl)
        self.shared.remember(url_token_fp, registration, ttl)

    def registration_of(self, url_token_fp: str) -> str | None:
        return self.local.registration_of(url_token_fp)

    def __iter__(self) -> Iterator[str]:
        return iter(self.local)


async def _none() -> None:
    return None


class ClusterStreamTable(LocalStreamTable):
    __slots__ = ("_on_unbind",)

    def __init__(self, on_unbind: Callable[[str, Any], None]) -> None:
        super().__init__()
        self._on_unbind = on_unbind

    def unbind(self, stream_id: str) -> Any:
        route = super().unbind(stream_id)
        if route is not None:
            self._on_unbind(stream_id, route)
        return route
