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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Any character of a JSON key may be written \uXXXX ...
        (rb'{"p\u0061ssword": "hunter2", "n": 1}', {"password": REDACTED, "n": 1}),
        (rb'{"args": {"_context_auth_\u0074oken": "gAAAAAB"}}',
         {"args": {"_context_auth_token": REDACTED}}),
        # ... and "/" as "\/" (PHP's json_encode does so by default).
        (rb'{"url": "amqp:\/\/nova:s3cr3t@rabbit:5672\/"}',
         {"url": f"amqp://nova:{REDACTED}@rabbit:5672/"}),
    ],
)
def test_json_escapes_do_not_hide_a_secret(raw: bytes, expected: dict) -> None:
    found: list = []
    out = Redactor().redact_body(raw, found)
    assert orjson.loads(out) == expected
    assert b"hunter2" not in out and b"s3cr3t" not in out and b"gAAAAAB" not in out
    assert found


def test_json_escapes_inside_the_oslo_envelope_do_not_hide_a_secret() -> None:
    inner = rb'{"method": "m", "args": {"new_p\u0061ss": "Hunter2-Value"}}'
    body = orjson.dumps({"oslo.version": "2.0", "oslo.message": inner.decode()})
    out = Redactor().redact_body(body)
    assert b"Hunter2-Value" not in out
    args = orjson.loads(orjson.loads(out)["oslo.message"])["args"]
    assert args == {"new_pass": REDACTED}


def test_an_escape_with_nothing_secret_behind_it_keeps_the_body_byte_exact() -> None:
    body = rb'{"name": "caf\u00e9", "path": "a\/b"}'
    assert Redactor().redact_body(body) is body
