"""The codec twins, from the suite-wide twin fixtures (tests/conftest.py)."""
from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def codec(twin) -> ModuleType:
    """Each codec twin in turn, whatever EXECRELAY_PURE says."""
    return twin("codec")


@pytest.fixture(scope="module")
def compiled(twin_pair) -> ModuleType:
    return twin_pair("codec")[0]


@pytest.fixture(scope="module")
def pure(twin_pair) -> ModuleType:
    return twin_pair("codec")[1]
