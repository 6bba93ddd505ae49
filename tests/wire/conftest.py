from __future__ import annotations

import pytest

from execrelay._accel import load_both

_compiled, _pure = load_both("execrelay.wire._codec_c", "execrelay.wire._codec_py")
TWINS = [pytest.param(_pure, id="pure")]
if _compiled is not None:
    TWINS.insert(0, pytest.param(_compiled, id="cython"))
else:
    TWINS.insert(0, pytest.param(None, id="cython", marks=pytest.mark.skip(
        reason="the Cython codec is not built (pip install without a compiler?)")))


@pytest.fixture(params=TWINS, scope="module")
def codec(request):
    """Each codec twin in turn, whatever EXECRELAY_PURE says."""
    return request.param


@pytest.fixture(scope="module")
def compiled():
    if _compiled is None:
        pytest.skip("the Cython codec is not built")
    return _compiled


@pytest.fixture(scope="module")
def pure():
    return _pure
