"""The catalog end to end over oslo-shaped stored messages: identity, replies, objects,
contexts, versions, determinism, mergeable state, and the catalog contract."""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

import busdoc.inference.catalog as catalog_module
from busdoc.errors import InputError
from busdoc.inference.catalog import CATALOG_VERSION, Catalog, build_catalog
from busdoc.inference.testing import (
    call,
    failure_json,
    fanout,
    notification,
    reply,
    stored,
    versioned,
)

CONTRACT = json.loads(
    (Path(__file__).parent.parent / "docs" / "catalog.schema.json").read_text()
)
T0 = 1_764_000_000.0
STATES = ["active", "building", "stopped"]


def instance(i: int, version: str = "2.8") -> dict:
    data = {"uuid": f"0b5a3a48-7c43-4a4e-9a48-{i:012d}", "vm_state": STATES[i % 3],
            "flavor": versioned("Flavor", "1.2", {"id": i % 4, "name": "m1.small"})}
    if version != "2.8":
        data["locked_by"] = None if i % 2 else "admin"
    return versioned("Instance", version, data, changes=["vm_state"] if i % 2 else [])


def traffic() -> list:
    """A small, realistic mix: calls with replies and failures, casts, fanouts, notifications."""
    msgs = []
    for i in range(30):
        t = T0 + i
        m, mid = call("build_and_run_instance",
                      {"instance": instance(i), "node": f"compute-{i % 3}",
                       "limits": None if i % 3 else {"memory_mb": 2048}},
                      server=f"host{i % 2}", time=t, version="6.0", receiver="nova-compute",
                      queue=f"compute.host{i % 2}")
        msgs.append(m)
        if i < 27:
            if i % 9 == 4:
                msgs.append(reply(mid, failure=failure_json(
                    "InstanceNotFound", "nova.exception", f"Instance {i} could not be found."),
                    time=t + 0.200))
            else:
                msgs.append(reply(mid, {"host": f"host{i % 2}", "ok": True},
                                  time=t + 0.010 * (i + 1)))
        msgs.append(call("build_and_run_instance", {"instance": instance(i, "2.9"),
                                                     "node": "compute-0", "accel_uuids": []},
                         version="6.1", cast=True, time=t + 0.5)[0])
        msgs.append(fanout("update_aggregates", {"aggregates": [i]}, time=t + 0.6))
        msgs.append(notification("compute.instance.update",
                                 {"state": STATES[i % 3], "memory_mb": 512 + i},
                                 publisher_id=f"compute.host{i % 2}", time=t + 0.7))
    return msgs


@pytest.fixture(scope="module")
def catalog_json() -> dict:
    return build_catalog(traffic()).to_json()


