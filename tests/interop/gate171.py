"""The one switch for OUR exec-server's 0.171.0-dialect interop cases.

The 0.171 harness speaks a dialect (``file://`` URIs, ``environmentInfo``, ``writeId``...) that
``execrelay exec-server`` learns in a separate change; until that change is merged every ``ours``
case driven by a 0.171 harness skips with one reason. The lead flips ``OURS_171_READY`` to True
at merge, which turns all of them on at once (the ``real171`` controls always run).
"""
from __future__ import annotations

import pytest

OURS_171_READY = True

needs_ours_171 = pytest.mark.skipif(not OURS_171_READY, reason="0.171 dialect not merged yet")


def impl_params(*impls: str) -> list:
    """``parametrize`` values for ``impl``: ``"ours"`` carries the ``needs_ours_171`` gate."""
    return [pytest.param(i, marks=needs_ours_171) if i == "ours" else i for i in impls]
