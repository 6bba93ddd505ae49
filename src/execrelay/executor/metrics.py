"""Counters of one exec-server and their Prometheus rendering (docs/operations.md §Executor metrics).

Why it is shaped like this: the request path must stay cheap (issue 17: <= 0.1 us per
request).  Each method of the method table gets one preallocated :class:`MethodStats` (a
slotted object: attribute increments, no dict or tuple per request); the connection looks it
up instead of the bare handler and calls ``stats.begin(message)`` and ``stats.end(answer)``:
one CLOCK_MONOTONIC pair, the duration filed by its bit length (power-of-two slots: no search),
the byte counts added -- in C fields in the compiled build (``_reqstats_py.py`` compiled in
Cython pure Python mode with ``ext/executor/_reqstats_c.pxd``),
so nothing is allocated; the scrape folds the slots into the rendered buckets
(:data:`LATENCY_BOUND_BITS`).  Errors, pauses,
resets and registry failures are rare and counted where they happen.  Gauges (open
connections, sessions, processes, handles, queues) are computed at scrape time by walking the
server's tables, so they cost nothing per request.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .. import _accel
from ..buildinfo import metric_lines as build_info_lines
from ..promtext import Exposition, esc, reason_label

if TYPE_CHECKING:  # pragma: no cover
    from .methods import Handler

PREFIX = "execrelay_executor"

_reqstats = _accel.select("reqstats", "execrelay.executor._reqstats_c", "execrelay.executor._reqstats_py")
if TYPE_CHECKING:  # pragma: no cover
    from ._reqstats_py import MethodStats
else:
    #: one method's handler and counters (compiled: C counters, nothing allocated per request)
    MethodStats = _reqstats.MethodStats
#: a request's duration ``dt`` (ns) is counted in ``buckets[dt.bit_length()]``: slot ``b``
#: holds 2**(b-1) <= dt < 2**b
BIT_BUCKETS: int = _reqstats.BIT_BUCKETS
#: the rendered buckets' upper bounds are 2**k ns for these k: 4.1 us, 16 us, 66 us, 262 us,
#: 1.05 ms, 4.2 ms, 16.8 ms, 67 ms, 268 ms, 1.07 s, 4.3 s, 17.2 s (then +Inf)
LATENCY_BOUND_BITS: tuple[int, ...] = tuple(range(12, 35, 2))
LATENCY_BOUNDS_NS: tuple[int, ...] = tuple(1 << k for k in LATENCY_BOUND_BITS)
_BOUNDS_S = tuple(b / 1e9 for b in LATENCY_BOUNDS_NS)


def folded(buckets: list[int]) -> list[int]:
    """Per rendered bucket (non-cumulative, +Inf last) counts from the bit-length slots."""
    out = []
    lo = 0
    for k in LATENCY_BOUND_BITS:
        out.append(sum(buckets[lo:k + 1]))
        lo = k + 1
    out.append(sum(buckets[lo:]))
    return out

#: request outcomes (the ``outcome`` label): a result, a JSON-RPC error answer, a handler bug
#: answered with -32603, a request whose connection went away before it finished
OUTCOMES = ("ok", "error", "internal_error", "cancelled")

#: ``method`` label of requests for methods the table does not have (answered -32601), so a
#: client sending random names cannot grow the label set
UNKNOWN_METHOD = "unknown"

#: signature of the access-log hook: (connection, stats, request message, duration ns, outcome)
AccessHook = Callable[[Any, "MethodStats", dict, int, str], None]


class MethodTable(dict):
    """``ExecServer.handlers``: method name -> handler, kept in step with the per-method stats
    the connections dispatch on (adding a handler at run time, as tests do, just works)."""

    def __init__(self, handlers: Mapping[str, "Handler"], metrics: "ExecutorMetrics") -> None:
        super().__init__(handlers)
        self._metrics = metrics
        for name, handler in handlers.items():
            metrics.add_method(name, handler)

    def __setitem__(self, name: str, handler: "Handler") -> None:
        super().__setitem__(name, handler)
        self._metrics.add_method(name, handler)

    def __delitem__(self, name: str) -> None:
        super().__delitem__(name)
        self._metrics.methods.pop(name, None)

    def pop(self, name: str, *default: Any) -> Any:
        self._metrics.methods.pop(name, None)
        return super().pop(name, *default)


class ExecutorMetrics:
    """All counters of one :class:`~execrelay.executor.server.ExecServer`."""

    def __init__(self) -> None:
        #: what a connection dispatches on: method name -> stats (handler included)
        self.methods: dict[str, MethodStats] = {}
        #: every stats object ever created, so a removed method keeps its history
        self._all: dict[str, MethodStats] = {}
        self.unknown = MethodStats(UNKNOWN_METHOD, None)
        self._all[UNKNOWN_METHOD] = self.unknown
        #: JSON-RPC bytes that belong to no request: notifications both ways, malformed input
        self.other_bytes_in = 0
        self.other_bytes_out = 0
        self.connections_total = 0
        #: times a connection stopped reading (requests piled up behind a slow one, or the
        #: peer stopped reading our output) and times its output buffer crossed the mark
        self.read_pauses = 0
        self.write_pauses = 0
        #: requests refused with -32001 because QUEUE_PAUSE waited behind a running request
        self.overloaded = 0
        # remote mode
        self.registrations = 0
        self.registry_errors: Counter[str] = Counter()
        self.relay_connects = 0
        self.resets: Counter[tuple[str, str]] = Counter()  # (reason, direction) -> count
        #: scrape-time gauges: name -> (help, fn returning the value or label->value pairs)
        self._gauges: dict[str, tuple[str, Callable[[], Any]]] = {}
        self._info: dict[str, str] = {}

    # ---------------------------------------------------------------- methods
    def add_method(self, name: str, handler: "Handler") -> MethodStats:
        stats = self._all.get(name)
        if stats is None:
            stats = self._all[name] = MethodStats(name, handler)
            stats.log = self.unknown.log
        stats.handler = handler
        self.methods[name] = stats
        return stats

    def set_access_hook(self, hook: AccessHook | None) -> None:
        """Turn the access log on (a hook) or off (None) for every method."""
        for stats in self._all.values():
            stats.log = hook

    # ---------------------------------------------------------------- events
    def reset(self, reason: str, direction: str) -> None:
        """A relay stream Reset: ``direction`` is ``sent`` or ``received``."""
        self.resets[(reason_label(reason), direction)] += 1

    def registry_error(self, kind: str) -> None:
        """A failed registration (``auth``, ``http``, ``network``) or relay websocket connect
        (``connect``); the executor retries after its backoff."""
        self.registry_errors[kind] += 1

    def set_gauge_source(self, name: str, help_: str, fn: Callable[[], Any]) -> None:
        """``fn()`` at scrape time: a number, or an iterable of (labels, number)."""
        self._gauges[name] = (help_, fn)

    def set_info(self, **labels: str) -> None:
        """Labels of the constant ``info`` gauge (mode, dialect)."""
        self._info.update(labels)

    # ---------------------------------------------------------------- render
    def _all_stats(self) -> list[MethodStats]:
        return [self._all[name] for name in sorted(self._all)]

    def render(self) -> str:
        exp = Exposition(PREFIX)
        exp.extend(build_info_lines())
        family = exp.family
        if self._info:
            labels = ",".join(f'{k}="{esc(v)}"' for k, v in sorted(self._info.items()))
            family("info", "gauge", "Constant 1; labels describe this executor.", [(f"{{{labels}}}", 1)])
        # the methods served now, and any other that answered requests (removed at run time)
        stats = [s for s in self._all_stats() if s.count or s.name in self.methods]
        samples: list[tuple[str, float]] = []
        for s in stats:
            count = s.count
            ok = count - s.errors - s.internal - s.cancelled
            for outcome, n in zip(OUTCOMES, (ok, s.errors, s.internal, s.cancelled)):
                if n or outcome == "ok":
                    samples.append((f'{{method="{esc(s.name)}",outcome="{outcome}"}}', n))
        family("requests_total", "counter", "JSON-RPC requests answered, by method and outcome.", samples)
        exp.histogram("request_duration_seconds",
                      "Time from a request's arrival to its answer being handed to the transport.",
                      _BOUNDS_S, ((f'method="{esc(s.name)}"', folded(s.buckets), s.sum_ns / 1e9)
                                  for s in stats if s.count))
        bytes_in = self.other_bytes_in + sum(s.bytes_in for s in stats)
        bytes_out = self.other_bytes_out + sum(s.bytes_out for s in stats)
        family("bytes_total", "counter", "JSON-RPC message bytes, by direction.",
               [('{direction="in"}', bytes_in), ('{direction="out"}', bytes_out)])
        family("connections_opened_total", "counter",
               "JSON-RPC connections opened (websocket, stdio or relay stream).", [("", self.connections_total)])
        family("backpressure_pauses_total", "counter",
               "Times a connection stopped reading, or its output buffer filled, by kind.",
               [('{kind="read"}', self.read_pauses), ('{kind="write"}', self.write_pauses)])
        family("requests_refused_total", "counter",
               "Requests refused with -32001 because too many waited behind a running one.",
               [("", self.overloaded)])
        for name, (help_, fn) in sorted(self._gauges.items()):
            value = fn()
            family(name, "gauge", help_, _gauge_samples(value))
        family("registrations_total", "counter", "Successful registrations with the registry (remote mode).",
               [("", self.registrations)])
        family("registry_errors_total", "counter",
               "Failed registrations (auth, http, network) and relay websocket connects (connect).",
               [(f'{{kind="{k}"}}', self.registry_errors[k]) for k in ("auth", "http", "network", "connect")])
        family("relay_reconnects_total", "counter",
               "Relay websocket connections after the first (each follows a lost connection).",
               [("", max(0, self.relay_connects - 1))])
        family("resets_total", "counter", "Relay stream Resets, by reason and direction.",
               [(f'{{reason="{esc(r)}",direction="{d}"}}', n) for (r, d), n in sorted(self.resets.items())])
        return exp.render()


def _gauge_samples(value: Any) -> Iterable[tuple[str, float]]:
    if isinstance(value, (int, float)):
        return [("", value)]
    return list(value)
