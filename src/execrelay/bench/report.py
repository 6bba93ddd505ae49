"""Markdown report, PNG plots (matplotlib, optional) and --compare of two JSON result files."""
from __future__ import annotations

import json
import math
import os
from typing import Any

from . import cluster_report, noise_report

LABELS = {"fast": "ours fast", "pure": "ours pure", "rust": "Rust 0.131.0"}


def _f(x: Any, nd: int = 1) -> str:
    if not isinstance(x, (int, float)) or x != x:
        return "-"
    if abs(x) >= 1e5:
        return f"{x/1e3:,.0f}k"
    if abs(x) >= 1e4:
        return f"{x/1e3:.1f}k"
    return f"{x:.{nd}f}"


def _cfg(results: dict, key: str) -> dict:
    return results.get("executors_bench", {}).get("configs", {}).get(key, {})


def _sum(results: dict, key: str, who: str) -> dict:
    return _cfg(results, key).get("by_executor", {}).get(who, {}).get("summary", {})


def targets(results: dict) -> list[tuple[str, str, str, str]]:
    """(target, required, measured, status) for every target of docs/benchmarks.md §Targets."""
    rows: list[tuple[str, str, str, str]] = []

    def ratio(key: str, metric: str) -> float | None:
        r = _sum(results, key, "fast").get("vs_rust", {}).get(metric)
        return r

    def row(name: str, need: str, val: float | None, ok: bool | None, fmt: str = "{:.2f}x") -> None:
        if val is None:
            rows.append((name, need, "not measured", "-"))
        else:
            rows.append((name, need, fmt.format(val), "MET" if ok else "NOT MET"))

    v = ratio("trivial s8 w16", "rps")
    row("trivial 8 streams w16: requests/s vs Rust", ">= 1.0x", v, v is not None and v >= 1.0)
    v = ratio("trivial s8 w16", "exec_cpu_us")
    row("trivial 8 streams w16: CPU/request vs Rust", "<= 0.8x", v, v is not None and v <= 0.8)
    v = ratio("trivial s8 w1", "exec_cpu_us")
    row("trivial 8 streams w1: CPU/request vs Rust", "<= 0.5x", v, v is not None and v <= 0.5)
    v = ratio("trivial s8 w1", "p99_ms")
    row("trivial 8 streams w1: p99 vs Rust", "<= 1.0x", v, v is not None and v <= 1.0)
    for scen, need in (("getMetadata", 0.3), ("readFile64k", 0.2)):
        vals = [ratio(f"{scen} s8 w{w}", "exec_cpu_us") for w in (16, 1)]
        vals = [x for x in vals if x is not None]
        v = vals[0] if vals else None
        row(f"{scen}: CPU/request vs Rust", f"<= {need}x", v, v is not None and v <= need)
    mem = results.get("executors_bench", {}).get("memory", {}).get("fast", {})
    v = mem.get("kib_per_stream")
    row("idle stream memory", "<= 1 KiB", v, v is not None and v <= 1.0, "{:.2f} KiB")
    configs = results.get("executors_bench", {}).get("configs", {}).values()
    for big, what in (("readFile8m", "one stream moving 8 MiB reads (legacy frames)"),
                      ("reliable64m", "one stream moving 63 MiB replies (reliable, 60 KiB segments)")):
        iso = [c for c in configs if c.get("big") == big]
        v = iso[0]["by_executor"].get("fast", {}).get("summary", {}).get("p99_added_ms") if iso else None
        row(f"{what}: p99 added to 8 small streams", "+<= 1 ms", v, v is not None and v <= 1.0,
            "{:+.2f} ms")
    v = results.get("rendezvous", {}).get("stalled", {}).get("fast", {}).get("p99_added_ms")
    row("a harness that stops reading (through execrelay rendezvous): other harnesses' p99",
        "+<= 1 ms", v, v is not None and v <= 1.0, "{:+.2f} ms")
    rdv_iso = results.get("rendezvous", {}).get("isolation", {}).get("by_executor", {}).get("fast", {}).get("summary", {})
    for big, what in (("readFile8m", "8 MiB reads (legacy frames)"), ("reliable64m", "63 MiB replies (reliable)")):
        v = rdv_iso.get(big, {}).get("p99_added_ms")
        row(f"a bulk harness of its own moving {what}, through execrelay rendezvous: other harnesses' p99",
            "+<= 1 ms", v, v is not None and v <= 1.0, "{:+.2f} ms")
    d = results.get("micro", {}).get("derived", {})
    v = d.get("decode_vs_upb_x")
    row("frame decode + field access vs upb", ">= 5x faster", v, v is not None and v >= 5)
    v = d.get("encode_vs_upb_x")
    row("frame encode vs upb build+serialize", ">= 2x faster", v, v is not None and v >= 2)
    v = d.get("recv_window_vs_upb_parse")
    row("receive-window update vs one upb parse", "<= 0.1x", v, v is not None and v <= 0.1)
    v = d.get("reassembly_vs_memcpy")
    row("reassembly 16 MiB vs memcpy bandwidth", ">= 0.33x", v, v is not None and v >= 1 / 3)
    if results.get("noise"):
        for name, need, val, ok, fmt in noise_report.targets(results["noise"]):
            row(name, need, val, ok, fmt)
    fps = [s.get("rdv_frames_per_core_s") for c in results.get("rendezvous", {}).get("configs", {}).values()
           for s in c.get("summary", {}).values() if s.get("rdv_frames_per_core_s")]
    v = max(fps) if fps else None
    row("rendezvous routing, small frames (best config)", ">= 1M frames/s/core", v, v is not None and v >= 1e6,
        "{:,.0f} frames/s/core")
    c816 = _cfg(results, "trivial s8 w16")
    f, cpu = c816.get("fast_vs_pure_rps"), c816.get("pure_vs_fast_cpu")
    row("accelerated vs pure, end to end (trivial 8x16 requests/s; CPU ratio alongside)", ">= 5x", f,
        f is not None and f >= 5, "{:.2f}x" + (f" (CPU/request {cpu:.2f}x)" if cpu else ""))
    rows += cluster_report.targets(results)
    return rows


