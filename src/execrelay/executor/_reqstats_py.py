"""Pure twin of ``ext/executor/_reqstats_c.pyx``: per-method request counters.

Same class, same numbers; the compiled one keeps the counters in C fields so counting a
request allocates nothing (docs/operations.md §Cost on the request path).
"""
from __future__ import annotations

from time import monotonic_ns as _now
from typing import Any, Callable

#: slots of the duration histogram: a duration dt (ns) is counted in slot dt.bit_length()
BIT_BUCKETS = 65


class MethodStats:
    """The handler of one JSON-RPC method and its counters (one per method, allocated once).

    ``begin(message)`` when a request arrives, ``end(answer)`` once its answer is sent (a sync
    handler: nothing runs in between); an async request keeps ``started`` and finishes with
    ``end_since(t0, answer)``.  ``buckets[b]`` counts the requests whose duration in ns has
    bit length ``b``; their sum is the number answered, whatever the outcome.
    """

    __slots__ = ("name", "handler", "log", "errors", "internal", "cancelled", "started", "last_ns",
                 "sum_ns", "bytes_in", "bytes_out", "_buckets")

    def __init__(self, name: str, handler: Any) -> None:
        self.name = name
        self.handler = handler
        #: the access-log hook while ``--access-log`` is on, else None
        self.log: Callable[..., None] | None = None
        self.errors = 0
        self.internal = 0
        self.cancelled = 0
        #: the clock (ns) of the last :meth:`begin`
        self.started = 0
        #: duration of the last request filed (for the access log)
        self.last_ns = 0
        self.sum_ns = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._buckets = [0] * BIT_BUCKETS

    def begin(self, message: bytes | str) -> None:
        """A request arrived: start its clock, count its bytes."""
        self.started = _now()
        self.bytes_in += len(message)

    def end(self, data: bytes) -> None:
        """Its answer ``data`` was sent: file the duration since :meth:`begin`."""
        # inlined rather than shared with end_since: one Python call less per request
        dt = _now() - self.started
        self._buckets[dt.bit_length()] += 1
        self.sum_ns += dt
        self.bytes_out += len(data)
        self.last_ns = dt

    def end_since(self, t0: int, nbytes: int) -> None:
        """An async request started at ``t0`` (``started``) ended with ``nbytes`` sent."""
        dt = max(0, _now() - t0)
        self._buckets[dt.bit_length()] += 1
        self.sum_ns += dt
        self.bytes_out += nbytes
        self.last_ns = dt

    def add_bytes_in(self, nbytes: int) -> None:
        self.bytes_in += nbytes

    @property
    def buckets(self) -> list[int]:
        return list(self._buckets)

    @property
    def count(self) -> int:
        return sum(self._buckets)
