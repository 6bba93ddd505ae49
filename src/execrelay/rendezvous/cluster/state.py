"""The NATS-backed versions of the router's two state interfaces
(:mod:`execrelay.rendezvous.directory`; docs/rendezvous.md §Several nodes).

- :class:`ClusterDirectory` keeps the local directory (sockets on this node, registrations)
  and tells the node about local executor sockets coming and going, which is when the
  ``rdv_owner`` KV entry is written.  Links to executors on other nodes
  (:class:`~.links.RemoteExecutor`) are not owners: they never enter the local table, and a
  local socket for the same id retires one (the node does, before the router installs the
  socket).
- :class:`ClusterStreamTable` is the local table plus a callback when a stream is unbound (the
  node drops its ``rdv.s.<stream id>`` subscription).  ``get`` is still ``dict.get``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..directory import LocalExecutorDirectory, LocalStreamTable

if TYPE_CHECKING:
    from .node import ClusterNode


class ClusterDirectory:
    def __init__(self, local: LocalExecutorDirectory, node: "ClusterNode") -> None:
        self.local = local
        self.node = node

    def owner(self, executor_id: str) -> tuple[Any, str] | None:
        return self.local.owner(executor_id)

    def claim(self, executor_id: str, link: Any, registration: str) -> tuple[str, Any]:
        if link.remote:
            return "new", None
        outcome, old = self.local.claim(executor_id, link, registration)
        if outcome != "refused":
            self.node.executor_claimed(link)
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

    def registration_of(self, url_token_fp: str) -> str | None:
        return self.local.registration_of(url_token_fp)

    def __iter__(self) -> Iterator[str]:
        return iter(self.local)


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
