"""Per-node cluster counters on ``/metrics`` (docs/rendezvous.md §Several nodes, "Metrics").

Same conventions as :mod:`execrelay.rendezvous.metrics`: plain attributes for what counts per
frame, small Counters for rare events, one family per name.  Queue drops share the existing
``queue_drops_total`` family (labels ``cross_node_reliable``, ``cross_node_legacy``,
``cross_node_fenced``).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable

from ...promtext import Exposition
from ..metrics import Metrics


class ClusterMetrics:
    __slots__ = ("base", "cross_in", "cross_out", "ownership", "queue_drops", "gauges")

    def __init__(self, base: Metrics) -> None:
        self.base = base
        #: frames received from / published to NATS
        self.cross_in = 0
        self.cross_out = 0
        #: reason -> executor ownership changes seen by this node
        self.ownership: Counter[str] = Counter()
        self.queue_drops = base.queue_drops
        #: name -> callable, rendered as ``cluster_<name>`` gauges
        self.gauges: dict[str, Callable[[], float]] = {}

    def render(self, out: Exposition, events: Counter[str]) -> None:
        out.family("cluster_frames_total", "counter",
                   "Frames that crossed NATS, by direction (in: received, out: published).",
                   [('{direction="in"}', self.cross_in), ('{direction="out"}', self.cross_out)])
        out.family("cluster_nats_reconnects_total", "counter",
                   "Reconnects of the node's NATS connection.", [("", events["reconnects"])])
        out.family("cluster_nats_disconnects_total", "counter",
                   "Losses of the node's NATS connection.", [("", events["disconnects"])])
        out.family("cluster_slow_consumer_drops_total", "counter",
                   "Messages the NATS client dropped because a subscription's pending "
                   "limit was reached.", [("", events["slow_consumer_drops"])])
        out.family("cluster_publish_errors_total", "counter",
                   "Publishes the NATS client refused (disconnected with a full buffer, closed).",
                   [("", events["publish_errors"])])
        out.family("cluster_registration_reads_total", "counter",
                   "Registrations read from the rdv_reg bucket on a local miss.",
                   [("", events["registration_reads"])])
        out.family("cluster_registration_errors_total", "counter",
                   "Registrations not written to or not read from the rdv_reg bucket (NATS "
                   "away, timeout, bad MAC).", [("", events["registration_errors"])])
        out.family("cluster_ownership_changes_total", "counter",
                   "Executor ownership changes seen by this node, by reason.",
                   [(f'{{reason="{r}"}}', n) for r, n in sorted(self.ownership.items())])
        for name, fn in sorted(self.gauges.items()):
            out.family(f"cluster_{name}", "gauge", f"Current {name.replace('_', ' ')}.",
                  [("", fn())])
