"""The Noise section of the benchmark report: table, target rows and ``--compare`` figures
(the measurements are :mod:`execrelay.bench.noise`; this module only reads their JSON, so
``--render`` and ``--compare`` import nothing heavy)."""
from __future__ import annotations

from typing import Any


def targets(section: dict[str, Any]) -> list[tuple[str, str, float | None, bool | None, str]]:
    """(target, required, value, met, format) rows of docs/benchmarks.md §Targets."""
    r = section.get("records", {})
    one, many = r.get("request_us"), r.get("request_batched_us")
    bulk = min(r["bulk_seal_GBps"], r["bulk_open_GBps"]) if "bulk_seal_GBps" in r else None
    return [
        ("Noise record layer, small request (request + response, both ends), one message per record",
         "<= 2 µs CPU", one, one is not None and one <= 2.0, "{:.2f} µs"),
        (f"Noise record layer, small request, {r.get('batch', '?')} queued messages per record "
         "(seal_many)",
         "<= 2 µs CPU", many, many is not None and many <= 2.0, "{:.2f} µs"),
        ("Noise record layer, bulk per core (the slower of seal and open)", ">= 1 GB/s", bulk,
         bulk is not None and bulk >= 1.0, "{:.2f} GB/s"),
    ]


def markdown(section: dict[str, Any]) -> list[str]:
    """The report's Noise section."""
    hs, r, e2e = section.get("handshake", {}), section.get("records", {}), section.get("end_to_end", {})
    lines = ["", "## Noise relay (issue 14)", "",
             f"`cryptography` {section.get('cryptography', '?')}. Thread CPU, best of rounds. A *small "
             "request* counts the request sealed by the harness and opened by the executor plus the "
             "response sealed by the executor and opened by the harness (both ends together).", "",
             "| what | CPU |", "|---|---|"]
    if hs:
        lines.append(f"| handshake, harness side (`Initiator` + `finish`) | {hs['harness_ms']:.3f} ms |")
        lines.append(f"| handshake, executor side (`read_request` + `respond`) | {hs['executor_ms']:.3f} ms |")
    if r:
        lines += [f"| record layer, small request, one message per record | {r['request_us']:.2f} µs |",
                  f"| record layer, small request, {r['batch']} messages per record (`seal_many`) "
                  f"| {r['request_batched_us']:.2f} µs |",
                  f"| the four AES-GCM calls alone (binding floor, one message per record) "
                  f"| {r['aesgcm_floor_us']:.2f} µs |",
                  f"| bulk, 1 MiB sealed ({r['bulk_records']} records) / opened "
                  f"| {r['bulk_seal_GBps']:.2f} / {r['bulk_open_GBps']:.2f} GB/s per core |"]
    if "failed" in e2e:
        lines += ["", f"End to end: failed ({e2e['failed'][:200]})."]
    elif e2e:
        p, n, q = e2e["plain"], e2e["noise"], e2e["ratio"]
        lines += ["", f"End to end: our harness client -> our rendezvous -> our executor in one process, "
                  f"reliable streams, {e2e['streams']} sessions x {e2e['window']} in flight, plain and Noise "
                  f"alternating, best of {e2e['rounds']}; process CPU of all three parts together.", "",
                  "| what | plain | Noise | ratio |", "|---|---|---|---|",
                  f"| small request, CPU | {p['request_cpu_us']:.1f} µs | {n['request_cpu_us']:.1f} µs "
                  f"| {q.get('request_cpu_us', float('nan')):.2f}x ({e2e['added_request_cpu_us']:+.1f} µs) |",
                  f"| 1 MiB answer, CPU | {p['mib_cpu_ms']:.2f} ms | {n['mib_cpu_ms']:.2f} ms "
                  f"| {q.get('mib_cpu_ms', float('nan')):.2f}x |",
                  f"| `open_session`, wall | {p['open_session_ms']:.2f} ms | {n['open_session_ms']:.2f} ms | |"]
    return lines


def flatten(section: dict[str, Any]) -> dict[str, float]:
    """Headline figures for ``--compare``."""
    flat: dict[str, float] = {}
    for part in ("handshake", "records"):
        for k, v in section.get(part, {}).items():
            if isinstance(v, float):
                flat[f"noise | {part} | {k}"] = v
    e2e = section.get("end_to_end", {})
    for side in ("plain", "noise", "ratio"):
        for k, v in e2e.get(side, {}).items():
            flat[f"noise | end to end {side} | {k}"] = v
    return flat


__all__ = ["targets", "markdown", "flatten"]
