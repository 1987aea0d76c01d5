"""Redaction: what is replaced, where it is recorded, and what stays byte-exact."""

from __future__ import annotations

import decimal
import gzip
from typing import Any

import orjson
import pytest

from busdoc.errors import InputError
from busdoc.sniffer.body import decode_content
from busdoc.sniffer.records import Observation
from busdoc.storage.records import Redaction, length_class
from busdoc.storage.redact import DEFAULT_RULES, REDACTED, Redactor


def obs(
    body: bytes,
    *,
    headers: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
) -> Observation:
    return Observation(
        time=1.0,
        source="pcap",
        connection="c",
        channel=1,
        kind="publish",
        exchange="nova",
        routing_key="compute",
        properties=properties if properties is not None else {"content_type": "application/json"},
        headers=headers,
        body=body,
    )


def oslo(inner: dict[str, Any]) -> bytes:
    return orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(inner).decode()})


SHORT_PASSWORD = Redaction(path="/password", json_type="string", length_class="1-7")
FERNET = "gAAAAABn" + "Q2VydGFpbmx5IG5vdCBhIHJlYWwgdG9rZW4_x7Rk2PqLm9Zt4Vw1" * 3
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("doc", "path", "json_type", "fmt", "length_class"),
    [
        ({"password": "hunter2"}, "/password", "string", None, "1-7"),
        ({"user": {"Password": "hunter22"}}, "/user/Password", "string", None, "8-15"),
        ({"db_passwd": "x"}, "/db_passwd", "string", None, "1-7"),
        ({"client_secret": "abc"}, "/client_secret", "string", None, "1-7"),
        ({"auth_token": "gAAAA"}, "/auth_token", "string", None, "1-7"),
        ({"_context_auth_token": FERNET}, "/_context_auth_token", "string", "fernet", "128-255"),
        ({"_context_auth_token_info": {"a": 1, "b": 2}}, "/_context_auth_token_info", "object",
         None, "1-7"),
        ({"credentials": ["k1", "k2", "k3"]}, "/credentials", "array", None, "1-7"),
        ({"private_key": PEM}, "/private_key", "string", "pem", "64-127"),
        ({"key_data": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0x nova@c1"}, "/key_data", "string",
         "ssh-public-key", "32-63"),
        ({"X-API-KEY": "k"}, "/X-API-KEY", "string", None, "1-7"),
        ({"api_key": "0123456789abcdef0123456789abcdef"}, "/api_key", "string", "hex", "32-63"),
        ({"Authorization": "Bearer x"}, "/Authorization", "string", None, "8-15"),
        ({"pin": 1, "secret": 1234}, "/secret", "integer", None, None),
        ({"secret": 12.5}, "/secret", "number", None, None),
        ({"a/b": {"token": ""}}, "/a~1b/token", "string", None, "0"),
        ({"list": [{"ok": 1}, {"password": "p"}]}, "/list/1/password", "string", None, "1-7"),
        ({"password": "p" * 300}, "/password", "string", None, "256+"),
    ],
)
def test_secret_keys_are_redacted_with_path_type_format_and_length_class(
    doc: dict[str, Any], path: str, json_type: str, fmt: str | None, length_class: str | None
) -> None:
    parts = Redactor().redact(obs(orjson.dumps(doc)))
    assert parts.redactions == (
        Redaction(path=path, json_type=json_type, format=fmt, length_class=length_class),
    )
    assert REDACTED.encode() in parts.body


@pytest.mark.parametrize(
    "doc",
    [
        {"routing_key": "compute.host1"},
        {"keypair_name": "mykey", "key_name": "k", "public_key": "ssh-rsa"},
        {"password_set": True, "secret": None},
        {"method": "ping", "args": {"host": "compute1"}},
    ],
)
def test_innocent_keys_and_null_or_boolean_values_are_kept(doc: dict[str, Any]) -> None:
    body = orjson.dumps(doc)
    parts = Redactor().redact(obs(body))
    assert parts.redactions == ()
    assert parts.body is body


def test_body_without_secrets_is_the_same_bytes_object() -> None:
    # Non-canonical spacing proves nothing was re-serialised.
    body = b'{ "method" :  "ping",\n "args": {"x": 1} }'
    o = obs(body, headers={"x-trace": "abc"})
    parts = Redactor().redact(o)
    assert parts.body is body
    assert parts.headers is o.headers
    assert parts.properties is o.properties
    assert parts.redactions == ()


def test_disabled_redactor_returns_everything_byte_exact() -> None:
    body = orjson.dumps({"password": "hunter2", "url": "rabbit://u:p@h/"})
    o = obs(body, headers={"token": "t"})
    parts = Redactor(enabled=False).redact(o)
    assert parts.body is body
    assert parts.headers is o.headers
    assert parts.redactions == ()


def test_oslo_envelope_is_redacted_inside_the_inner_string() -> None:
    inner = {
        "method": "build_and_run_instance",
        "_context_auth_token": "gAAAAB-secret",
        "_context_user": "u1",
        "args": {"instance": {"uuid": "i-1"}},
    }
    parts = Redactor().redact(obs(oslo(inner)))
    assert parts.redactions == (
        Redaction(path="/oslo.message/_context_auth_token", json_type="string",
                  length_class="8-15"),
    )
    outer = orjson.loads(parts.body)
    assert outer["oslo.version"] == "2.0"
    assert orjson.loads(outer["oslo.message"]) == {**inner, "_context_auth_token": REDACTED}
    assert b"gAAAAB-secret" not in parts.body