def entry(cat: dict, kind: str, **match) -> dict:
    found = [e for e in cat["entries"] if e["kind"] == kind
             and all(e.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (kind, match, [e["key"] for e in cat["entries"]])
    return found[0]


def test_catalog_follows_its_published_contract(catalog_json):
    Draft202012Validator.check_schema(CONTRACT)
    Draft202012Validator(CONTRACT).validate(catalog_json)
    assert catalog_json["catalog_version"] == CATALOG_VERSION
    for e in catalog_json["entries"]:
        Draft202012Validator.check_schema(e["schema"])


def test_rpc_entry_identity_counts_and_who_talks(catalog_json):
    e = entry(catalog_json, "rpc", method="build_and_run_instance", version="6.0")
    assert (e["exchange"], e["topic"], e["namespace"], e["exchange_guessed"]) == (
        "nova", "compute", None, False)
    assert e["styles"] == ["call"] and e["count"] == 30
    assert e["servers"] == ["host0", "host1"]
    assert e["routing_keys"] == ["compute.host0", "compute.host1"]
    assert e["senders"] == ["nova-conductor"] and e["receivers"] == ["nova-compute"]
    assert e["queues"] == ["compute.host0", "compute.host1"]
    assert (e["first_seen"], e["last_seen"]) == (T0, T0 + 29)


def test_args_schema_has_required_nullable_and_context_kept_apart(catalog_json):
    s = entry(catalog_json, "rpc", method="build_and_run_instance", version="6.0")["schema"]
    assert s["required"] == ["instance", "limits", "node"]
    assert s["properties"]["limits"]["type"] == ["object", "null"]
    assert "enum" not in s["properties"]["node"]  # host-like names are data, not an enum
    assert not any(k.startswith("_context") for k in s["properties"])
    ctx = catalog_json["contexts"]["nova"]
    assert "request_id" in ctx["properties"] and "is_admin" in ctx["required"]


def test_versioned_objects_are_shared_defs_with_const_envelope(catalog_json):
    s = entry(catalog_json, "rpc", method="build_and_run_instance", version="6.0")["schema"]
    assert s["properties"]["instance"]["$ref"] == "#/$defs/Instance@2.8"
    inst = s["$defs"]["Instance@2.8"]
    assert inst["title"] == "Instance_2_8"
    assert inst["properties"]["nova_object.name"] == {"const": "Instance"}
    assert inst["properties"]["nova_object.version"] == {"const": "2.8"}
    data = inst["properties"]["nova_object.data"]
    assert data["properties"]["flavor"]["$ref"] == "#/$defs/Flavor@1.2"
    assert "Flavor@1.2" in s["$defs"]  # reached transitively
    assert data["properties"]["uuid"]["format"] == "uuid"
    # each version its own definition and object entry
    objs = {(e["name"], e["version"]) for e in catalog_json["entries"] if e["kind"] == "object"}
    assert objs == {("Instance", "2.8"), ("Instance", "2.9"), ("Flavor", "1.2")}
    obj = entry(catalog_json, "object", name="Instance", version="2.9")
    assert obj["def_key"] == "Instance@2.9" and obj["count"] == 30
    assert obj["schema"]["properties"]["locked_by"]["type"] == ["string", "null"]


def test_samples_validate_against_their_entry_schema():
    msgs = traffic()
    cat = build_catalog(msgs).to_json()
    s = entry(cat, "rpc", method="build_and_run_instance", version="6.0")["schema"]
    v = Draft202012Validator(s)
    for m in msgs[:10]:
        inner = orjson.loads(orjson.loads(m.body)["oslo.message"])
        if inner.get("method") == "build_and_run_instance" and inner["version"] == "6.0":
            v.validate(inner["args"])


def test_two_versions_of_a_method_are_two_entries_with_what_changed(catalog_json):
    new = entry(catalog_json, "rpc", method="build_and_run_instance", version="6.1")
    assert new["styles"] == ["cast"] and new["reply"] is None
    assert new["changes"] == {"from_version": "6.0", "added": ["accel_uuids"],
                              "removed": ["limits"], "changed": ["instance"]}


def test_replies_give_result_schema_failures_and_latency(catalog_json):
    r = entry(catalog_json, "rpc", method="build_and_run_instance", version="6.0")["reply"]
    assert r["count"] == 27
    assert r["schema"]["required"] == ["host", "ok"]
    assert r["failures"] == [{"exception": "InstanceNotFound", "module": "nova.exception",
                              "count": 3, "example": "Instance 4 could not be found."}]
    lat = r["latency"]
    assert lat["count"] == 27
    assert lat["max"] == pytest.approx(270.0, abs=0.01)
    # 27 latencies: 10..270 ms in steps of 10, three failures at 200 ms instead of 50/140/230
    assert lat["p50"] == pytest.approx(160, rel=0.02)
    assert lat["p95"] == pytest.approx(260, rel=0.02)  # nearest rank: the 26th of 27
    assert r["pending"] == 3 and r["multipart"] == 0
    assert catalog_json["stats"]["unmatched_replies"] == 0


def test_multipart_replies_are_counted_and_the_terminator_is_not_a_result():
    m, mid = call("list_hosts", {}, time=T0)
    parts = [m, reply(mid, ["a", "b"], ending=False, time=T0 + 0.1),
             reply(mid, None, ending=True, time=T0 + 0.2)]
    r = build_catalog(parts).to_json()["entries"][0]["reply"]
    assert (r["count"], r["multipart"], r["pending"]) == (2, 1, 0)
    assert r["schema"]["type"] == "array"


def test_fanout_exchange_is_guessed_from_casts_of_the_same_topic(catalog_json):
    e = entry(catalog_json, "rpc", method="update_aggregates")
    assert (e["exchange"], e["exchange_guessed"], e["styles"]) == ("nova", True, ["fanout"])
    only_fanout = build_catalog([fanout("refresh", {}, topic="scheduler")]).to_json()
    e = only_fanout["entries"][0]
    assert (e["exchange"], e["exchange_guessed"]) == (None, False)


def test_notification_entry(catalog_json):
    e = entry(catalog_json, "notification", event_type="compute.instance.update")
    assert (e["exchange"], e["topic"], e["priorities"], e["versioned"]) == (
        "nova", "notifications", ["INFO"], False)
    assert e["publisher_ids"] == ["compute.host0", "compute.host1"]
    assert e["schema"]["properties"]["state"]["enum"] == sorted(STATES)
    assert e["schema"]["properties"]["memory_mb"]["x-busdoc-minimum"] == 512


def test_versioned_notification_payload_is_a_ref():
    n = notification("instance.update", instance(1), topic="versioned_notifications")
    e = entry(build_catalog([n]).to_json(), "notification")
    assert e["versioned"] and e["schema"]["$ref"] == "#/$defs/Instance@2.8"


def test_other_entries_for_celery_and_opaque_bodies():
    cel = stored(orjson.dumps([[1, 2], {}, {"callbacks": None}]), exchange="celery",
                 routing_key="celery", headers={"task": "proj.add", "id": "x"})
    blob = stored(b"\x89PNG", exchange="media", routing_key="thumb.42",
                  properties={"content_type": "image/png"})
    cat = build_catalog([cel, blob]).to_json()
    c = entry(cat, "other", protocol="celery")
    assert c["identity"] == {"task": "proj.add"} and c["schema"]["type"] == "array"
    o = entry(cat, "other", protocol="opaque")
    assert o["schema"] is None and o["content_types"] == ["image/png"]
    assert o["identity"]["routing_key"] == "thumb.*" and o["sizes"] == {"min": 4, "max": 4}


def test_output_is_deterministic():
    a = orjson.dumps(build_catalog(traffic()).to_json())
    b = orjson.dumps(build_catalog(traffic()).to_json())
    assert a == b


def test_incremental_state_gives_the_same_catalog_as_one_pass():
    msgs = traffic()
    cut = len(msgs) // 2 + 1  # cuts between some calls and their replies
    whole = build_catalog(msgs).to_json()
    first = build_catalog(msgs[:cut]).dumps_state()
    assert build_catalog(msgs[cut:], first).to_json() == whole


def test_merging_two_halves_gives_the_same_catalog_except_cross_half_replies():
    msgs = [m for m in traffic() if orjson.loads(m.body).get("oslo.message", "").find(
        '"result"') < 0]  # no replies: merging cannot pair across halves
    whole = build_catalog(msgs).to_json()
    half = len(msgs) // 2
    a, b = build_catalog(msgs[:half]), build_catalog(msgs[half:])
    assert a.merge(b).to_json() == whole


def test_pending_table_is_bounded_and_evictions_count_as_pending(monkeypatch):
    monkeypatch.setattr(catalog_module, "MAX_PENDING", 5)
    calls = [call("ping", {}, time=T0 + i) for i in range(12)]
    cat = build_catalog([m for m, _ in calls] + [reply(calls[0][1], 1)])
    assert len(cat.pending) == 5
    r = cat.to_json()["entries"][0]["reply"]
    assert r["pending"] == 12 and r["count"] == 0
    assert cat.to_json()["stats"]["unmatched_replies"] == 1


def test_state_is_small_for_a_large_stream():
    msgs = traffic() * 20
    random.Random(0).shuffle(msgs)
    state = build_catalog(msgs).dumps_state()
    assert len(state) < 100_000


@pytest.mark.parametrize(
    "state",
    [b"garbage", zlib.compress(b"[]"), zlib.compress(b'{"state_version": 1, "rpc": 5}')],
)
def test_unreadable_state_is_an_input_error(state):
    with pytest.raises(InputError):
        Catalog.loads_state(state)


@settings(max_examples=30)  # each example infers the whole traffic twice
@given(st.integers(0, 150), st.integers(0, 150))
def test_resuming_from_state_at_any_cuts_gives_the_one_pass_catalog(a, b):
    msgs = traffic()
    cuts = sorted({min(a, len(msgs)), min(b, len(msgs))})
    state = None
    start = 0
    for cut in [*cuts, len(msgs)]:
        state = build_catalog(msgs[start:cut], state).dumps_state()
        start = cut
    assert Catalog.loads_state(state).to_json() == build_catalog(msgs).to_json()


def test_truncated_bodies_are_counted_but_describe_nothing():
    m, _ = call("ping", {}, truncated=True)
    cat = build_catalog([m]).to_json()
    assert cat["entries"] == [] and cat["stats"]["truncated"] == 1


def test_deepest_accepted_bodies_do_not_exhaust_the_stack():
    leaf = "[" * 127 + "]" * 127  # JSON in a string, as deep as the parser accepts
    value: object = leaf
    for _ in range(120):
        value = {"a": value}
    m, _ = call("deep", {"v": value})
    catalog = build_catalog([m] * 2)
    cat = catalog.to_json()
    orjson.dumps(cat)  # the catalog and the state stay inside orjson's nesting limit
    assert Catalog.loads_state(catalog.dumps_state()).to_json() == cat
    assert cat["entries"][0]["count"] == 2
