"""Shared test settings.

Hypothesis runs a fixed, derandomized profile so CI is repeatable; set
HYPOTHESIS_PROFILE=dev locally for more examples.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=200,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

CAPTURES = Path(__file__).parent / "captures"
