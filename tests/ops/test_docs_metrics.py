"""The metric names in the docs and in a real scrape agree, both ways.

A real ``execrelay rendezvous`` and a real ``execrelay exec-server --remote ... --metrics-listen``
registered with it (the mode with every executor family: relay gauges included) are scraped
after one harness session made a request.  Checked:

* every metric documented (the tables of docs/operations.md §Executor metrics and
  docs/rendezvous.md §Metrics, and every full ``execrelay_...`` name in docs/, deploy/ and
  README.md) is a family of that component's scrape, so a renamed metric breaks the test and
  not an operator's dashboard;
* every family of the scrapes is named somewhere in those docs, so a new metric is documented.

The multi-node families (docs/rendezvous.md §Several nodes) exist only with ``--nats`` (a
NATS server) and are not checked here.  Process-level, so compiled pass only.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from execrelay.harness import HarnessClient

from ._procs import http_get, start_relay_pair, wait_log, wait_ready

pytestmark = [
    pytest.mark.skipif(os.environ.get("EXECRELAY_PURE") == "1",
                       reason="process-level: the compiled pass covers it (the docs do not depend on the build)"),
    pytest.mark.timeout(60),
]

ROOT = Path(__file__).resolve().parents[2]
PREFIX = {"executor": "execrelay_executor_", "rendezvous": "execrelay_rendezvous_"}
#: (doc, heading of the section whose tables list the component's metrics, component)
TABLES = [("docs/operations.md", "## Executor metrics", "executor"),
          ("docs/rendezvous.md", "## Metrics", "rendezvous")]
#: every file an operator reads metric names from
DOC_FILES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
             *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "deploy").rglob("*") if p.is_file())]
FULL_NAME = re.compile(r"\bexecrelay_(?:build_info|(?:executor|rendezvous)_[a-z0-9_]*[a-z0-9])\b")
HISTOGRAM_SERIES = re.compile(r"_(?:bucket|sum|count)$")


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split()[0]
    start = text.index(f"\n{heading}\n")
    rest = text[start + len(heading) + 2:]
    end = re.search(rf"\n#{{1,{len(level)}}} ", rest)
    return rest[:end.start()] if end else rest


def table_names(doc: str, heading: str, prefix: str) -> set[str]:
    """Full family names from the first column of every table in the section."""
    names: set[str] = set()
    for line in _section((ROOT / doc).read_text(), heading).splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for short in re.findall(r"`([a-z][a-z0-9_]*)(?:\{[^`]*\})?`", first):
            names.add(prefix + short)
    return names


def documented() -> dict[str, set[str]]:
    """Family names per component (``build_info`` under both), from the tables and full names."""
    out = {c: table_names(doc, heading, PREFIX[c]) for doc, heading, c in TABLES}
    for doc in DOC_FILES:
        try:
            text = (ROOT / doc).read_text()
        except UnicodeDecodeError:
            continue
        for name in FULL_NAME.findall(text):
            name = HISTOGRAM_SERIES.sub("", name)
            for component, prefix in PREFIX.items():
                if name == "execrelay_build_info" or name.startswith(prefix):
                    out[component].add(name)
    return out


def families(scrape: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", scrape, re.M))


def mentioned(short: str, texts: str) -> bool:
    """``short`` (a family name without its prefix) in backticks, alone or with labels."""
    return re.search(rf"`(?:execrelay_[a-z]+_)?{re.escape(short)}(?:\{{[^`]*\}})?`", texts) is not None


def test_the_tables_are_parsed() -> None:
    """The parser finds the tables (a heading renamed would otherwise check nothing)."""
    names = documented()
    assert {"execrelay_executor_requests_total", "execrelay_executor_request_duration_seconds",
            "execrelay_build_info"} <= names["executor"]
    assert {"execrelay_rendezvous_streams", "execrelay_rendezvous_resets_total",
            "execrelay_build_info"} <= names["rendezvous"]
    assert len(names["executor"]) > 15 and len(names["rendezvous"]) > 15


async def test_documented_metrics_are_scraped_and_scraped_ones_documented(tmp_path: Path) -> None:
    rdv, p, url = start_relay_pair(tmp_path, "docs-1", "--metrics-listen", "127.0.0.1:0")
    base = rdv.url.split()[-1]
    try:
        metrics = (await wait_log(p, "metrics listening"))["url"]
        await wait_ready(metrics)
        async with HarnessClient(url) as client:
            session = await client.open_session()
            assert (await session.fs_get_metadata("/"))["isDirectory"] is True
            scraped = {"executor": families((await http_get(f"{metrics}/metrics"))[1]),
                       "rendezvous": families((await http_get(f"{base}/metrics"))[1])}
    finally:
        p.stop()
        rdv.stop()

    docs = documented()
    for component in PREFIX:
        missing = sorted(docs[component] - scraped[component])
        assert not missing, f"documented but not in the {component}'s /metrics: {missing}"
    texts = "\n".join((ROOT / doc).read_text() for doc, _, _ in TABLES)
    for component, prefix in PREFIX.items():
        undocumented = sorted(f for f in scraped[component]
                              if f != "execrelay_build_info" and not mentioned(f.removeprefix(prefix), texts))
        assert not undocumented, f"in the {component}'s /metrics but not in the docs: {undocumented}"
