"""The JSON-RPC access log and W3C trace context (docs/operations.md §Logs, §Trace context).

Off by default (``--access-log``): when on, every answered request is one log line with its
method, id, outcome, duration, session and relay stream ids and, when the harness sent one,
its W3C trace context.  Upstream carries the trace context as the optional ``trace`` member
of a JSON-RPC request (``{"traceparent": ..., "tracestate": ...}``, next to ``id``/``method``/
``params``); the 0.171.0 binary sends none on its own (docs/operations.md §Trace context).
The hook is installed on each method's stats (:meth:`ExecutorMetrics.set_access_hook`), so
the request path pays one ``is not None`` test while the log is off.
"""
from __future__ import annotations

import logging
from typing import Any

from ..tracecontext import is_traceparent
from .metrics import MethodStats

log = logging.getLogger("execrelay.executor.access")

#: tracestate is logged only when short and printable (it is vendor data, not ours)
_TRACESTATE_MAX = 512


def trace_context(msg: dict) -> dict[str, str]:
    """The valid W3C fields of a request's ``trace`` member (empty when absent or malformed:
    a bad carrier is ignored, as upstream does, never an error)."""
    trace = msg.get("trace")
    if type(trace) is not dict:
        return {}
    out: dict[str, str] = {}
    parent = trace.get("traceparent")
    if is_traceparent(parent):
        out["traceparent"] = parent
        state = trace.get("tracestate")
        if type(state) is str and len(state) <= _TRACESTATE_MAX and state.isprintable():
            out["tracestate"] = state
    return out


def stream_id_of(conn: Any) -> str | None:
    """The relay stream a connection rides on (its sender is the stream's port), else None."""
    return getattr(getattr(conn, "_send", None), "stream_id", None)


def access_hook(conn: Any, stats: MethodStats, msg: dict, duration_ns: int, outcome: str) -> None:
    """One access-log line for an answered request (``stats.log`` while the log is on)."""
    session = conn.session
    method = msg.get("method")
    fields: dict[str, Any] = {"method": method[:128] if type(method) is str else stats.name,
                              "request_id": msg.get("id"), "outcome": outcome,
                              "duration_ms": round(duration_ns / 1e6, 3)}
    if session is not None:
        fields["session_id"] = session.id
    sid = stream_id_of(conn)
    if sid is not None:
        fields["stream_id"] = sid
    fields.update(trace_context(msg))
    log.info("request", extra={"fields": fields})