def test_json_in_json_is_searched_at_every_depth() -> None:
    level2 = orjson.dumps({"password": "deep"}).decode()
    level1 = orjson.dumps({"payload": level2}).decode()
    body = orjson.dumps({"wrapped": level1})
    parts = Redactor().redact(obs(body))
    assert parts.redactions == (
        Redaction(path="/wrapped/payload/password", json_type="string", length_class="1-7"),
    )
    assert b"deep" not in parts.body


@pytest.mark.parametrize(
    ("value", "expected", "fmt"),
    [
        ("rabbit://nova:s3cret@ctl:5672/", "rabbit://nova:<redacted>@ctl:5672/", "url"),
        (
            "transport_url=rabbit://a:b@h1:5672,c:d@h2:5672/",
            "transport_url=rabbit://a:<redacted>@h1:5672,c:<redacted>@h2:5672/",
            None,  # a setting holding a URL, not a URL
        ),
        ("amqp://svc:p@ss@rabbit/vh", "amqp://svc:<redacted>@rabbit/vh", "url"),
        (
            "see http://h/a and amqp://u:x@y later",
            "see http://h/a and amqp://u:<redacted>@y later",
            None,
        ),
        (
            "mysql+pymysql://nova:pw@db/nova?charset=utf8",
            "mysql+pymysql://nova:<redacted>@db/nova?charset=utf8",
            "url",
        ),
    ],
)
def test_url_passwords_are_redacted_in_any_string(
    value: str, expected: str, fmt: str | None
) -> None:
    parts = Redactor().redact(obs(orjson.dumps({"args": {"conf": value}})))
    assert orjson.loads(parts.body)["args"]["conf"] == expected
    assert parts.redactions == (
        Redaction(path="/args/conf", json_type="string", format=fmt,
                  length_class=length_class(len(value))),
    )


def test_url_without_password_is_kept() -> None:
    body = orjson.dumps({"endpoint": "http://user@keystone:5000/v3", "x": "https://h/a"})
    parts = Redactor().redact(obs(body))
    assert parts.body is body
    assert parts.redactions == ()


def test_headers_are_redacted_by_key_and_url_including_nested_tables() -> None:
    headers = {
        "Authorization": b"Bearer abc",
        "x-retry": 3,
        "amount": decimal.Decimal("1.50"),
        "origin": {"broker": "amqp://guest:guest@rabbit/", "api_token": "tok"},
    }
    parts = Redactor().redact(obs(b"{}", headers=headers))
    assert parts.headers == {
        "Authorization": REDACTED,
        "x-retry": 3,
        "amount": decimal.Decimal("1.50"),
        "origin": {"broker": "amqp://guest:<redacted>@rabbit/", "api_token": REDACTED},
    }
    assert set(parts.redactions) == {
        Redaction(path="headers/Authorization", json_type="string", length_class="8-15"),
        Redaction(path="headers/origin/broker", json_type="string", format="url",
                  length_class="16-31"),
        Redaction(path="headers/origin/api_token", json_type="string", length_class="1-7"),
    }
    assert headers["Authorization"] == b"Bearer abc"  # the caller's table is untouched


def test_string_properties_have_url_passwords_redacted() -> None:
    props = {"content_type": "application/json", "reply_to": "amqp://u:pw@h/q"}
    parts = Redactor().redact(obs(b"{}", properties=props))
    assert parts.properties["reply_to"] == "amqp://u:<redacted>@h/q"
    assert parts.redactions == (
        Redaction(path="properties/reply_to", json_type="string", length_class="8-15"),
    )


def test_extra_rule_is_a_case_insensitive_regex_on_key_names() -> None:
    r = Redactor([*DEFAULT_RULES, r"^x-.*-pin$"])
    parts = r.redact(obs(orjson.dumps({"X-Card-PIN": "1234", "x-card-pin-hint": "no"})))
    assert [x.path for x in parts.redactions] == ["/X-Card-PIN"]


def test_invalid_extra_rule_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not a valid regex"):
        Redactor(["(unclosed"])


def test_gzip_body_is_redacted_and_compressed_again() -> None:
    plain = orjson.dumps({"password": "hunter2", "n": 1})
    o = obs(gzip.compress(plain), properties={"content_encoding": "gzip"})
    parts = Redactor().redact(o)
    assert orjson.loads(decode_content(parts.body, "gzip")) == {"password": REDACTED, "n": 1}
    assert parts.redactions == (SHORT_PASSWORD,)


def test_gzip_body_without_secrets_is_the_same_bytes_object() -> None:
    body = gzip.compress(b'{"n": 1}')
    parts = Redactor().redact(obs(body, properties={"content_encoding": "gzip"}))
    assert parts.body is body


def test_non_json_body_only_has_url_passwords_redacted() -> None:
    body = b"connect to amqp://svc:topsecret@rabbit:5672/ now; password=kept"
    parts = Redactor().redact(obs(body, properties={}))
    assert parts.body == b"connect to amqp://svc:<redacted>@rabbit:5672/ now; password=kept"
    assert parts.redactions == (Redaction(path="", json_type="string", length_class="32-63"),)


def test_same_body_redacted_twice_gives_equal_results() -> None:
    # Publishes and deliveries share bodies; the cache must not change the answer.
    r = Redactor()
    body = oslo({"_context_auth_token": "t0k3n", "m": 1})
    first = r.redact(obs(body))
    second = r.redact(obs(bytes(body)))
    assert first.body == second.body
    assert first.redactions == second.redactions


def test_body_with_python_json_nan_is_still_redacted() -> None:
    body = b'{"value": NaN, "password": "p"}'
    parts = Redactor().redact(obs(body))
    assert b'"p"' not in parts.body
    assert parts.redactions == (SHORT_PASSWORD,)
