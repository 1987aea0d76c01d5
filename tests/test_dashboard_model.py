"""The dashboard's rows and pages, computed from a catalog as plain values."""

from __future__ import annotations

from typing import Any

import pytest

from busdoc.inference import testing as t
from busdoc.inference.catalog import Catalog, build_catalog
from busdoc.reports.dashboard import model

T0 = 1_764_000_000.0


def rpc_messages() -> list[Any]:
    """An oslo-shaped service: calls with replies and a failure, casts, a fanout, two
    versions of one method, a notification carrying a versioned object."""
    out: list[Any] = []
    for i in range(4):
        m, mid = t.call("build_instance", {"instance_uuid": f"u-{i}", "flavor": "m1.small",
                                           "retries": i if i else None},
                        server="host1", time=T0 + i, version="6.0")
        out.append(m)
        if i == 3:
            fail = t.failure_json("InstanceNotFound", "nova.exception", "Instance u-3 gone")
            out.append(t.reply(mid, failure=fail, time=T0 + i + 0.2))
        else:
            out.append(t.reply(mid, {"host": "host1", "ok": True}, time=T0 + i + 0.05))
    for i in range(2):
        m, _ = t.call("build_instance", {"instance_uuid": "x", "flavor": "m1.small"},
                      server="host1", time=T0 + 10 + 4 * i, version="5.9")
        out.append(m)
    for i in range(3):
        m, _ = t.call("reboot", {"instance_uuid": f"u-{i}", "reboot_type": "SOFT"},
                      cast=True, time=T0 + 20 + i, version="6.0")
        out.append(m)
    out.append(t.fanout("update_capabilities", {"caps": {"cpu": 4}}, topic="scheduler",
                        time=T0 + 30))
    payload = t.versioned("InstancePayload", "1.1", {"uuid": "u-1", "state": "active"})
    out.append(t.notification("instance.create.end", payload, time=T0 + 60))
    return out


def rpc_catalog() -> Catalog:
    return build_catalog(rpc_messages())


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    return rpc_catalog().to_json()


def by_name(rows: list[model.Row]) -> dict[str, model.Row]:
    return {r.name: r for r in rows}


def test_rows_cover_methods_events_and_objects(catalog: dict[str, Any]) -> None:
    rows = by_name(model.rows_from_catalog(catalog))
    assert set(rows) == {"build_instance@6.0", "build_instance@5.9", "reboot@6.0",
                         "update_capabilities@6.0", "instance.create.end", "InstancePayload@1.1"}
    build = rows["build_instance@6.0"]
    assert (build.service, build.topic, build.styles, build.count) == ("nova", "compute", "call", 4)
    assert build.error_rate == pytest.approx(1 / 4)
    assert build.rate == pytest.approx(1.0)  # 4 calls over 3 s
    assert rows["reboot@6.0"].styles == "cast" and rows["reboot@6.0"].error_rate is None
    assert rows["update_capabilities@6.0"].styles == "fanout"
    assert rows["update_capabilities@6.0"].service == "?"  # no cast/call of scheduler seen
    event = rows["instance.create.end"]
    assert (event.service, event.topic, event.styles) == ("nova", "notifications", "event")
    assert rows["InstancePayload@1.1"].styles == "object"


def test_rows_group_by_service_then_topic_then_name(catalog: dict[str, Any]) -> None:
    rows = model.rows_from_catalog(catalog)
    keys = [(r.service, r.topic, r.name) for r in rows]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("order", "reverse", "first"),
    [
        ("count", False, "build_instance@6.0"),
        ("count", True, "instance.create.end"),  # the whole order flips, ties included
        ("name", False, "InstancePayload@1.1"),
        ("errors", False, "build_instance@6.0"),
        ("last", False, "InstancePayload@1.1"),  # the notification carrying it is newest
        ("rate", False, "build_instance@6.0"),
    ],
)
def test_sort_orders_put_the_expected_entry_first(
    catalog: dict[str, Any], order: str, reverse: bool, first: str
) -> None:
    rows = model.sort_rows(model.rows_from_catalog(catalog), order, reverse=reverse)
    assert rows[0].name == first


def test_unknown_sort_is_refused(catalog: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown sort"):
        model.sort_rows(model.rows_from_catalog(catalog), "colour")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("reboot", {"reboot@6.0"}),
        ("BUILD 5.9", {"build_instance@5.9"}),
        ("fanout", {"update_capabilities@6.0"}),
        ("notifications", {"instance.create.end"}),
        ("nothing-like-this", set()),
    ],
)
def test_filter_matches_every_word_case_insensitively(
    catalog: dict[str, Any], text: str, names: set[str]
) -> None:
    rows = model.filter_rows(model.rows_from_catalog(catalog), text)
    assert {r.name for r in rows} == names


