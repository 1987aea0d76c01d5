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
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

CAPTURES = Path(__file__).parent / "captures"
FIXTURES = ["pika_basic", "pika_split", "oslo_rpc", "any_cooked", "midstream",
            "midstream_cut"]
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
def test_every_message_starts_with_its_publish(name: str) -> None:
    """All publishers are ours, so no delivery may lack its publish (for midstream:
    none sent after the capture started)."""
    m = manifest(name)
    published_before = {msg["body_sha256"] for msg in m.get("before_capture", [])}
    if "cut_publish" in m:
        published_before.add(m["cut_publish"]["body_sha256"])
    for msg in m["messages"]:
        kinds = [o["kind"] for o in msg["observations"]]
        if msg["body_sha256"] in published_before:
            assert "publish" not in kinds, msg["id"]
        else:
            assert kinds[0] == "publish" and kinds.count("publish") == 1, msg["id"]


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
        ("midstream_cut", "pcap", "EN10MB"),
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


def test_cut_capture_opens_inside_a_publish_that_spans_several_segments() -> None:
    m = manifest("midstream_cut")
    assert m["packets_dropped_by_cut"] > 0
    assert m["cut_publish"]["body_length"] > 65_535
    data = fixture_path("midstream_cut").read_bytes()
    first_len = int.from_bytes(data[24 + 8:24 + 12], "little")
    first = data[24 + 16:24 + 16 + first_len]
    tcp = first[14 + (first[14] & 0x0F) * 4:]
    assert not tcp[13] & 0x02  # no SYN: the connection opened before the file starts
    # the cut publish's delivery (a get-ok) is in the file, its publish is not
    kinds = [o["kind"] for msg in m["messages"]
             if msg["body_sha256"] == m["cut_publish"]["body_sha256"]
             for o in msg["observations"]]
    assert kinds == ["get_ok"]


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
@pytest.mark.parametrize("name", [n for n in FIXTURES if not n.startswith("midstream")])
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


