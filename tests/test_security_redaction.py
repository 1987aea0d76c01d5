"""Default redaction rules against the secret names OpenStack really sends.

Found missing by the least-privilege agent test: Nova's ``changePassword`` server action
carries ``new_pass``, and server create/rebuild carry ``adminPass``; neither contains
``password``.
"""

from __future__ import annotations

import orjson
import pytest

from busdoc.storage.redact import REDACTED, Redactor


@pytest.mark.parametrize(
    "key", ["new_pass", "pass", "adminPass", "newPass", "ADMIN_PASS", "x-pass", "pass_hash",
            "admin_password", "_context_auth_token", "transport_secret", "key_data",
            "private_key", "Authorization", "credentials"],
)
def test_default_rules_redact_secret_key(key: str) -> None:
    body = orjson.dumps({"args": {key: "hunter2-value", "name": "vm1"}})
    out = Redactor().redact_body(body)
    assert orjson.loads(out) == {"args": {key: REDACTED, "name": "vm1"}}


@pytest.mark.parametrize(
    "key", ["passive", "bypass", "compass", "passed", "Passenger", "routing_key", "key_name",
            "public_key", "keypair_name"],
)
def test_default_rules_keep_innocent_key(key: str) -> None:
    body = orjson.dumps({key: "visible-value-123"})
    assert Redactor().redact_body(body) is body


def test_new_pass_inside_oslo_envelope_is_redacted() -> None:
    inner = {"method": "change_password", "args": {"new_pass": "Sup3r-New-Pass"}}
    body = orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(inner).decode()})
    found: list = []
    out = Redactor().redact_body(body, found)
    assert b"Sup3r-New-Pass" not in out
    assert [r.path for r in found] == ["/oslo.message/args/new_pass"]
    assert found[0].json_type == "string" and found[0].length_class == "8-15"