def test_schema_rows_show_type_requiredness_with_evidence_and_nullability(
    catalog: dict[str, Any]
) -> None:
    entry = next(e for e in catalog["entries"] if e["key"].endswith("build_instance@6.0"))
    rows = {r.path: r for r in model.schema_rows(entry["schema"])}
    assert rows["instance_uuid"].required == "yes (4/4)"
    assert rows["instance_uuid"].type == "string"
    assert rows["retries"].nullable.startswith("yes")
    assert "integer" in rows["retries"].type and "null" in rows["retries"].type
    reply = {r.path: r for r in model.schema_rows(entry["reply"]["schema"])}
    assert set(reply) == {"host", "ok"} and reply["ok"].type == "boolean"


def test_schema_rows_walk_nested_objects_with_dotted_paths() -> None:
    schema = {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "object", "properties": {"b": {"type": "array", "items": {
            "type": "object", "properties": {"c": {"type": "string", "format": "uuid"}}}}}},
        "e": {"enum": ["x", "y"], "type": "string"}}}
    rows = {r.path: r for r in model.schema_rows(schema)}
    assert set(rows) == {"a", "a.b", "a.b[].c", "e"}
    assert rows["a.b[].c"].format == "uuid"
    assert rows["e"].enum == '"x", "y"'
    assert rows["a"].required == "yes" and rows["e"].required == "no"


def test_schema_rows_give_the_shape_hints_of_redacted_fields() -> None:
    schema = {"type": "object", "properties": {
        "token": {"type": "string", "x-busdoc-redacted": 3, "x-busdoc-redacted-format": "fernet",
                  "x-busdoc-redacted-length": "128-255"},
        "password": {"type": "string", "x-busdoc-redacted": 1,
                     "x-busdoc-redacted-length": "8-15"},
        "opaque": {"type": "string", "x-busdoc-redacted": 1}}}
    rows = {r.path: r for r in model.schema_rows(schema)}
    assert rows["token"].format == "redacted (fernet token, 128-255 chars)"
    assert rows["password"].format == "redacted (8-15 chars)"
    assert rows["opaque"].format == "redacted"


def test_send_hint_gives_the_exchange_and_routing_key_as_captured(
    catalog: dict[str, Any]
) -> None:
    entry = next(e for e in catalog["entries"] if e["key"].endswith("build_instance@6.0"))
    hint = dict(model.send_hint(entry))
    assert hint["exchange"] == "nova"
    assert hint["routing key"] == "compute.host1"
    assert '\\"method\\":\\"build_instance\\"' in hint["body"]
    assert "_reply_q" in hint["reply"]
    fan = next(e for e in catalog["entries"] if e.get("method") == "update_capabilities")
    assert dict(model.send_hint(fan))["fanout exchange"].startswith("scheduler_fanout")
    event = next(e for e in catalog["entries"] if e["kind"] == "notification")
    assert dict(model.send_hint(event))["routing key"] == "notifications.info"


def test_versions_list_every_version_with_what_changed(catalog: dict[str, Any]) -> None:
    entry = next(e for e in catalog["entries"] if e["key"].endswith("build_instance@6.0"))
    versions = model.versions_of(catalog, entry)
    assert [v["version"] for v in versions] == ["5.9", "6.0"]
    assert versions[1]["changes"]["added"] == ["retries"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (3.04, "3.0s"), (42, "42s"), (185, "3m05s"), (7800, "2h10m"),
     (3 * 86400 + 4000, "3d01h")],
)
def test_durations_fit_a_table_cell(seconds: float, text: str) -> None:
    assert model.fmt_duration(seconds) == text


def test_last_seen_is_relative_to_the_newest_message_not_the_clock(
    catalog: dict[str, Any]
) -> None:
    ref = model.newest(catalog)
    assert ref == T0 + 60
    assert model.fmt_ago(T0 + 60, ref) == "newest"
    assert model.fmt_ago(T0, ref) == "-1m00s"
    assert model.fmt_ago(None, ref) == "–"


@pytest.mark.parametrize(
    ("rate", "text"), [(None, "–"), (25.0, "25/s"), (2.5, "2.5/s"), (0.5, "30/m"),
                       (0.05, "3.0/m"), (0.001, "3.6/h")])
def test_rates_pick_a_readable_unit(rate: float | None, text: str) -> None:
    assert model.fmt_rate(rate) == text


def test_group_rows_total_entries_and_messages_per_service_and_topic(
    catalog: dict[str, Any]
) -> None:
    groups = {g.name: g for g in model.group_rows(model.rows_from_catalog(catalog))}
    assert list(groups) == ["?", "nova"]
    nova = groups["nova"]
    assert (nova.entries, nova.messages) == (5, 11)
    topics = {t.name: t for t in nova.children}
    assert (topics["compute"].entries, topics["compute"].messages) == (3, 9)
    assert [r.name for r in topics["compute"].rows] == [
        "build_instance@5.9", "build_instance@6.0", "reboot@6.0"]
