"""Field inference: observed values → JSON Schema 2020-12 with evidence (tables first)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from busdoc.inference.schema import (
    MAX_PROPERTIES,
    FieldSchema,
    Redacted,
    datetime_layout,
    detect_format,
    infer,
    is_identifier_name,
    layout_matcher,
    merge,
    to_document,
)

UUIDS = [
    "0b5a3a48-7c43-4a4e-9a48-2f6a5b1a9c11",
    "6f1d2c3b-4a59-4e8f-8a7b-1c2d3e4f5a6b",
    "a1b2c3d4-e5f6-4a1b-8c2d-3e4f5a6b7c8d",
]


def schema_of(values: list[Any]) -> dict[str, Any]:
    return infer(values).to_json_schema()


@pytest.mark.parametrize(
    ("values", "expected_type"),
    [
        ([1, 2, 3], "integer"),
        ([1, 2.5], "number"),
        ([0.5], "number"),
        ([True, False], "boolean"),
        (["a", "b"], "string"),
        ([None], "null"),
        ([1, None], ["integer", "null"]),
        (["x", None, "y"], ["string", "null"]),
        ([[1, 2], []], "array"),
        ([{"a": 1}], "object"),
    ],
)
def test_json_types_are_recognised_and_int_widens_to_number(values, expected_type):
    assert schema_of(values)["type"] == expected_type


def test_genuinely_mixed_types_become_anyof_with_one_branch_per_type():
    s = schema_of(["a", 1, None])
    assert [b["type"] for b in s["anyOf"]] == ["integer", "string", "null"]
    assert "type" not in s


def test_only_one_type_plus_null_is_not_a_union():
    assert "anyOf" not in schema_of([1, None, 3])


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (UUIDS, "uuid"),
        (["2026-11-24T20:10:06Z", "2026-11-24 20:10:06.218414"], "date-time"),
        (["2026-11-24T20:10:06+00:00"], "date-time"),
        (["2026-11-24"], "date"),
        (["10.0.0.1", "192.168.122.254"], "ipv4"),
        (["fe80::1", "2001:db8::42"], "ipv6"),
        (["fa:16:3e:00:11:22"], "mac"),
        (["admin@example.org"], "email"),
        (["http://controller:8774/v2.1", "amqp://guest@localhost:5672//"], "uri"),
    ],
)
def test_string_formats_are_detected_when_every_value_matches(values, fmt):
    assert schema_of(values)["format"] == fmt


@pytest.mark.parametrize(
    "values",
    [
        [UUIDS[0], "not-a-uuid"],
        ["10.0.0.1", "compute-1"],
        ["2026-11-24T20:10:06Z", "yesterday"],
        ["active", "error"],
    ],
)
def test_no_format_when_one_value_does_not_match(values):
    assert "format" not in schema_of(values)


@pytest.mark.parametrize(
    ("value", "layout"),
    [
        ("2026-11-24T20:10:06Z", "YYYY-MM-DDTHH:MM:SSZ"),
        ("2026-11-24 20:10:06.218414", "YYYY-MM-DD HH:MM:SS.ffffff"),
        ("2026-11-24T20:10:06.218414", "YYYY-MM-DDTHH:MM:SS.ffffff"),
        ("2026-11-24T20:10:06.000000+00:00", "YYYY-MM-DDTHH:MM:SS.ffffff+HH:MM"),
        ("2026-11-24 20:10:06", "YYYY-MM-DD HH:MM:SS"),
        ("2026-11-24T20:10:06-0500", "YYYY-MM-DDTHH:MM:SS+HHMM"),
    ],
)
def test_datetime_layout_names_separator_fraction_and_zone(value, layout):
    assert datetime_layout(value) == layout
    assert detect_format(value) == "date-time"


TIMESTAMPS = [
    "2026-11-24T20:10:06Z", "2026-11-24T20:10:06z", "2026-11-24 20:10:06.218414",
    "2026-11-24T20:10:06.2184", "2026-11-24T20:10:06.000000+00:00", "2026-11-24 20:10:06",
    "2026-11-24T20:10:06-0500", "2026-11-24T20:10:06.123456789-05:00", "2026-11-24",
    "2026-11-24T20:10:06.1234567890", "2026-11-24T20:10:06+05", "20:10:06", "active", "",
]


@pytest.mark.parametrize("layout", sorted({datetime_layout(t) for t in TIMESTAMPS} - {None}))
def test_layout_matcher_accepts_exactly_the_strings_of_its_layout(layout):
    match = layout_matcher(layout)
    assert match is not None
    for t in TIMESTAMPS:
        assert bool(match(t)) == (datetime_layout(t) == layout), t


@pytest.mark.parametrize("layout", ["", "abc", "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS.", ".*"])
def test_layout_matcher_refuses_what_datetime_layout_never_makes(layout):
    assert layout_matcher(layout) is None


def test_every_datetime_layout_seen_is_listed():
    s = schema_of(["2026-11-24T20:10:06Z", "2026-11-24 20:10:06.218414", "2026-11-25T01:00:00Z"])
    assert s["x-busdoc-layout"] == ["YYYY-MM-DD HH:MM:SS.ffffff", "YYYY-MM-DDTHH:MM:SSZ"]


def test_required_means_present_whenever_parent_present_with_evidence():
    s = schema_of([{"a": 1, "b": None}, {"a": 2, "b": "x"}, {"a": 3}])
    assert s["required"] == ["a"]
    assert s["properties"]["a"]["x-busdoc-evidence"] == "seen in 3 of 3"
    assert s["properties"]["b"]["x-busdoc-presence"] == {"seen": 2, "of": 3}
    assert s["properties"]["b"]["type"] == ["string", "null"]
    assert s["properties"]["b"]["x-busdoc-null-count"] == 1


def test_nested_required_counts_against_the_parent_not_the_root():
    s = schema_of([{"o": {"x": 1}}, {"o": {"x": 2}}, {}])
    assert s["required"] == []
    assert s["properties"]["o"]["required"] == ["x"]
    assert s["properties"]["o"]["properties"]["x"]["x-busdoc-evidence"] == "seen in 2 of 2"


@pytest.mark.parametrize(
    ("values", "enum"),
    [
        (["active"] * 3 + ["stopped"] * 4 + ["error"] * 3, ["active", "error", "stopped"]),
        (["INFO"] * 5, ["INFO"]),
        (["active"] * 3 + ["stopped"] * 4 + ["error"], None),  # a value seen once: open set
        (["a", "b", "c"], None),  # every value seen once
        ([UUIDS[0]] * 5, None),  # identifiers are data, never an enum
        (["5d8c0a7e6a8b4a8e9d0b1a2b3c4d5e6f"] * 5, None),  # hex ids too
        (["compute-1"] * 5, None),  # host names too
        (["x" * 60] * 5, None),  # long text
        ([f"v{i}" for i in range(20)] * 3, None),  # too many distinct values
    ],
)
def test_enum_rule_needs_few_values_each_seen_repeatedly(values, enum):
    assert schema_of(values).get("enum") == enum


@pytest.mark.parametrize(
    ("values", "enum"),
    [
        (["host-a"] * 5, None),  # one value shaped like a host name
        (["ctl.example.org"] * 5, None),  # an FQDN
        (["powering-off"] * 5, None),  # one hyphenated value is no evidence either way
        (["in-use"] * 3 + ["available"] * 3, ["available", "in-use"]),  # a set of them is
        (["SOFT"] * 3 + ["HARD"] * 3, ["HARD", "SOFT"]),
    ],
)
def test_a_single_host_like_value_makes_no_enum(values, enum):
    assert schema_of(values).get("enum") == enum


@pytest.mark.parametrize(
    "name",
    ["host", "hostname", "hypervisor_hostname", "source_compute", "dest_host", "node",
     "availability_zone", "publisher_id", "display_name", "hostName", "server"],
)
def test_fields_named_for_hosts_and_identifiers_make_no_enum(name):
    records = [{name: "devstack", "vm_state": s} for s in ["active", "stopped"] * 3]
    props = schema_of(records)["properties"]
    assert "enum" not in props[name]
    assert props[name]["x-busdoc-distinct"] == 1
    assert props["vm_state"]["enum"] == ["active", "stopped"]  # a real enum still is one


def test_items_of_an_array_take_the_name_of_their_field():
    props = schema_of([{"hosts": ["alpha", "beta"], "roles": ["member", "reader"]}] * 3)[
        "properties"]
    assert "enum" not in props["hosts"]["items"]
    assert props["roles"]["items"]["enum"] == ["member", "reader"]


@pytest.mark.parametrize(
    ("name", "identifier"),
    [("host", True), ("hypervisor_hostname", True), ("instanceUUID", True),
     ("cell-name", True), ("vm_state", False), ("task_state", False), ("power_state", False),
     ("status", False), ("reboot_type", False), ("binary", False), ("", False), ("_", False)],
)
def test_identifier_names_are_told_by_their_last_word(name, identifier):
    assert is_identifier_name(name) is identifier


def test_nullable_enum_lists_null_so_null_stays_valid():
    s = schema_of(["on"] * 3 + ["off"] * 3 + [None])
    assert s["enum"] == ["off", "on", None]
    Draft202012Validator(s).validate(None)


def test_observed_ranges_are_annotations_not_constraints():
    s = infer([{"n": 3, "s": "ab", "l": [1]}, {"n": 9, "s": "abcd", "l": [1, 2, 3]}])
    props = s.to_json_schema()["properties"]
    assert (props["n"]["x-busdoc-minimum"], props["n"]["x-busdoc-maximum"]) == (3, 9)
    assert (props["s"]["x-busdoc-min-length"], props["s"]["x-busdoc-max-length"]) == (2, 4)
    assert (props["l"]["x-busdoc-min-items"], props["l"]["x-busdoc-max-items"]) == (1, 3)
    assert not {"minimum", "maximum", "minLength", "maxLength", "minItems"} & set(props["n"])


def test_array_items_get_their_own_schema():
    s = schema_of([[{"id": 1}, {"id": 2, "x": "a"}]])
    assert s["items"]["required"] == ["id"]


@pytest.mark.parametrize(
    "objects",
    [
        [{UUIDS[0]: {"state": "up"}, UUIDS[1]: {"state": "down"}}],
        [{"10.0.0.1": 1, "10.0.0.2": 2}],
        [{"compute-1.example.org": 1}, {"compute-2.example.org": 3}],
        [{"1": "a", "2": "b"}],
        # user metadata: many distinct keys, each object carries few of them
        [{f"meta_key_{i}": "v", f"other_{i}": "w"} for i in range(20)],
    ],
)
def test_objects_whose_keys_are_data_become_maps(objects):
    s = schema_of(objects)
    assert "properties" not in s
    assert s["additionalProperties"]["type"] in ("string", "integer", "object")
    assert s["x-busdoc-map"]["distinct_keys"] >= 1


def test_records_with_many_optional_fields_stay_records():
    objects = [{f"field_{k}": k for k in range(12) if (k + i) % 4} for i in range(12)]
    s = schema_of(objects)
    assert "properties" in s and len(s["properties"]) == 12


def test_too_many_distinct_keys_fold_into_a_map_to_bound_state():
    objects = [{f"k{i}_{j}": j for j in range(5)} for i in range(40)]
    node = infer(objects)
    assert node.props is None
    s = node.to_json_schema()
    assert s["additionalProperties"]["type"] == "integer"
    assert s["x-busdoc-map"]["distinct_keys"] == f">{MAX_PROPERTIES}"
    assert node.map_values is not None and node.map_values.seen == 200


def test_json_inside_a_json_string_is_expanded_and_marked_encoded():
    s = schema_of(['[{"id": 1, "address": "fa:16:3e:00:11:22"}]', "[]"])
    assert s["type"] == "string"
    assert s["x-busdoc-encoded"] == "application/json"
    assert s["x-busdoc-content-schema"]["items"]["properties"]["address"]["format"] == "mac"


def test_redacted_values_keep_their_type_format_and_length_classes_but_no_example():
    s = schema_of([Redacted("string", "fernet", "128-255"), Redacted("string", "fernet", "64-127")])
    assert s["type"] == "string"
    assert s["x-busdoc-redacted-format"] == "fernet"
    assert s["x-busdoc-redacted-length"] == "64-255"
    assert "x-busdoc-min-length" not in s and "format" not in s
    assert s["x-busdoc-redacted"] == 2
    assert "x-busdoc-examples" not in s and "enum" not in s


def test_redacted_strings_with_different_formats_name_none():
    s = schema_of([Redacted("string", "fernet", "128-255"), Redacted("string", "jwt", "256+"),
                   Redacted("string", None, "8-15")])
    assert "x-busdoc-redacted-format" not in s
    assert s["x-busdoc-redacted-length"] == "8+"


def test_redacted_containers_give_their_item_count_classes():
    s = schema_of([Redacted("array", None, "1-7"), Redacted("object", None, "0")])
    obj, array = s["anyOf"]
    assert array["x-busdoc-redacted-items"] == "1-7"
    assert obj["x-busdoc-redacted-properties"] == "0"


def test_redacted_shape_hints_merge_and_survive_the_state():
    a = infer([{"t": Redacted("string", "uuid", "32-63")}])
    b = infer([{"t": Redacted("string", "uuid", "16-31")}, {"t": Redacted("string", "uuid", "0")}])
    merged = merge(a, b)
    assert merged.to_json_schema() == infer(
        [{"t": Redacted("string", "uuid", c)} for c in ("32-63", "16-31", "0")]
    ).to_json_schema()
    t = FieldSchema.from_state(merged.to_state()).to_json_schema()["properties"]["t"]
    assert (t["x-busdoc-redacted-format"], t["x-busdoc-redacted-length"]) == ("uuid", "0-63")


def test_examples_are_few_and_long_strings_are_cut():
    s = schema_of(["a" * 500, "b", "c", "d"])
    assert len(s["x-busdoc-examples"]) == 3
    assert len(s["x-busdoc-examples"][0]) < 130


class _Sink:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def add_object(self, prefix: str, primitive: dict[str, Any]) -> str:
        key = f"{primitive[prefix + '_object.name']}@{primitive[prefix + '_object.version']}"
        self.seen.append(key)
        return key


def test_versioned_objects_are_referenced_not_inlined():
    sink = _Sink()
    obj = {"nova_object.name": "Flavor", "nova_object.namespace": "nova",
           "nova_object.version": "1.2", "nova_object.data": {"id": 1}}
    node = infer([{"flavor": obj}, {"flavor": None}], sink)
    doc = to_document(node, lambda refs: {r: {"title": r} for r in sorted(refs)})
    assert doc["properties"]["flavor"]["anyOf"] == [{"$ref": "#/$defs/Flavor@1.2"},
                                                     {"type": "null"}]
    assert doc["$defs"] == {"Flavor@1.2": {"title": "Flavor@1.2"}}
    assert sink.seen == ["Flavor@1.2"]


def test_merge_equals_inferring_everything_at_once():
    a = [{"x": 1, "s": "on"}, {"x": None}]
    b = [{"x": 2.5, "s": "off", "m": [1]}]
    assert merge(infer(a), infer(b)).to_json_schema() == infer(a + b).to_json_schema()


def test_merge_leaves_its_inputs_alone():
    a, b = infer([{"x": 1}]), infer([{"y": "s"}])
    before = a.to_json_schema()
    merge(a, b)
    assert a.to_json_schema() == before


def test_state_round_trip_keeps_everything():
    node = infer([{"a": [1, {"b": "2026-11-24"}], "m": {UUIDS[0]: 1}, "e": '{"k": 1}',
                   "r": Redacted("integer"), "t": Redacted("string", "jwt", "256+"), "big": 2**70}])
    again = FieldSchema.from_state(node.to_state())
    assert again.to_json_schema() == node.to_json_schema()


def test_json_strings_inside_expanded_json_strings_stay_strings():
    import orjson

    value: object = {"leaf": 1}
    for _ in range(8):  # escaping doubles the text each level
        value = {"inner": orjson.dumps(value).decode()}
    s = schema_of([orjson.dumps(value).decode()])
    inner = s["x-busdoc-content-schema"]["properties"]["inner"]
    assert inner["type"] == "string" and "x-busdoc-content-schema" not in inner


def test_containers_past_the_tracked_depth_are_counted_not_described():
    from busdoc.inference.schema import MAX_TRACKED_DEPTH

    value: object = {"leaf": 1}
    for _ in range(MAX_TRACKED_DEPTH + 5):
        value = {"a": value}
    s = schema_of([value, value])
    for _ in range(MAX_TRACKED_DEPTH):
        s = s["properties"]["a"]
    assert s["type"] == "object" and s["x-busdoc-too-deep"] == 2 and s["properties"] == {}
