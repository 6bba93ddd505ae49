"""Markdown and targets of the ``cluster`` section (docs/benchmarks.md §Cluster)."""
from __future__ import annotations

from typing import Any

Row = tuple[str, str, str, str]


def _ms(x: Any, nd: int = 3) -> str:
    return f"{x:.{nd}f}" if isinstance(x, (int, float)) else "-"


def _k(x: Any) -> str:
    return f"{x / 1e3:.1f}k" if isinstance(x, (int, float)) else "-"


def targets(results: dict) -> list[Row]:
    """The cluster rows of the targets table; none when the section did not run."""
    c = results.get("cluster")
    if not c or "skipped" in c:
        return []
    rows: list[Row] = []

    def row(name: str, need: str, val: Any, ok: bool, text: str) -> None:
        rows.append((name, need, text if val is not None else "not measured",
                     "-" if val is None else "MET" if ok else "NOT MET"))

    lat = c.get("latency", {})
    v = lat.get("added_per_cross_frame_p50_ms")
    row("cluster: latency added per cross-node frame, p50", "<= 0.5 ms", v, v is not None and v <= 0.5,
        f"{_ms(v)} ms")
    v = lat.get("added_per_cross_frame_p99_ms")
    row("cluster: latency added per cross-node frame, p99", "<= 3 ms", v, v is not None and v <= 3.0,
        f"{_ms(v)} ms")
    runs = c.get("throughput", {}).get("runs", {})
    cross = [runs[k]["frames_per_s"] for k in ("cross_node_to_executor", "cross_node_to_harness")
             if k in runs and "frames_per_s" in runs[k]]
    v = min(cross) if len(cross) == 2 else None
    row("cluster: cross-node frames/s per node per direction (lower direction)", ">= 20k", v,
        v is not None and v >= 20e3, f"{_k(v)} frames/s")
    rh = c.get("rehome", {})
    p95, top = rh.get("reowned_p95_s"), rh.get("reowned_max_s")
    complete = rh.get("reowned") == rh.get("executors") and rh.get("executors")
    row(f"cluster: re-homing {rh.get('executors', 500)} executors, p95 / all", "<= 3 s / <= 5 s",
        p95 if complete else None, bool(complete) and p95 <= 3.0 and top <= 5.0,
        f"{_ms(p95, 2)} s / {_ms(top, 2)} s")
    return rows


def _cpu(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.get("cpu_s_per_s", {}).items()))


def _latency(lat: dict) -> list[str]:
    lines = [f"Latency: one legacy stream per path, {lat['rate_rt_per_s']:.0f} round trips/s each "
             f"(2 frames per round trip), {lat['payload']} B payloads, all paths at once for "
             f"{lat['seconds']:.0f} s. Per-frame figures are half the round-trip difference.", "",
             "| path | RTT p50 ms | RTT p99 ms | RTT mean ms | samples | lost | resets |",
             "|---|---|---|---|---|---|---|"]
    for label, p in lat["paths"].items():
        lines.append(f"| {label} | {_ms(p.get('rtt_p50_ms'))} | {_ms(p.get('rtt_p99_ms'))} "
                     f"| {_ms(p.get('rtt_mean_ms'))} | {p.get('samples')} | {p.get('lost')} "
                     f"| {len(p.get('resets', []))} |")
    return lines + ["", "Added per cross-node frame (vs same node): p50 "
                    f"{_ms(lat.get('added_per_cross_frame_p50_ms'))} ms, p99 {_ms(lat.get('added_per_cross_frame_p99_ms'))} ms. Same node in a cluster vs a node "
                    f"without `--nats`: p50 {_ms(lat.get('cluster_vs_single_p50_ms'))} ms, "
                    f"p99 {_ms(lat.get('cluster_vs_single_p99_ms'))} ms per frame. CPU (s/s): {_cpu(lat)}"]


def _throughput(tp: dict) -> list[str]:
    lines = [f"Throughput: one way, {tp['payload']} B payloads, at most {tp['window']} frames in "
             f"flight, {tp['seconds']:.1f} s measured per run (single: both ends on the node without "
             "`--nats`; same_node: both on n1; cross_node: executor on n1, harness on n2).", "",
             "| run | frames/s | CPU µs per frame per node | frames per node CPU-second | busiest process "
             "| CPU s/s by process | resets |",
             "|---|---|---|---|---|---|---|"]
    for key, r in tp["runs"].items():
        lines.append(f"| {key} | {_k(r.get('frames_per_s'))} | {_ms(r.get('node_cpu_us_per_frame'), 1)} "
                     f"| {_k(r.get('frames_per_node_cpu_s'))} | {r.get('busiest')} | {_cpu(r)} "
                     f"| {len(r.get('resets', []))} |")
    if tp.get("drops"):
        lines += ["", "NATS and queue counters of n1 and n2 after the runs: "
                  + "; ".join(f"{node}: " + (", ".join(f"{k} {v:.0f}" for k, v in sorted(c.items())) or "none")
                              for node, c in tp["drops"].items())]
    return lines


def _rehome(rh: dict) -> list[str]:
    return [f"Re-homing: {rh['executors']} executors on n3, n3 SIGKILLed, each reconnects after "
            f"0.2-2 s of jitter to n1 or n2. Re-owned (a new KV entry): {rh['reowned']}; p50 "
            f"{_ms(rh.get('reowned_p50_s'), 2)} s, p95 {_ms(rh.get('reowned_p95_s'), 2)} s, all "
            f"{_ms(rh.get('reowned_max_s'), 2)} s after the kill (websocket open: p95 "
            f"{_ms(rh.get('reconnected_p95_s'), 2)} s); KV puts {rh.get('kv_puts_per_s', 0):.0f}/s; "
            f"failed reconnects {rh.get('reconnect_failures')}; owners at the end {rh.get('by_node')}. "
            f"CPU (s/s, connect phase and re-homing): {_cpu(rh)}"]


#: part of the section -> (its title, the key a complete result has, its renderer)
_PARTS = {"latency": ("Latency", "paths", _latency), "throughput": ("Throughput", "runs", _throughput),
          "rehome": ("Re-homing", "executors", _rehome)}


def markdown(c: dict) -> list[str]:
    lines = ["", "## Cluster (3 `rendezvous --nats` nodes + nats-server; one node without `--nats`)"]
    if "skipped" in c:
        return lines + ["", f"Skipped: {c['skipped']}."]
    for name, (title, key, render) in _PARTS.items():
        part = c.get(name)
        if part:
            lines += [""] + (render(part) if key in part else [f"{title}: {part.get('failed', part)}"])
    if c.get("loadavg"):
        lines += ["", f"Load average after the section: {c['loadavg']}."]
    return lines
