"""busdoc's capture decoder against the ground truth of the committed fixtures.

Counts, connections, channels, routing, properties, headers and bodies must match what
the clients themselves sent and received, byte for byte (see tests/captures/README.md).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from busdoc.sniffer.capture import CaptureDecoder
from busdoc.sniffer.pcap import open_capture
from busdoc.sniffer.records import ConnectionInfo, Observation

CAPTURES = Path(__file__).parent / "captures"
FIXTURES = ["pika_basic", "pika_split", "oslo_rpc", "any_cooked", "midstream",
            "midstream_cut"]


def manifest(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / f"{name}.json").read_text())


def decode(name: str) -> tuple[list[Any], CaptureDecoder]:
    path = CAPTURES / manifest(name)["fixture"]["file"]
    decoder = CaptureDecoder()
    records: list[Any] = []
    with open_capture(path) as reader:
        for packet in reader:
            records.extend(decoder.feed(packet))
    records.extend(decoder.finish())
    return records, decoder


def tagged(value: Any) -> Any:
    """Decoded field values in the manifest's JSON form ($decimal, $timestamp, $bytes)."""
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return {"$timestamp": int(value.timestamp())}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): tagged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tagged(v) for v in value]
    return value


def expected_observations(m: dict[str, Any]) -> Counter[tuple[Any, ...]]:
    want: Counter[tuple[Any, ...]] = Counter()
    for msg in m["messages"]:
        for o in msg["observations"]:
            want[(o["kind"], o["connection"], o["channel"], msg["exchange"],
                  msg["routing_key"], msg["body_sha256"], o.get("redelivered", False),
                  o.get("delivery_tag"), o.get("consumer_tag"), o.get("reply_code"))] += 1
    return want


def seen_observations(obs: list[Observation]) -> Counter[tuple[Any, ...]]:
    return Counter(
        (o.kind, o.connection, o.channel, o.exchange, o.routing_key,
         hashlib.sha256(o.body).hexdigest(), o.redelivered, o.delivery_tag, o.consumer_tag,
         o.reply_code)
        for o in obs
    )


@pytest.fixture(scope="module", params=FIXTURES)
def decoded(request: pytest.FixtureRequest) -> tuple[str, list[Any], CaptureDecoder]:
    records, decoder = decode(request.param)
    return request.param, records, decoder


def test_decoder_counts_each_kind_exactly(decoded: Any) -> None:
    name, records, _ = decoded
    kinds = Counter(r.kind for r in records if isinstance(r, Observation))
    assert {k: kinds.get(k, 0) for k in ("publish", "deliver", "get_ok", "return")} == \
        manifest(name)["counts"]


def test_decoder_finds_every_observation_on_its_connection_and_channel(decoded: Any) -> None:
    name, records, _ = decoded
    obs = [r for r in records if isinstance(r, Observation)]
    assert seen_observations(obs) == expected_observations(manifest(name))


def test_decoded_bodies_are_byte_exact(decoded: Any) -> None:
    name, records, _ = decoded
    small = {msg["body_sha256"]: base64.b64decode(msg["body_b64"])
             for msg in manifest(name)["messages"] if "body_b64" in msg}
    lengths = {msg["body_sha256"]: msg["body_length"] for msg in manifest(name)["messages"]}
    for o in records:
        if not isinstance(o, Observation):
            continue
        sha = hashlib.sha256(o.body).hexdigest()
        assert len(o.body) == lengths[sha]
        assert o.body_size in (None, len(o.body))
        if sha in small:
            assert o.body == small[sha]


def test_decoded_properties_and_headers_match_what_was_sent(decoded: Any) -> None:
    name, records, _ = decoded
    by_sha: dict[str, dict[str, Any]] = {}
    for msg in manifest(name)["messages"]:
        by_sha.setdefault(msg["body_sha256"], msg)
    for o in records:
        if not isinstance(o, Observation):
            continue
        msg = by_sha[hashlib.sha256(o.body).hexdigest()]
        assert tagged(dict(o.properties)) == msg["properties"]
        headers = tagged(dict(o.headers)) if o.headers is not None else None
        assert headers == msg["headers"]


def test_decoder_reports_each_connection_name_and_vhost(decoded: Any) -> None:
    name, records, _ = decoded
    m = manifest(name)
    infos: dict[str, dict[str, Any]] = {}
    for r in records:
        if isinstance(r, ConnectionInfo):
            merged = infos.setdefault(r.connection, {})
            if r.client_properties.get("connection_name"):
                merged["connection_name"] = r.client_properties["connection_name"]
            if r.vhost is not None:
                merged["vhost"] = r.vhost
    want = {
        c["connection"]: {"connection_name": c["connection_name"], "vhost": c["vhost"]}
        for c in m["connections"]
    }
    if name == "midstream":  # no handshake in the file
        assert all("connection_name" not in i for i in infos.values())
    elif name == "midstream_cut":  # only the consumer connected after the cut
        named = {k: v for k, v in infos.items() if "connection_name" in v}
        assert named == {k: v for k, v in want.items()
                         if v["connection_name"] == "busdoc-fx-cut-consumer"}
    else:
        assert infos == want


def test_clean_fixtures_decode_without_notices(decoded: Any) -> None:
    name, _, decoder = decoded
    stats = decoder.stats
    assert stats.lost_bytes == 0
    if not name.startswith("midstream"):
        assert stats.notices == {}
        assert stats.skipped_bytes == 0
