"""The two pieces of rendezvous state a multi-node version replaces.

- :class:`ExecutorDirectory`: who owns an executor id (which socket, which registration) and
  which registration a short-lived executor URL token belongs to.  On NATS this becomes the
  JetStream KV ``rdv_owner`` (claim = KV put, fencing by revision).
- :class:`StreamTable`: ``stream_id -> route`` for one executor.  On NATS this becomes
  subject interest (``rdv.s.<stream_id>``).

The router only talks to these interfaces; the in-memory versions below are the single-node
implementation.  ``StreamTable.get`` is on the per-frame path, so the local version exposes a
bare ``dict.get`` (no Python-level call in between).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Iterator, Protocol


class StreamTable(Protocol):
    """Routes of one executor: stream_id -> route object (owned by the router)."""

    get: Callable[[str], Any]

    def bind(self, stream_id: str, route: Any) -> None: ...
    def unbind(self, stream_id: str) -> Any: ...
    def __len__(self) -> int: ...
    def routes(self) -> list[Any]: ...


class LocalStreamTable:
    """A dict, with ``get`` bound straight to ``dict.get`` for the hot path."""

    __slots__ = ("_routes", "get")

    def __init__(self) -> None:
        self._routes: dict[str, Any] = {}
        self.get = self._routes.get

    def bind(self, stream_id: str, route: Any) -> None:
        self._routes[stream_id] = route

    def unbind(self, stream_id: str) -> Any:
        return self._routes.pop(stream_id, None)

    def __len__(self) -> int:
        return len(self._routes)

    def routes(self) -> list[Any]:
        return list(self._routes.values())

    def routes_dict(self) -> dict[str, Any]:
        """The dict itself (read, never written, by the compiled frame path through the hub)."""
        return self._routes


class SharedNoiseRegistrations(Protocol):
    """Noise registrations shared by the nodes of a cluster (docs/rendezvous.md §Several
    nodes); a single node keeps them in the registry's own table and has none."""

    async def put(self, environment_id: str, registration: Any, bearer: str) -> None: ...
    async def get(self, environment_id: str) -> Any: ...


class ExecutorDirectory(Protocol):
    """Executor ownership and registrations."""

    def owner(self, executor_id: str) -> tuple[Any, str] | None: ...
    def claim(self, executor_id: str, link: Any, registration: str) -> tuple[str, Any]: ...
    def release(self, executor_id: str, link: Any) -> bool: ...
    def remember_registration(self, url_token_fp: str, registration: str, ttl: float) -> None: ...
    def registration_of(self, url_token_fp: str) -> str | None: ...
    def __iter__(self) -> Iterator[str]: ...


class LocalExecutorDirectory:
    """Single-node ownership: last writer wins, but only with the same registration."""

    def __init__(self, max_registrations: int = 100_000) -> None:
        self._owners: dict[str, tuple[Any, str]] = {}
        # OrderedDict: popping the oldest is O(1) (a plain dict rescans deleted slots).
        self._registrations: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max_registrations = max_registrations

    def owner(self, executor_id: str) -> tuple[Any, str] | None:
        return self._owners.get(executor_id)

    def claim(self, executor_id: str, link: Any, registration: str) -> tuple[str, Any]:
        """Return ``("new", None)``, ``("takeover", old_link)`` or ``("refused", current)``.

        Only the registration that owns the id may replace its socket: a restarted or
        reconnecting executor presents the same registration, an impostor with another valid
        token for the id does not.
        """
        current = self._owners.get(executor_id)
        if current is None:
            self._owners[executor_id] = (link, registration)
            return "new", None
        old_link, old_reg = current
        if old_reg != registration:
            return "refused", old_link
        self._owners[executor_id] = (link, registration)
        return "takeover", old_link

    def release(self, executor_id: str, link: Any) -> bool:
        current = self._owners.get(executor_id)
        if current is not None and current[0] is link:
            del self._owners[executor_id]
            return True
        return False

    def remember_registration(self, url_token_fp: str, registration: str, ttl: float) -> None:
        """Amortised O(1): entries are kept in insertion order, which (one ``ttl`` for all)
        is expiry order, so expired ones are popped from the front and, when still full,
        the oldest live one goes.  Never a scan of all registrations."""
        now = time.monotonic()
        regs = self._registrations
        while regs:
            oldest = next(iter(regs))
            if regs[oldest][1] > now and len(regs) < self._max_registrations:
                break
            regs.popitem(last=False)
        regs.pop(url_token_fp, None)  # re-inserted at the end: order stays expiry order
        regs[url_token_fp] = (registration, now + ttl)

    def registration_of(self, url_token_fp: str) -> str | None:
        entry = self._registrations.get(url_token_fp)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._owners))
