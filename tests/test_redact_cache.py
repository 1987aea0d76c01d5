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


def test_a_token_sent_again_is_described_as_before_and_the_format_memory_stays_bounded() -> None:
    from busdoc.storage import redact

    r = Redactor()
    fernet = "gAAAAA" + "Bk3x9_-Q" * 15
    body = orjson.dumps({"_context_auth_token": fernet, "n": 1})
    first = r.redact(sighting(body)).redactions
    again = r.redact(sighting(orjson.dumps({"_context_auth_token": fernet, "n": 2}))).redactions
    assert first == again == (
        Redaction(
            path="/_context_auth_token", json_type="string", format="fernet", length_class="64-127"
        ),
    )
    # A different value at the same path is judged on its own.
    word = r.redact(sighting(orjson.dumps({"_context_auth_token": "not-a-token-at-all"})))
    assert word.redactions[0].format is None
    for n in range(redact._FORMAT_CACHE + 50):
        r.redact(sighting(orjson.dumps({"password": f"pw-{n:08d}-xxxxxxxx"})))
    assert len(r._formats) <= redact._FORMAT_CACHE


def test_the_body_cache_keeps_recent_bodies_and_forgets_old_ones() -> None:
    from busdoc.storage import redact

    r = Redactor()
    secret = orjson.dumps({"password": "hunter2-hunter2", "n": 0})
    first = r.redact(sighting(secret))

    def others(count: int, start: int) -> None:
        for n in range(start, start + count):
            r.redact(sighting(orjson.dumps({"password": "x", "n": n})))

    # One cache's worth of other bodies later, the delivery still finds the publish's
    # redacted body: the very object, not a new redaction.
    others(redact._BODY_CACHE, 1)
    again = r.redact(sighting(bytes(bytearray(secret)), "deliver"))
    assert again.body is first.body
    # Two more cache's worth later it is gone; redacting anew gives an equal body.
    others(2 * redact._BODY_CACHE, 10_000)
    late = r.redact(sighting(bytes(bytearray(secret)), "deliver"))
    assert late.body is not first.body and late.body == first.body
    assert len(r._body_cache) + len(r._body_cache_old) <= 2 * redact._BODY_CACHE
