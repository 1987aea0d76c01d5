"""The redactor's body cache: a delivery repeats its publish's body, redacted once."""

from __future__ import annotations

import orjson

from busdoc.sniffer.records import Observation
from busdoc.storage.records import Redaction
from busdoc.storage.redact import REDACTED, Redactor


def sighting(body: bytes, kind: str = "publish") -> Observation:
    return Observation(
        time=1.0,
        source="pcap",
        connection="c",
        channel=1,
        kind=kind,  # type: ignore[arg-type]
        exchange="nova",
        routing_key="compute",
        properties={"content_type": "application/json"},
        headers=None,
        body=body,
    )


def test_delivery_of_a_clean_body_gets_its_own_bytes_object_back() -> None:
    r = Redactor()
    body = orjson.dumps({"method": "ping", "args": {"host": "cmp-001"}})
    r.redact(sighting(body))
    delivered = bytes(bytearray(body))  # equal bytes, another object, as a decoder gives
    parts = r.redact(sighting(delivered, "deliver"))
    assert parts.body is delivered
    assert parts.redactions == ()


def test_delivery_of_a_secret_body_is_redacted_like_its_publish() -> None:
    r = Redactor()
    body = orjson.dumps({"method": "ping", "password": "hunter2"})
    first = r.redact(sighting(body))
    second = r.redact(sighting(bytes(bytearray(body)), "deliver"))
    expected = (Redaction(path="/password", json_type="string", length_class="1-7"),)
    assert first.redactions == second.redactions == expected
    assert orjson.loads(second.body) == {"method": "ping", "password": REDACTED}


def test_clean_and_secret_bodies_alternating_keep_their_own_answers() -> None:
    r = Redactor()
    clean = orjson.dumps({"n": 1, "host": "a"})
    secret = orjson.dumps({"n": 1, "token": "t0k3n"})
    for _ in range(3):
        assert r.redact(sighting(bytes(bytearray(clean)))).redactions == ()
        assert b"t0k3n" not in r.redact(sighting(bytes(bytearray(secret)))).body
