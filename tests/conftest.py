"""Suite-wide settings, and THE fixture that runs twin tests over both builds.

Area fixtures live in tests/<area>/conftest.py.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from execrelay import _accel

settings.register_profile(
    "execrelay",
    deadline=None,  # shared, noisy machines: never fail a property on wall time
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=int(os.environ.get("EXECRELAY_HYPOTHESIS_EXAMPLES", "200")),
)
settings.load_profile("execrelay")

#: Every compiled module and its pure twin: name -> (compiled module, pure module).
TWINS: dict[str, tuple[str, str]] = {
    "window": ("execrelay.stream._window_c", "execrelay.stream._window_py"),
    "sendwin": ("execrelay.stream._sendwin_c", "execrelay.stream._sendwin_py"),
    "reasm": ("execrelay.stream._reasm_c", "execrelay.stream._reasm_py"),
    "noiserec": ("execrelay.stream._noiserec_c", "execrelay.stream._noiserec_py"),
    "frame": ("execrelay.wire._frame_c", "execrelay.wire._frame_py"),
    "codec": ("execrelay.wire._codec_c", "execrelay.wire._codec_py"),
    "fsmeta": ("execrelay.executor._fsmeta_c", "execrelay.executor._fsmeta_py"),
    "reqstats": ("execrelay.executor._reqstats_c", "execrelay.executor._reqstats_py"),
    "picows": ("execrelay.transport._picows_c", "execrelay.transport._picows_py"),
    "rdvfast": ("execrelay.rendezvous._rdvfast_c", "execrelay.rendezvous._rdvfast_py"),
}


def _compiled(name: str) -> ModuleType:
    """The compiled twin ``name``; when it is not built the test skips, or FAILS under
    ``EXECRELAY_REQUIRE_EXT`` (CI's compiled pass must not go green on pure modules)."""
    fast, _ = _accel.load_both(*TWINS[name])
    if fast is None:
        why = f"{TWINS[name][0]} is not built (python setup.py build_ext --inplace)"
        if _accel.REQUIRE_EXT:
            pytest.fail(f"EXECRELAY_REQUIRE_EXT is set but {why}", pytrace=False)
        pytest.skip(why)
    return fast


@pytest.fixture(params=["cython", "pure"], scope="module")
def twin(request: pytest.FixtureRequest) -> Callable[[str], ModuleType]:
    """Run the test once per build: ``twin("window")`` is that build's module, whatever
    ``EXECRELAY_PURE`` says (module scope, so Hypothesis tests may use it)."""
    if request.param == "pure":
        return lambda name: _accel.load_both(*TWINS[name])[1]
    return _compiled


@pytest.fixture(scope="session")
def twin_pair() -> Callable[[str], tuple[ModuleType, ModuleType]]:
    """``twin_pair("window")`` is ``(compiled, pure)``, for differential tests (same skip/fail
    rule as :func:`twin`)."""
    return lambda name: (_compiled(name), _accel.load_both(*TWINS[name])[1])
