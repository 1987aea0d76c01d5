"""Bodies that once slipped past redaction: JSON in UTF-16/32, which Python's json reads
but whose raw bytes show no key to a byte search, and documents nested deeper than the
walk or orjson's writer goes."""

from __future__ import annotations

import json

import pytest

from busdoc.storage.redact import REDACTED, Redactor

SECRET = "hunter2-s3cret"


def leaked(out: bytes, encoding: str) -> bool:
    return SECRET.encode() in out or SECRET.encode(encoding) in out


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_json_in_utf16_or_utf32_is_redacted(encoding: str) -> None:
    body = json.dumps({"password": SECRET, "url": f"amqp://nova:{SECRET}@ctl:5672/"},
                      ensure_ascii=False).encode(encoding)
    found: list[object] = []

    out = Redactor().redact_body(body, found)

    assert not leaked(out, encoding)
    assert json.loads(out) == {"password": REDACTED, "url": f"amqp://nova:{REDACTED}@ctl:5672/"}
    assert len(found) == 2


def test_utf16_bytes_that_spell_a_literal_do_not_pick_the_keys_only_walk() -> None:
    # The UTF-16-LE bytes of 潴敫乮 spell "token": the pre-check hits on them, and the raw
    # bytes hold no "://" although the text does.
    body = json.dumps({"note": "\u6f74\u656b\u4e6e", "url": f"amqp://nova:{SECRET}@ctl/"},
                      ensure_ascii=False).encode("utf-16-le")

    out = Redactor().redact_body(body)

    assert not leaked(out, "utf-16-le")


def test_utf16_text_that_is_not_json_has_its_url_password_redacted() -> None:
    body = f"connect to amqp://nova:{SECRET}@ctl:5672/ now".encode("utf-16")

    out = Redactor().redact_body(body)

    assert not leaked(out, "utf-16")
    assert out.decode("utf-16") == f"connect to amqp://nova:{REDACTED}@ctl:5672/ now"


def nested(kind: str, depth: int, inner: str) -> str:
    if kind == "list":
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + inner + "}" * depth


@pytest.mark.parametrize("kind", ["list", "dict"])
@pytest.mark.parametrize("depth", [100, 254, 300, 600, 1100, 3000])
def test_deeply_nested_documents_keep_no_secret_and_raise_nothing(kind: str, depth: int) -> None:
    body = nested(kind, depth, json.dumps({"password": SECRET})).encode()
    found: list[object] = []

    out = Redactor().redact_body(body, found)

    assert SECRET.encode() not in out
    assert found
    json.loads(out)  # still JSON: the document, or the marker that it was withheld


@pytest.mark.parametrize("depth", [300, 1100])
def test_a_deep_document_inside_an_oslo_envelope_keeps_no_secret(depth: int) -> None:
    message = nested("list", depth, json.dumps({"_context_auth_token": SECRET}))
    body = json.dumps({"oslo.version": "2.0", "oslo.message": message}).encode()

    out = Redactor().redact_body(body)

    assert SECRET.encode() not in out
    assert json.loads(out)["oslo.version"] == "2.0"


@pytest.mark.parametrize(
    "body",
    [
        # protobuf-like and msgpack-like binary with a URL inside, of even length so it
        # also reads as UTF-16, where the URL is gone: the UTF-8 reading must still run.
        b"\x08\x00\x12#amqp://nova:" + SECRET.encode() + b"@ctl:5672/\x18\x01",
        b"\x92\x00\xd9#amqp://nova:" + SECRET.encode() + b"@ctl:5672/  ",
        # UTF-16 text with no NUL in its first four bytes, of odd length, with a lone
        # surrogate: each once kept its URL password.
        f"\u5bc6\u7801 connect amqp://nova:{SECRET}@ctl/".encode("utf-16-le"),
        f"\u5bc6a connect amqp://nova:{SECRET}@ctl/".encode("utf-16-be"),
        f"connect amqp://nova:{SECRET}@ctl:5672/".encode("utf-16-le") + b"\n",
        b"\x00\xd8" + f" connect amqp://nova:{SECRET}@ctl/".encode("utf-16-le"),
    ],
    ids=["protobuf", "msgpack", "utf16le-cjk", "utf16be-cjk", "utf16-odd", "utf16-surrogate"],
)
def test_url_passwords_in_binary_and_odd_utf16_bodies_are_redacted(body: bytes) -> None:
    out = Redactor().redact_body(body)

    assert out != body
    for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
        assert SECRET.encode(encoding) not in out, encoding


@pytest.mark.parametrize("depth", [300, 600, 1100])
def test_deeply_nested_headers_keep_no_secret_and_raise_nothing(depth: int) -> None:
    from busdoc.sniffer.records import Observation

    value = nested("list", depth, json.dumps({"password": SECRET, "u": "amqp://x:y@h/"}))
    obs = Observation(
        time=1.0, source="pcap", connection="c", channel=1, kind="publish", exchange="x",
        routing_key="r", properties={}, headers={"x-payload": value}, body=b"{}",
    )

    parts = Redactor().redact(obs)

    assert SECRET not in json.dumps(parts.headers)
    assert parts.redactions
