"""Counters of the rendezvous and their Prometheus text rendering.

Hot-path counters are plain attributes (an attribute increment is the cheapest thing Python
offers per frame); rare events (resets, drops, bad frames) go to small dicts keyed by label.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Callable

from ..buildinfo import metric_lines as build_info_lines
from ..promtext import Exposition
from ..promtext import esc as _esc
from ..promtext import reason_label as _reason_label
from .link import rdvfast

if TYPE_CHECKING:  # pragma: no cover
    from ._rdvfast_py import MetricsCore
else:
    MetricsCore = rdvfast.MetricsCore

PREFIX = "execrelay_rendezvous"


class Metrics(MetricsCore):
    """All counters of one rendezvous process (the per-frame ones are :class:`MetricsCore`'s:
    C fields when the compiled per-frame entry is used)."""

    __slots__ = ("connections", "connections_total", "auth_failures", "registrations",
                 "streams_opened", "resets", "queue_drops", "bad_frames", "dropped",
                 "takeovers", "streams_refused", "connections_dropped", "_gauges",
                 "_sections")

    def __init__(self) -> None:
        self.frames_to_executor = 0
        self.frames_to_harness = 0
        self.bytes_to_executor = 0
        self.bytes_to_harness = 0
        self.connections: Counter[str] = Counter()        # role -> currently open
        self.connections_total: Counter[str] = Counter()  # role -> accepted since start
        self.auth_failures: Counter[str] = Counter()      # endpoint -> refusals
        self.registrations = 0
        self.streams_opened = 0
        self.resets: Counter[tuple[str, str]] = Counter()  # (reason, sent_to) -> count
        self.queue_drops: Counter[str] = Counter()        # queue -> frames dropped
        self.bad_frames: Counter[str] = Counter()         # reason -> frames
        self.dropped: Counter[str] = Counter()            # reason -> frames not routed
        self.takeovers = 0
        self.streams_refused: Counter[str] = Counter()   # reason -> new streams refused
        self.connections_dropped: Counter[str] = Counter()  # reason -> connections dropped
        self._gauges: dict[str, object] = {}
        self._sections: list[Callable[[Exposition], None]] = []

    def reset_sent(self, reason: str, to: str) -> None:
        self.resets[(_reason_label(reason), to)] += 1

    def set_gauge_source(self, name: str, fn: object) -> None:
        """Register a callable returning a gauge value at scrape time (e.g. stream count)."""
        self._gauges[name] = fn

    def add_section(self, render: Callable[[Exposition], None]) -> None:
        """Append more families at scrape time (``render(exp)`` adds families to the scrape's
        :class:`~execrelay.promtext.Exposition`): the cluster's counters (docs/rendezvous.md §Several
        nodes) without a cost for single-node processes."""
        self._sections.append(render)

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        exp = Exposition(PREFIX)
        exp.extend(build_info_lines())
        family = exp.family

        roles = ("executor", "harness")
        family("connections", "gauge", "Open websocket connections by role.",
               [(f'{{role="{r}"}}', self.connections[r]) for r in roles])
        family("connections_total", "counter", "Websocket connections accepted by role.",
               [(f'{{role="{r}"}}', self.connections_total[r]) for r in roles])
        family("auth_failures_total", "counter", "Requests refused with 401 by endpoint.",
               [(f'{{endpoint="{_esc(e)}"}}', n) for e, n in sorted(self.auth_failures.items())])
        family("registrations_total", "counter", "Successful executor registrations.",
               [("", self.registrations)])
        family("takeovers_total", "counter", "Executor sockets replaced by a reconnect.",
               [("", self.takeovers)])
        for name, fn in sorted(self._gauges.items()):
            family(name, "gauge", f"Current {name.replace('_', ' ')}.", [("", fn())])  # type: ignore[operator]
        family("streams_opened_total", "counter", "Streams bound to a harness socket.",
               [("", self.streams_opened)])
        family("streams_refused_total", "counter",
               "New streams refused (stream caps, creation rate), each answered with a Reset.",
               [(f'{{reason="{_esc(r)}"}}', n) for r, n in sorted(self.streams_refused.items())])
        family("connections_dropped_total", "counter",
               "Connections the rendezvous dropped (handshake timeout, unauthenticated cap, stream flood).",
               [(f'{{reason="{_esc(r)}"}}', n)
                for r, n in sorted(self.connections_dropped.items())])
        family("frames_routed_total", "counter", "Frames forwarded, by direction.",
               [('{direction="to_executor"}', self.frames_to_executor),
                ('{direction="to_harness"}', self.frames_to_harness)])
        family("bytes_routed_total", "counter", "Frame bytes forwarded, by direction.",
               [('{direction="to_executor"}', self.bytes_to_executor),
                ('{direction="to_harness"}', self.bytes_to_harness)])
        family("resets_total", "counter", "Reset frames generated by the rendezvous, by reason.",
               [(f'{{reason="{_esc(r)}",to="{t}"}}', n) for (r, t), n in sorted(self.resets.items())])
        family("queue_drops_total", "counter", "Frames dropped because a bounded queue was full.",
               [(f'{{queue="{_esc(q)}"}}', n) for q, n in sorted(self.queue_drops.items())])
        family("bad_frames_total", "counter", "Frames refused at the edge (undecodable, oversized, text).",
               [(f'{{reason="{_esc(r)}"}}', n) for r, n in sorted(self.bad_frames.items())])
        family("frames_dropped_total", "counter", "Frames not routed, by reason.",
               [(f'{{reason="{_esc(r)}"}}', n) for r, n in sorted(self.dropped.items())])
        for section in self._sections:
            section(exp)
        return exp.render()