# ---------------------------------------------------------------- declared shapes

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
FORMS = {
    "uuid": rf"^{UUID_RE}$",
    "iso8601_z": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
    "python_str": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _walk(value: Any, path: str, maps: set[str], out: list[tuple[str, Any]]) -> None:
    out.append((path, value))
    if isinstance(value, dict):
        for key, child in value.items():
            _walk(child, f"{path}.*" if path in maps else f"{path}.{key}", maps, out)
    elif isinstance(value, list):
        for child in value:
            _walk(child, f"{path}[]", maps, out)


def _observed(args_list: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    """Per path: types, values, and how often it appeared vs. its parent."""
    maps = {p for p, s in spec.items() if "map_keys" in s}
    seen: dict[str, dict[str, Any]] = {}
    for args in args_list:
        pairs: list[tuple[str, Any]] = []
        for key, value in args.items():
            _walk(value, key, maps, pairs)
        for path, value in pairs:
            entry = seen.setdefault(path, {"types": set(), "values": [], "count": 0})
            entry["types"].add(_json_type(value))
            entry["values"].append(value)
            entry["count"] += 1
    return seen


def _parent(path: str, known: Iterable[str]) -> str | None:
    """The longest known path this one extends (keys such as ``nova_object.data`` hold
    dots, so splitting at the last dot is not enough)."""
    if path.endswith("[]"):
        return path[:-2]
    prefixes = [p for p in known if path.startswith(p + ".")]
    return max(prefixes, key=len) if prefixes else None


def _check_shapes(label: str, args_list: list[dict[str, Any]],
                  spec: dict[str, Any]) -> None:
    import re

    seen = _observed(args_list, spec)
    assert set(seen) == set(spec), f"{label}: paths differ {set(seen) ^ set(spec)}"
    for path, want in spec.items():
        got = seen[path]
        assert got["types"] - {"null"} == set(want["types"]), (label, path)
        assert ("null" in got["types"]) == want["nullable"], (label, path)
        parent = _parent(path, spec)
        if path.endswith(("[]", ".*")):
            continue
        expected = len(args_list) if parent is None else sum(
            1 for v in seen[parent]["values"] if isinstance(v, dict))
        if want["required"]:
            assert got["count"] == expected, (label, path)
        else:
            assert 0 < got["count"] < expected, (label, path)
        values = [v for v in got["values"] if v is not None]
        if "enum" in want:
            assert set(values) <= set(want["enum"]), (label, path)
        form = want.get("form") or want.get("format")
        if form in FORMS:
            assert all(re.match(FORMS[form], v) for v in values), (label, path, form)
    for path, want in spec.items():
        if "map_keys" in want:
            keys = [k for v in seen[path]["values"] if isinstance(v, dict) for k in v]
            assert keys and all(re.match(FORMS[want["map_keys"]], k) for k in keys)


def test_sent_calls_have_exactly_the_declared_argument_shapes() -> None:
    m = manifest("oslo_rpc")
    methods = m["declared"]["methods"]
    for method, versions in methods.items():
        for entry in versions:
            calls = [s["args"] for s in m["sent"]
                     if s.get("method") == method and s["version"] == entry["version"]]
            assert calls, (method, entry["version"])
            _check_shapes(f"{method}@{entry['version']}", calls, entry["args"])


def test_sent_notifications_have_the_declared_payload_shapes() -> None:
    m = manifest("oslo_rpc")
    for event_type, entry in m["declared"]["notifications"].items():
        payloads = [s["payload"] for s in m["sent"] if s.get("event_type") == event_type]
        priorities = {s["priority"] for s in m["sent"] if s.get("event_type") == event_type}
        assert priorities == {entry["priority"]}
        _check_shapes(event_type, payloads, entry["payload"])


def test_every_declared_enum_value_is_sent_at_least_once() -> None:
    m = manifest("oslo_rpc")
    for method, versions in m["declared"]["methods"].items():
        declared: dict[str, set[Any]] = {}
        sent: dict[str, set[Any]] = {}
        for entry in versions:
            calls = [s["args"] for s in m["sent"]
                     if s.get("method") == method and s["version"] == entry["version"]]
            seen = _observed(calls, entry["args"])
            for path, want in entry["args"].items():
                if "enum" in want:
                    declared.setdefault(path, set()).update(want["enum"])
                    sent.setdefault(path, set()).update(
                        v for v in seen[path]["values"] if v is not None)
        assert sent == declared, method


def test_versioned_objects_appear_at_the_declared_versions() -> None:
    m = manifest("oslo_rpc")
    ns = m["declared"]["object_namespace"]
    versions = {
        (s["version"], s["args"]["instance"][f"{ns}_object.version"])
        for s in m["sent"] if s.get("method") == "build_instance"
    }
    assert versions == {("1.0", "2.7"), ("1.1", "2.8")}


def test_committed_declaration_is_the_one_in_the_manifest() -> None:
    import importlib.util

    path = Path(__file__).parent / "oslo_testservice" / "declared.py"
    spec = importlib.util.spec_from_file_location("busdoc_test_declared", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads(json.dumps(module.DECLARED)) == manifest("oslo_rpc")["declared"]


# ---------------------------------------------------------------- the live service


REGENERATE = """
import json, sys, uuid, subprocess, importlib
sys.path.insert(0, "tests/captures")
import make_captures
svc = make_captures.load_oslo_service()
service = importlib.import_module(svc.__name__ + ".service")
tap_mod = importlib.import_module(svc.__name__ + ".tap")
vhost = "busdoc-oslo-" + uuid.uuid4().hex[:8]
make_captures.fresh_vhost(vhost)
tap = tap_mod.Tap()
tap.install()
try:
    traffic = service.run_traffic(f"rabbit://guest:guest@127.0.0.1:5672/{vhost}")
finally:
    tap.uninstall()
    make_captures.drop_vhost(vhost)
eventlet = sys.modules.get("eventlet")
patched = []
if eventlet is not None:
    import eventlet.patcher
    patched = [m for m in ("socket", "thread", "time")
               if eventlet.patcher.is_monkey_patched(m)]
print(json.dumps({"kinds": [e.kind for e in tap.events], "sent": len(traffic["sent"]),
                  "vhosts": sorted({e.vhost for e in tap.events}), "vhost": vhost,
                  "patched": patched}))
"""


@pytest.mark.broker
@pytest.mark.slow
def test_oslo_service_regenerates_the_same_counts_without_eventlet() -> None:
    """The generator is deterministic in shape and counts: a fresh run against the
    real broker publishes and delivers exactly what the committed manifest lists.

    It runs in a fresh child process, so nothing imported by other tests (eventlet
    included) is loaded when the service starts.
    """
    root = Path(__file__).parent.parent
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", REGENERATE], cwd=root,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    m = manifest("oslo_rpc")
    kinds = Counter(result["kinds"])
    assert {k: kinds.get(k, 0) for k in KIND_METHODS} == m["counts"]
    assert result["sent"] == len(m["sent"])
    assert result["vhosts"] == [result["vhost"]]
    assert result["patched"] == []
