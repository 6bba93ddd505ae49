"""Issue 17: one version (``execrelay.__version__``) behind the package metadata,
``execrelay --version`` and the ``execrelay_build_info`` gauge of every ``/metrics``."""
from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

import execrelay
from execrelay import _accel, buildinfo
from execrelay.cli import main
from execrelay.rendezvous.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]


def test_package_metadata_reads_the_one_literal() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "a second version literal in pyproject.toml"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "execrelay.__version__"}
    assert importlib.metadata.version("execrelay") == execrelay.__version__


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"execrelay {execrelay.__version__}\n"


def _sample(lines: list[str]) -> str:
    samples = [line for line in lines if not line.startswith("#")]
    assert len(samples) == 1, lines
    return samples[0]


def test_build_info_lines_are_one_gauge() -> None:
    lines = buildinfo.metric_lines()
    assert lines[0].startswith("# HELP execrelay_build_info ")
    assert lines[1] == "# TYPE execrelay_build_info gauge"
    assert re.fullmatch(r'execrelay_build_info\{version="([^"]+)",compiled="(true|false)"\} 1',
                        _sample(lines)).group(1) == execrelay.__version__


@pytest.mark.parametrize("state, compiled", [
    ({}, "true"),                                                  # nothing selected yet
    ({"ACTIVE": {"wire": "cython", "fsmeta": "cython"}}, "true"),
    ({"ACTIVE": {"wire": "cython", "fsmeta": "pure"}}, "false"),   # one pure twin runs
    ({"FORCE_PURE": True}, "false"),                               # EXECRELAY_PURE
    ({"FALLBACKS": {"wire": "ImportError: gone"}}, "false"),       # a .so that did not load
    ({"build_fallbacks": lambda: {"execrelay.wire._codec_c": "no compiler"}}, "false"),
])
def test_build_info_compiled_label(monkeypatch: pytest.MonkeyPatch, state: dict[str, object],
                                   compiled: str) -> None:
    defaults: dict[str, object] = {"ACTIVE": {}, "FORCE_PURE": False, "FALLBACKS": {},
                                   "build_fallbacks": lambda: {}}
    for name, value in {**defaults, **state}.items():
        monkeypatch.setattr(_accel, name, value)
    assert _sample(buildinfo.metric_lines()).endswith(f',compiled="{compiled}"}} 1')


def test_build_info_matches_this_process() -> None:
    """In CI's compiled pass (EXECRELAY_REQUIRE_EXT) the label says true, in the pure pass false."""
    execrelay.accelerated()                   # select every twin, as a serving process has
    expected = "true" if execrelay.is_accelerated() and not _accel.build_fallbacks() else "false"
    assert f'compiled="{expected}"' in _sample(buildinfo.metric_lines())
    if _accel.REQUIRE_EXT:
        assert expected == "true"
    if _accel.FORCE_PURE:
        assert expected == "false"


def test_rendezvous_metrics_carry_build_info() -> None:
    text = Metrics().render()
    assert text.splitlines()[:3] == buildinfo.metric_lines()
    assert text.count("execrelay_build_info{") == 1
