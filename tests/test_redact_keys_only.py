"""The keys-only walk: for a JSON text with no backslash and no ``://`` it must decide
exactly what the full walk decides, for every document, both on first sight and once
its keys are known plain."""

from __future__ import annotations

import string
from typing import Any

import orjson
from hypothesis import assume, given
from hypothesis import strategies as st

from busdoc.storage.redact import _NO_CHANGE, REDACTED, Redactor

# No backslash or double quote (orjson would escape them), but the characters that start
# nested JSON and URLs are in, so strings like "[1, 2]", "{}" and "http:/x" come up.
SAFE = string.ascii_letters + string.digits + " _-.:/{}[],"
KEYS = st.one_of(
    st.sampled_from(
        [
            "password", "_context_auth_token", "auth_token", "api_key", "secret", "Token",
            "adminPass", "key_data", "authorization", "name", "id", "host", "args", "passed",
            "keys", "monkey", "_context_user_id",
        ]
    ),
    st.text(alphabet=SAFE, max_size=10),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=SAFE, max_size=24),
    st.sampled_from(["[1, 2]", "{}", " [true, null]", "{ }", "[]"]),
)
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=40,
)


def full_walk(redactor: Redactor, text: bytes) -> tuple[Any, list[Any]]:
    found: list[Any] = []
    redactor._dominant = len(text) // 2  # as _redact_plain sets it
    return redactor._walk(orjson.loads(text), "", found), found


@given(DOCS)
def test_keys_only_walk_decides_as_the_full_walk(doc: Any) -> None:
    text = orjson.dumps(doc)
    assume(b"\\" not in text and b"://" not in text)
    expected, expected_found = full_walk(Redactor(), text)

    quick = Redactor()
    for _ in range(2):  # the second time its keys are known plain
        found: list[Any] = []
        assert quick._keys_only(orjson.loads(text), "", found) == expected
        assert found == expected_found


@given(DOCS)
def test_a_redacted_body_is_the_full_walks_document(doc: Any) -> None:
    text = orjson.dumps(doc)
    assume(b"\\" not in text and b"://" not in text)
    expected, _ = full_walk(Redactor(), text)

    body = Redactor().redact_body(text)

    if expected is _NO_CHANGE:
        assert body is text
    else:
        assert orjson.loads(body) == expected


def test_secret_keys_at_every_depth_are_redacted_on_the_keys_only_path() -> None:
    doc = {
        "method": "build",
        "args": {"servers": [{"name": "a", "adminPass": "pw1"}, [{"auth_token": "t2"}]]},
        "_context_auth_token": "gAAAAB" + "x" * 40,
        "_context_is_admin": False,
    }
    redactor = Redactor()
    for _ in range(2):
        found: list[Any] = []
        body = redactor.redact_body(orjson.dumps(doc), found)
        assert orjson.loads(body) == {
            "method": "build",
            "args": {"servers": [{"name": "a", "adminPass": REDACTED},
                                 [{"auth_token": REDACTED}]]},
            "_context_auth_token": REDACTED,
            "_context_is_admin": False,
        }
        assert [r.path for r in found] == [
            "/args/servers/0/adminPass", "/args/servers/1/0/auth_token", "/_context_auth_token",
        ]


def test_an_oslo_message_inside_its_envelope_is_redacted_on_the_keys_only_path() -> None:
    message = {"method": "ping", "args": {"host": "cmp-001"}, "_context_auth_token": "tok12345"}
    envelope = orjson.dumps(
        {"oslo.version": "2.0", "oslo.message": orjson.dumps(message).decode()}
    )
    found: list[Any] = []

    body = Redactor().redact_body(envelope, found)

    inner = orjson.loads(orjson.loads(body)["oslo.message"])
    assert inner == {**message, "_context_auth_token": REDACTED}
    assert [r.path for r in found] == ["/oslo.message/_context_auth_token"]
