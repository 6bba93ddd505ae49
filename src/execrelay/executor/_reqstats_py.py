# cython: annotation_typing=False
"""Per-method request counters, written once: the pure build runs this file as is, and
``setup.py`` compiles the same file (typed by ``ext/executor/_reqstats_c.pxd``, Cython "pure
Python mode") into ``execrelay.executor._reqstats_c``.

Compiled, the counters are C fields, the clock is ``clock_gettime(CLOCK_MONOTONIC)`` called in
C and the slot one count of leading zeros, so counting a request allocates nothing; in pure Python
it allocates several int objects (nanosecond times, sums and byte totals are far above the
small-int cache) (docs/operations.md §Cost on the request path).  The two builds differ only
in the ``cython.compiled`` branches (a constant: Cython drops the other branch; the pure
build does not need Cython installed).  Compiled, ``_buckets`` is a C array: always index
it through ``self``.
"""
from __future__ import annotations

from time import monotonic_ns
from typing import Any, Callable

try:
    import cython  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:          # the pure build runs without Cython installed
    from types import SimpleNamespace
    cython = SimpleNamespace(compiled=False)

if cython.compiled:
    from cython.cimports.posix.time import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        CLOCK_MONOTONIC, clock_gettime, timespec)

#: slots of the duration histogram: a duration dt (ns) is counted in slot dt.bit_length()
BIT_BUCKETS = 65


def _now() -> int:
    """CLOCK_MONOTONIC in ns, as ``time.monotonic_ns`` reads it (compiled: no int object)."""
    if cython.compiled:
        ts = timespec(tv_sec=0, tv_nsec=0)   # a C struct on the stack (typed in the .pxd)
        clock_gettime(CLOCK_MONOTONIC, cython.address(ts))
        return ts.tv_sec * 1000000000 + ts.tv_nsec
    else:
        return monotonic_ns()


def _slot(v: int) -> int:
    """``v.bit_length()`` of a duration ``v >= 0``: its histogram slot (compiled: one count of
    leading zeros, ``_clz64`` declared in the .pxd, instead of a Python method call)."""
    if cython.compiled:
        # _clz64: a C builtin declared in the .pxd
        return 0 if v <= 0 else 64 - _clz64(v)  # type: ignore[name-defined]  # noqa: F821
    else:
        return v.bit_length()


if not cython.compiled:
    # the pure build calls the builtins themselves: one Python call less for each (compiled,
    # Cython drops this branch and the functions above are C)
    _now = monotonic_ns  # noqa: F811
    _slot = int.bit_length  # type: ignore[assignment]  # noqa: F811


class MethodStats:
    """The handler of one JSON-RPC method and its counters (one per method, allocated once).

    ``begin(message)`` when a request arrives, ``end(answer)`` once its answer is sent (a sync
    handler: nothing runs in between); an async request keeps ``started`` and finishes with
    ``end_since(t0, answer)``.  ``buckets[b]`` counts the requests whose duration in ns has
    bit length ``b``; their sum is the number answered, whatever the outcome.
    """

    name: str
    handler: Any
    log: Callable[..., None] | None
    errors: int
    internal: int
    cancelled: int
    started: int
    last_ns: int
    sum_ns: int
    bytes_in: int
    bytes_out: int
    _buckets: list[int]

    __slots__ = ("name", "handler", "log", "errors", "internal", "cancelled", "started", "last_ns",
                 "sum_ns", "bytes_in", "bytes_out", "_buckets")

    def __init__(self, name: str, handler: Any) -> None:
        self.name = name
        self.handler = handler
        #: the access-log hook while ``--access-log`` is on, else None
        self.log = None
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
        self._buckets = [0] * 65   # BIT_BUCKETS, a literal: Cython fills the C array from it

    def begin(self, message: bytes | str) -> None:
        """A request arrived: start its clock, count its bytes."""
        self.started = _now()
        self.bytes_in += len(message)

    def end(self, data: bytes) -> None:
        """Its answer ``data`` was sent: file the duration since :meth:`begin`."""
        self._observe(_now() - self.started, len(data))

    def end_error(self, data: bytes) -> None:
        """:meth:`end` for a request answered with a JSON-RPC error ``data`` (one call, not a
        counter update from Python plus :meth:`end`: unknown methods take this path)."""
        self.errors += 1
        self._observe(_now() - self.started, len(data))

    def end_since(self, t0: int, nbytes: int) -> None:
        """An async request started at ``t0`` (``started``) ended with ``nbytes`` sent."""
        self._observe(_now() - t0, nbytes)

    def add_bytes_in(self, nbytes: int) -> None:
        self.bytes_in += nbytes

    def _observe(self, dt: int, nbytes: int) -> None:
        """File one duration (a clock step back counts as 0) and the bytes sent."""
        if dt < 0:
            dt = 0
        self._buckets[_slot(dt)] += 1
        self.sum_ns += dt
        self.bytes_out += nbytes
        self.last_ns = dt

    @property
    def buckets(self) -> list[int]:
        return [self._buckets[i] for i in range(65)]

    @property
    def count(self) -> int:
        n = 0
        for i in range(65):
            n += self._buckets[i]
        return n