def markdown(results: dict, plots: list[str]) -> str:
    m = results.get("machine", {})
    lines = ["# execrelay benchmark report", "",
             f"Run {results.get('started', '?')} UTC, mode `{results.get('mode', '?')}`, "
             f"{results.get('elapsed_s', 0):.0f} s.", "",
             f"Machine: {m.get('nproc')} cores, {m.get('cpu_model')}, load average before the run "
             f"{m.get('loadavg')}, after {results.get('loadavg_after')}; kernel {m.get('kernel')}, "
             f"Python {m.get('python')}. The cores are shared with other jobs, so absolute figures "
             "move from run to run; the ratios (same run, interleaved A B C) are what counts."
             + (f" Pinned (--pin): driver on CPU {m['pinning']['driver_cpus']}, executors and rendezvous "
                f"on CPU {m['pinning']['measured_cpus']}." if m.get("pinning") else " Not pinned."), ""]
    ex = results.get("executors_bench")
    if ex:
        who = list(ex.get("executors", {}))
        lines += ["## Executor over one relay websocket (legacy streams)", "",
                  f"Medians of {ex.get('reps')} interleaved run(s) per executor "
                  f"({ex.get('warmup_s')} s warm-up, {ex.get('duration_s')} s measured), [min..max] spread. "
                  "CPU µs/request of the executor from /proc (utime+stime over the measured phase only); "
                  "latency measured in the driver. Driver-bound runs (driver > 90% busy) are excluded. "
                  "'other procs' = cores used by every other process on the machine during the phase "
                  "(from /proc/stat): when it is high, all columns are depressed by contention.", ""]
        hdr = "| scenario | executor | requests/s | p50 / p99 ms | exec CPU µs/req | driver CPU µs/req, busy | exec busy / other procs (cores) | vs Rust: req/s, CPU, p99 | notes |"
        lines += [hdr, "|" + "---|" * 9]
        for key, cfg in ex["configs"].items():
            for k in who:
                s = cfg["by_executor"][k]["summary"]
                vr = s.get("vs_rust", {})
                notes = []
                if s.get("driver_bound_runs"):
                    notes.append(f"{s['driver_bound_runs']} driver-bound")
                if s.get("failed_runs"):
                    fails = [r.get("failed") for r in cfg["by_executor"][k]["runs"] if r.get("failed")]
                    notes.append(f"{s['failed_runs']} failed ({fails[0][:60]})")
                if s.get("p99_added_ms") is not None:
                    notes.append(f"p99 {s['p99_added_ms']:+.2f} ms vs no big stream")
                if s.get("resets"):
                    reasons: dict = {}
                    for r in cfg["by_executor"][k]["runs"]:
                        for why, n in (r.get("reset_reasons") or {}).items():
                            reasons[why] = reasons.get(why, 0) + n
                    why = "; ".join(f"{w[:60]!r} x{n}" for w, n in reasons.items())
                    notes.append(f"{s['resets']} stream resets" + (f" ({why})" if why else ""))
                if s.get("errors") and cfg["scenario"] != "trivial":
                    notes.append(f"{s['errors']} error replies")
                if not s.get("rps") or "p50_ms" not in s:
                    lines.append(f"| {key} | {LABELS.get(k, k)} | - | - | - | - | - | | {'; '.join(notes) or 'no valid run'} |")
                    continue
                lines.append(
                    f"| {key} | {LABELS.get(k, k)} | {_f(s['rps'])} [{_f(s['rps_min'])}..{_f(s['rps_max'])}] "
                    f"| {_f(s['p50_ms'], 3)} / {_f(s['p99_ms'], 3)} "
                    f"| {_f(s['exec_cpu_us'], 2)} [{_f(s['exec_cpu_us_min'], 2)}..{_f(s['exec_cpu_us_max'], 2)}] "
                    f"| {_f(s.get('driver_cpu_us'), 2)}, {s.get('driver_busy', 0)*100:.0f}% "
                    f"| {s.get('exec_busy', 0)*100:.0f}% / {s.get('others_cores', 0):.2f} "
                    f"| {', '.join(_f(vr.get(x), 2) + 'x' for x in ('rps', 'exec_cpu_us', 'p99_ms')) if vr else '-'} "
                    f"| {'; '.join(notes)} |")
            extra = []
            if cfg.get("fast_vs_pure_rps"):
                extra.append(f"fast/pure requests/s {cfg['fast_vs_pure_rps']:.2f}x")
            if cfg.get("pure_vs_fast_cpu"):
                extra.append(f"pure/fast CPU {cfg['pure_vs_fast_cpu']:.2f}x")
            if extra:
                lines.append(f"| {key} | *accel vs pure* | {'; '.join(extra)} | | | | | | |")
        mem = ex.get("memory", {})
        if mem:
            lines += ["", "### Idle initialized streams", "", "| executor | streams | RSS 1 stream | RSS N streams | KiB per stream |",
                      "|---|---|---|---|---|"]
            for k, v in mem.items():
                if "failed" in v:
                    lines.append(f"| {LABELS.get(k, k)} | - | - | - | failed: {v['failed'][:80]} |")
                else:
                    lines.append(f"| {LABELS.get(k, k)} | {v['streams']} | {v['rss1_kib']/1024:.1f} MiB "
                                 f"| {v['rssN_kib']/1024:.1f} MiB | {v['kib_per_stream']:.2f} |")
    rv = results.get("rendezvous")
    if rv:
        lines += ["", "## Rendezvous routing (driver as harness -> `execrelay rendezvous` -> executor)", "",
                  "Each executor runs twice: registered with the driver playing the rendezvous (direct) and "
                  "registered with our rendezvous (a child process) with the driver connected as a harness. "
                  "Rendezvous CPU per routed frame from /proc over the whole run (2 frames per request).", "",
                  "| scenario | executor | direct p50 / p99 ms | via rendezvous p50 / p99 ms | added p50 / p99 ms "
                  "| req/s direct / via | rendezvous CPU µs/frame | frames/s per core |", "|---|---|---|---|---|---|---|---|"]
        for key, cfg in rv.get("configs", {}).items():
            for k, s in cfg.get("summary", {}).items():
                d, v = s.get("direct", {}), s.get("via_rendezvous", {})
                lines.append(f"| {key} | {LABELS.get(k, k)} | {_f(d.get('p50_ms'), 3)} / {_f(d.get('p99_ms'), 3)} "
                             f"| {_f(v.get('p50_ms'), 3)} / {_f(v.get('p99_ms'), 3)} "
                             f"| {_f(s.get('added_p50_ms'), 3)} / {_f(s.get('added_p99_ms'), 3)} "
                             f"| {_f(d.get('rps'))} / {_f(v.get('rps'))} | {_f(s.get('rdv_cpu_us_per_frame'), 2)} "
                             f"| {_f(s.get('rdv_frames_per_core_s'))} |")
        st = rv.get("stalled")
        if st:
            lines += ["", "### A harness that stops reading (through `execrelay rendezvous`)", "",
                      "Trivial, 8 streams, window 1 from one harness, alone and while a second harness "
                      "of the same executor has asked for 8 MiB reads (window 4) and stopped reading.", "",
                      "| executor | alone p50 / p99 ms | with the stalled harness p50 / p99 ms | p99 added ms "
                      "| req/s alone / stalled |", "|---|---|---|---|---|"]
            for k, s in st.items():
                a, b = s.get("alone", {}), s.get("stalled", {})
                lines.append(f"| {LABELS.get(k, k)} | {_f(a.get('p50_ms'), 3)} / {_f(a.get('p99_ms'), 3)} "
                             f"| {_f(b.get('p50_ms'), 3)} / {_f(b.get('p99_ms'), 3)} "
                             f"| {_f(s.get('p99_added_ms'), 3)} | {_f(a.get('rps'))} / {_f(b.get('rps'))} |")
        iso = rv.get("isolation")
        if iso:
            lines += ["", "### A bulk harness of its own (through `execrelay rendezvous`)", "",
                      "Trivial, 8 streams, window 1 from the driver's harness websocket, alone and while a "
                      "second harness PROCESS of the same executor moves one bulk stream back to back "
                      "(docs/benchmarks.md §Isolation through the rendezvous). Medians of "
                      f"{iso.get('reps')} interleaved run(s).", "",
                      "| executor | bulk stream | p50 / p99 ms | p99 added ms | bulk replies per run | req/s |",
                      "|---|---|---|---|---|---|"]
            for k, e in iso.get("by_executor", {}).items():
                for label, s in e.get("summary", {}).items():
                    lines.append(f"| {LABELS.get(k, k)} | {label} | {_f(s.get('p50_ms'), 3)} / {_f(s.get('p99_ms'), 3)} "
                                 f"| {_f(s.get('p99_added_ms'), 3)} | {_f(s.get('bulk_replies'))} | {_f(s.get('rps'))} |")
    if results.get("rendezvous_e2e"):
        lines += ["", "### benchmarks/rendezvous_e2e.py (rendezvous helper's frames/s benchmark, fast build)", "",
                  "```", results["rendezvous_e2e"].rstrip(), "```"]
    if results.get("cluster"):
        lines += cluster_report.markdown(results["cluster"])
    mi = results.get("micro")
    if mi:
        lines += ["", "## Micro benchmarks (best of N rounds, ns per operation)", "",
                  "| operation | cython | pure | upb / memcpy |", "|---|---|---|---|"]
        for g, impls in mi["ns_per_op"].items():
            other = impls.get("upb", impls.get("memcpy"))
            lines.append(f"| {g} | {_f(impls.get('cython'))} | {_f(impls.get('pure'))} | {_f(other)} |")
        lines += ["", "Derived: " + ", ".join(f"{k} = {v:.3g}" for k, v in mi.get("derived", {}).items())]
    if results.get("noise"):
        lines += noise_report.markdown(results["noise"])
    if results.get("profile"):
        from .profile import markdown as prof_md

        lines += prof_md(results["profile"])
    lines += ["", "## Targets (docs/benchmarks.md)", "", "| target | required | measured (ours fast) | status |",
              "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets(results)]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{os.path.basename(p)}]({os.path.basename(p)})" for p in plots]
    for note in results.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def make_plots(results: dict, out: str) -> list[str]:
    """PNG plots; returns their paths ([] with a note when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        results.setdefault("notes", []).append(
            "Plots skipped: matplotlib is not installed (`pip install 'execrelay[bench]'`).")
        return []
    paths = []
    ex = results.get("executors_bench", {})
    cfgs = ex.get("configs", {})
    who = list(ex.get("executors", {}))
    if cfgs:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for k in who:
            for w, style in ((1, "--"), (16, "-")):
                pts = sorted((c["streams"], c["by_executor"][k]["summary"].get("rps"))
                             for c in cfgs.values() if c["scenario"] == "trivial" and c["window"] == w
                             and not c.get("big"))
                pts = [(s, r) for s, r in pts if r]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o",
                            label=f"{LABELS.get(k, k)} w{w}")
        ax.set_xscale("log")
        ax.set_xlabel("streams")
        ax.set_ylabel("requests/s")
        ax.set_title("trivial method: throughput vs streams")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out, "throughput_vs_streams.png", plt))

        fig, ax = plt.subplots(figsize=(7, 4.5))
        key = "trivial s8 w1" if "trivial s8 w1" in cfgs else next(iter(cfgs))
        for k in who:
            cdf = cfgs[key]["by_executor"][k]["summary"].get("cdf_ms")
            if cdf:
                ax.plot(cdf, [i / max(len(cdf) - 1, 1) for i in range(len(cdf))], label=LABELS.get(k, k))
        ax.set_xscale("log")
        ax.set_xlabel("latency ms")
        ax.set_ylabel("fraction of requests")
        ax.set_title(f"latency CDF: {key}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        paths.append(_save(fig, out, "latency_cdf.png", plt))

        fig, ax = plt.subplots(figsize=(9, 4.5))
        keys = list(cfgs)
        width = 0.8 / max(len(who), 1)
        for i, k in enumerate(who):
            vals = [cfgs[c]["by_executor"][k]["summary"].get("exec_cpu_us") or 0 for c in keys]
            ax.bar([j + i * width for j in range(len(keys))], vals, width, label=LABELS.get(k, k))
        ax.set_xticks([j + width * (len(who) - 1) / 2 for j in range(len(keys))])
        ax.set_xticklabels(keys, rotation=45, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("executor CPU µs / request")
        ax.set_title("CPU per request by scenario")
        ax.legend(fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out, "cpu_per_request.png", plt))
    mi = results.get("micro", {}).get("ns_per_op", {})
    if mi:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        groups = [g for g in mi if not g.startswith("reassembly")]
        impls = ["cython", "pure", "upb"]
        width = 0.27
        for i, impl in enumerate(impls):
            ax.bar([j + i * width for j in range(len(groups))], [mi[g].get(impl, 0) for g in groups], width,
                   label=impl)
        ax.set_xticks([j + width for j in range(len(groups))])
        ax.set_xticklabels(groups, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("ns / op")
        ax.set_title("codec and stream hot path")
        ax.legend(fontsize=8)
        paths.append(_save(fig, out, "codec_ns_per_op.png", plt))
    return paths


def _save(fig, out: str, name: str, plt) -> str:
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- compare
def flatten(results: dict) -> dict[str, float]:
    """The headline figures of a result file, as 'path -> number'."""
    flat: dict[str, float] = {}
    for key, cfg in results.get("executors_bench", {}).get("configs", {}).items():
        for k, e in cfg.get("by_executor", {}).items():
            s = e.get("summary", {})
            for m in ("rps", "p50_ms", "p99_ms", "exec_cpu_us"):
                if isinstance(s.get(m), (int, float)):
                    flat[f"{key} | {k} | {m}"] = s[m]
            for m, v in s.get("vs_rust", {}).items():
                flat[f"{key} | {k} | {m} vs rust"] = v
    for k, v in results.get("executors_bench", {}).get("memory", {}).items():
        if "kib_per_stream" in v:
            flat[f"idle memory | {k} | KiB/stream"] = v["kib_per_stream"]
    for g, impls in results.get("micro", {}).get("ns_per_op", {}).items():
        for impl, v in impls.items():
            flat[f"micro | {g} | {impl} ns"] = v
    if results.get("noise"):
        flat.update(noise_report.flatten(results["noise"]))
    return flat


LOWER_IS_BETTER = ("p50_ms", "p99_ms", "exec_cpu_us", " ns", "KiB", "exec_cpu_us vs rust", "p99_ms vs rust",
                   "p50_ms vs rust", "_ms", "_us")


def compare(old: dict, new: dict, threshold: float = 0.05) -> str:
    a, b = flatten(old), flatten(new)
    lines = [f"{'figure':60s} {'old':>12s} {'new':>12s} {'change':>8s}"]
    changed = 0
    only_old = sorted(set(a) - set(b))
    only_new = sorted(set(b) - set(a))
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if not x or math.isnan(x) or math.isnan(y):
            continue
        rel = y / x - 1
        if abs(rel) < threshold:
            continue
        changed += 1
        better = (rel < 0) == any(k.endswith(s) or s in k.split(" | ")[-1] for s in LOWER_IS_BETTER)
        lines.append(f"{k:60s} {_f(x, 3):>12s} {_f(y, 3):>12s} {rel*100:+7.1f}% {'better' if better else 'worse'}")
    lines.append(f"{changed} figure(s) changed by more than {threshold*100:.0f}%.")
    for label, keys in (("only in OLD", only_old), ("only in NEW", only_new)):
        if keys:
            groups = sorted({k.split(" | ")[0] for k in keys})
            lines.append(f"{len(keys)} figure(s) {label}: " + ", ".join(groups))
    return "\n".join(lines)


def write_all(results: dict, out: str) -> dict[str, str]:
    os.makedirs(out, exist_ok=True)
    plots = make_plots(results, out)
    jpath = os.path.join(out, "results.json")
    with open(jpath, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=False)
    mpath = os.path.join(out, "report.md")
    with open(mpath, "w") as fh:
        fh.write(markdown(results, plots))
    return {"json": jpath, "markdown": mpath, "plots": ",".join(plots)}
