"""Suite-wide settings.  Area fixtures live in tests/<area>/conftest.py."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "execrelay",
    deadline=None,  # shared, noisy machines: never fail a property on wall time
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=int(os.environ.get("EXECRELAY_HYPOTHESIS_EXAMPLES", "200")),
)
settings.load_profile("execrelay")
