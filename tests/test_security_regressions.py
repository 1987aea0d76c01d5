"""Replay every input under ``tests/regressions/`` that once found a bug.

Redaction inputs are oslo envelopes whose secrets are the values containing
``regression-`` plus ``token``/``secret``: none may survive, and the body must still
be JSON that parses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from busdoc.storage.redact import Redactor

REGRESSIONS = Path(__file__).parent / "regressions"
SECRET = re.compile(rb"regression-(?:token|secret)-\d+")


def test_every_regression_input_is_listed_in_the_readme() -> None:
    listed = (REGRESSIONS / "README.md").read_text()
    files = sorted(p.name for p in REGRESSIONS.iterdir() if p.name != "README.md")
    assert files
    for name in files:
        assert f"`{name}`" in listed


@pytest.mark.parametrize(
    "path", sorted(REGRESSIONS.glob("redact-*.json")), ids=lambda p: p.name
)
def test_redaction_regression_leaves_no_secret(path: Path) -> None:
    body = path.read_bytes()
    assert SECRET.search(body)  # the input really holds one
    found: list = []
    out = Redactor().redact_body(body, found)
    assert not SECRET.search(out), out
    assert found
    inner = json.loads(json.loads(out)["oslo.message"])
    assert inner["method"]
