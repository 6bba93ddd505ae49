"""The Prometheus text exposition format (version 0.0.4), written once for every component.

Why a neutral module: the rendezvous and the executor both serve ``/metrics`` with the same
conventions (docs/operations.md §Metrics): ``execrelay_<component>_<name>``, base units
(seconds, bytes), ``_total`` on counters, bounded label values.  Neither layer imports the
other, so the writer sits outside the layers, like :mod:`execrelay.fileuri`.
"""
from __future__ import annotations

from typing import Iterable, Sequence

#: the Content-Type of a scrape answer
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def esc(value: str) -> str:
    """A label value escaped as the text format wants (backslash, newline, double quote)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def reason_label(reason: str) -> str:
    """Collapse ``protocol_error: <details>`` to its category so label cardinality stays bounded."""
    head = reason.split(":", 1)[0].strip()
    return head or "unknown"


def _number(value: float) -> str:
    if isinstance(value, float):
        if value == float("inf"):
            return "+Inf"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)  # exact: a sum of seconds must not lose digits to %g
    return str(value)


class Exposition:
    """Accumulates metric families and renders them; one instance per scrape."""

    __slots__ = ("prefix", "_out")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._out: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: Iterable[tuple[str, float]]) -> None:
        """``# HELP``, ``# TYPE`` and one line per ``(labels, value)``; ``labels`` is ``""`` or
        ``{a="x",b="y"}`` (values already escaped with :func:`esc`)."""
        full = f"{self.prefix}_{name}"
        out = self._out
        out.append(f"# HELP {full} {help_}")
        out.append(f"# TYPE {full} {kind}")
        for labels, value in samples:
            out.append(f"{full}{labels} {_number(value)}")

    def extend(self, lines: Iterable[str]) -> None:
        """Lines rendered elsewhere (e.g. :func:`execrelay.buildinfo.metric_lines`), as given."""
        self._out.extend(lines)

    def histogram(self, name: str, help_: str, bounds: Sequence[float],
                  series: Iterable[tuple[str, Sequence[int], float]]) -> None:
        """A histogram family.  ``bounds`` are the upper bounds (base unit) of all but the last
        bucket; each series is ``(labels inside braces without them, per-bucket counts with
        len(bounds) + 1 entries -- NOT cumulative, the last one above every bound --, sum)``."""
        full = f"{self.prefix}_{name}"
        out = self._out
        out.append(f"# HELP {full} {help_}")
        out.append(f"# TYPE {full} histogram")
        les = [_number(float(b)) for b in bounds] + ["+Inf"]
        for labels, counts, total in series:
            sep = "," if labels else ""
            running = 0
            for le, n in zip(les, counts):
                running += n
                out.append(f'{full}_bucket{{{labels}{sep}le="{le}"}} {running}')
            braces = f"{{{labels}}}" if labels else ""
            out.append(f"{full}_sum{braces} {_number(float(total))}")
            out.append(f"{full}_count{braces} {running}")

    def render(self) -> str:
        return "\n".join(self._out) + "\n"
