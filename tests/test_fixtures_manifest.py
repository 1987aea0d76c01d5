"""The committed capture fixtures agree with their manifests, and with tshark.

tshark is an independent AMQP decoder, so its count of basic.publish (and deliver,
get-ok, return) method frames cross-checks the ground truth the capture script wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

CAPTURES = Path(__file__).parent / "captures"
FIXTURES = ["pika_basic", "pika_split", "oslo_rpc", "any_cooked", "midstream"]
KIND_METHODS = {"publish": "40", "deliver": "60", "get_ok": "71", "return": "50"}
"""AMQP class 60 (basic) method ids."""


def manifest(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / f"{name}.json").read_text())


def fixture_path(name: str) -> Path:
    return CAPTURES / manifest(name)["fixture"]["file"]


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_file_matches_recorded_sha256_and_size(name: str) -> None:
    facts = manifest(name)["fixture"]
    data = fixture_path(name).read_bytes()
    assert len(data) == facts["size"]
    assert hashlib.sha256(data).hexdigest() == facts["sha256"]


@pytest.mark.parametrize("name", FIXTURES)
def test_counts_equal_the_observations_listed(name: str) -> None:
    m = manifest(name)
    listed = Counter(o["kind"] for msg in m["messages"] for o in msg["observations"])
    assert {k: listed.get(k, 0) for k in KIND_METHODS} == m["counts"]
    assert m["counts"]["publish"] > 0


@pytest.mark.parametrize("name", FIXTURES)
def test_small_bodies_match_their_hash_and_length(name: str) -> None:
    for msg in manifest(name)["messages"]:
        if "body_b64" in msg:
            body = base64.b64decode(msg["body_b64"])
            assert len(body) == msg["body_length"]
            assert hashlib.sha256(body).hexdigest() == msg["body_sha256"]
        else:
            assert msg["body_length"] > 4096


@pytest.mark.parametrize("name", FIXTURES)
def test_every_observation_is_on_a_listed_connection(name: str) -> None:
    m = manifest(name)
    keys = {c["connection"] for c in m["connections"]}
    for c in m["connections"]:
        assert c["connection"].startswith(f"127.0.0.1:{c['local_port']}->")
    used = {o["connection"] for msg in m["messages"] for o in msg["observations"]}
    assert used <= keys


@pytest.mark.parametrize(
    ("name", "fmt", "linktype"),
    [
        ("pika_basic", "pcap", "EN10MB"),
        ("pika_split", "pcapng", "EN10MB"),
        ("oslo_rpc", "pcap", "EN10MB"),
        ("any_cooked", "pcap", "LINUX_SLL2"),
        ("midstream", "pcap", "EN10MB"),
    ],
)
def test_fixture_has_the_promised_format_and_link_type(name: str, fmt: str,
                                                       linktype: str) -> None:
    facts = manifest(name)["fixture"]
    assert (facts["format"], facts["linktype_name"]) == (fmt, linktype)
    magic = fixture_path(name).read_bytes()[:4]
    assert (magic == b"\x0a\x0d\x0d\x0a") == (fmt == "pcapng")


def test_split_fixture_has_small_frame_max_and_a_body_over_64k() -> None:
    m = manifest("pika_split")
    assert {c["client_properties"]["frame_max"] for c in m["connections"]} == {4096, 131072}
    lengths = {msg["body_length"] for msg in m["messages"]}
    assert {4088, 4089, 200_000} <= lengths
    assert max(lengths) > 65_535


def test_basic_fixture_covers_returns_redelivery_and_header_types() -> None:
    m = manifest("pika_basic")
    obs = [o for msg in m["messages"] for o in msg["observations"]]
    assert any(o["kind"] == "return" and o["reply_code"] == 312 for o in obs)
    assert any(o.get("redelivered") for o in obs)
    headers = [msg["headers"] or {} for msg in m["messages"]]
    values = [v for h in headers for v in h.values()]
    assert any(isinstance(v, float) for v in values)
    for tag in ("$decimal", "$timestamp", "$bytes"):
        assert any(isinstance(v, dict) and tag in v for v in values)
    assert any(isinstance(v, list) for v in values)
    assert any(v is None for v in values)
    assert any(msg["body_length"] == 0 for msg in m["messages"])


def test_oslo_manifest_lists_secrets_that_are_really_in_the_capture() -> None:
    m = manifest("oslo_rpc")
    data = fixture_path("oslo_rpc").read_bytes()
    assert len(m["secrets"]) >= 3
    for secret in m["secrets"]:
        assert secret.encode() in data


def test_oslo_plan_matches_what_was_sent() -> None:
    m = manifest("oslo_rpc")
    sent = Counter(
        (s["kind"], s.get("method"), s.get("version"), "raised" in s) for s in m["sent"]
        if s["kind"] != "notification"
    )
    plan = m["plan"]
    assert sent[("call", "build_instance", "1.1", False)] == plan["build_instance@1.1"]
    assert sent[("call", "delete_instance", "1.0", True)] == plan["delete_instance.raises"]
    assert sent[("fanout", "refresh_cache", "1.0", False)] == plan["refresh_cache"]
    calls = sum(n for (kind, *_), n in sent.items() if kind == "call")
    casts = sum(n for (kind, *_), n in sent.items() if kind in ("cast", "fanout"))
    notes = sum(1 for s in m["sent"] if s["kind"] == "notification")
    # every call publishes a request and a reply; casts and notifications one each
    assert m["counts"]["publish"] == 2 * calls + casts + notes
    fanout_deliveries = plan["refresh_cache"] * len(m["servers"])
    assert m["counts"]["deliver"] == 2 * calls + plan["reboot_instance"] + \
        fanout_deliveries + notes


def test_midstream_capture_starts_after_the_handshake() -> None:
    m = manifest("midstream")
    assert m["handshake_in_capture"] is False
    assert m["before_capture"]
    before = {msg["body_sha256"] for msg in m["before_capture"]}
    assert before.isdisjoint(msg["body_sha256"] for msg in m["messages"])


def _tshark_basic_counts(path: Path) -> dict[str, int]:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "amqp.method.class",
         "-e", "amqp.method.method"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    seen: Counter[str] = Counter()
    for line in out.splitlines():
        classes, _, methods = line.partition("\t")
        for cls, method in zip(classes.split(","), methods.split(","), strict=False):
            if cls == "60":
                seen[method] += 1
    return {kind: seen[method] for kind, method in KIND_METHODS.items()}


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize("name", [n for n in FIXTURES if n != "midstream"])
def test_tshark_counts_the_same_basic_methods_as_the_manifest(name: str) -> None:
    assert _tshark_basic_counts(fixture_path(name)) == manifest(name)["counts"]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_sees_no_connection_start_in_midstream() -> None:
    out = subprocess.run(
        ["tshark", "-n", "-r", str(fixture_path("midstream")), "-Y",
         "amqp.method.class == 10"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    assert out.strip() == ""
