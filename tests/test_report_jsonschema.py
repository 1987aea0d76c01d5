"""The ``jsonschema`` report: one valid 2020-12 file per method/reply/event/object, refs that
resolve, and the naming and keywords code generators need."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from report_samples import oslo_catalog

from busdoc.reports import render_files
from busdoc.reports.json_schema import BASE_URI, jsonschema_documents


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return jsonschema_documents(oslo_catalog())


def walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def schemas(docs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p: d for p, d in docs.items() if p.endswith(".schema.json")}


def registry_of(docs: dict[str, dict[str, Any]]) -> Registry:
    """The files as served under BASE_URI: each relative ``$id`` resolves to its URL."""
    return Registry().with_resources(
        (BASE_URI + p, Resource.from_contents(d)) for p, d in schemas(docs).items())


def validator(docs: dict[str, dict[str, Any]], path: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": BASE_URI + path}, registry=registry_of(docs))


def test_one_file_per_method_reply_event_object_and_wire_message(docs):
    assert set(schemas(docs)) == {
        "nova/compute/attach_volume@1.0.schema.json",
        "nova/compute/attach_volume@1.0.reply.schema.json",
        "nova/compute/attach_volume@1.1.schema.json",
        "nova/compute/attach_volume@1.1.reply.schema.json",
        "nova/compute/detach_volume@1.0.schema.json",
        "nova/compute/detach_volume@1.0.reply.schema.json",
        "nova/compute/reboot@1.0.schema.json",
        "nova/compute/refresh_cache@1.0.schema.json",
        "nova/notifications/volume.attach.end.schema.json",
        "objects/Volume@1.0.schema.json",
        "objects/Volume@1.1.schema.json",
        "nova/_wire/context.schema.json",
        "nova/_wire/envelope.schema.json",
        "nova/_wire/notification.schema.json",
        "nova/_wire/reply.schema.json",
        "nova/_wire/request.schema.json",
    }
    assert docs["index.json"]["entries"]["object:nova/Volume@1.1"] == [
        "objects/Volume@1.1.schema.json"]


def test_every_file_is_valid_against_the_2020_12_metaschema(docs):
    for path, doc in schemas(docs).items():
        Draft202012Validator.check_schema(doc)
        assert doc["$id"] == path.rsplit("/", 1)[-1]
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_ref_resolves_through_a_registry_of_the_files(docs):
    registry = registry_of(docs)
    refs = 0
    for path, doc in schemas(docs).items():
        resolver = registry.resolver(base_uri=BASE_URI + path)
        for node in walk(doc):
            if "$ref" in node:
                assert not node["$ref"].startswith("#/$defs/")
                resolver.lookup(node["$ref"])
                refs += 1
    assert refs >= 4


def test_shared_objects_are_referenced_relatively_not_copied(docs):
    args = docs["nova/compute/attach_volume@1.1.schema.json"]
    assert args["properties"]["volume"]["$ref"] == "../../objects/Volume@1.1.schema.json"
    reply = docs["nova/compute/attach_volume@1.1.reply.schema.json"]
    assert reply["$ref"] == "../../objects/Volume@1.1.schema.json"
    assert "$defs" not in args


def test_a_real_message_validates_against_its_files(docs):
    args = {"volume": {"nova_object.name": "Volume", "nova_object.namespace": "nova",
                       "nova_object.version": "1.1",
                       "nova_object.data": {"id": "6f1c0a52-0d2e-4c1b-9a7e-3b0d4c5e6f00",
                                            "status": "error", "size": 3,
                                            "attached_at": None, "metadata": {"a": "v"}}},
            "mountpoint": "/dev/vdb", "mode": None,
            "requested_at": "2026-11-24 20:10:06.218414"}
    check = validator(docs, "nova/compute/attach_volume@1.1.schema.json")
    check.validate(args)
    bad = json.loads(json.dumps(args))
    bad["volume"]["nova_object.version"] = "1.0"
    assert not check.is_valid(bad)
    bad = json.loads(json.dumps(args))
    del bad["mountpoint"]
    assert not check.is_valid(bad)


def test_classes_and_enums_are_titled_for_code_generators(docs):
    volume = docs["objects/Volume@1.1.schema.json"]
    assert volume["title"] == "Volume_1_1"
    data = volume["properties"]["nova_object.data"]
    assert data["title"] == "VolumeData_1_1"
    # status differs between Volume 1.0 and 1.1, so each enum carries its version
    assert data["properties"]["status"]["title"] == "VolumeStatus_1_1"
    assert data["properties"]["status"]["enum"] == ["available", "error", "in-use"]
    old = docs["objects/Volume@1.0.schema.json"]["properties"]["nova_object.data"]
    assert old["properties"]["status"]["title"] == "VolumeStatus_1_0"
    assert docs["nova/compute/attach_volume@1.1.schema.json"]["title"] == "AttachVolumeArgs_1_1"
    for doc in schemas(docs).values():
        for node in walk(doc):
            if "enum" in node or "const" in node or "properties" in node:
                assert "title" in node, node


def test_versioned_object_envelope_values_are_const(docs):
    props = docs["objects/Volume@1.0.schema.json"]["properties"]
    assert props["nova_object.name"] == {"title": "VolumeObjectName", "const": "Volume"}
    assert props["nova_object.namespace"] == {"title": "VolumeObjectNamespace", "const": "nova"}
    # generators make a const a one-value enum: each version needs its own name
    assert props["nova_object.version"] == {"title": "VolumeObjectVersion_1_0", "const": "1.0"}


def test_nullable_enum_lists_null_and_types_it(docs):
    mode = docs["nova/compute/attach_volume@1.1.schema.json"]["properties"]["mode"]
    assert mode["type"] == ["string", "null"]
    assert mode["enum"] == ["ro", "rw", None]


def test_required_is_exact(docs):
    args = docs["nova/compute/attach_volume@1.1.schema.json"]
    assert args["required"] == ["mode", "mountpoint", "requested_at", "volume"]
    data = docs["objects/Volume@1.0.schema.json"]["properties"]["nova_object.data"]
    assert "attached_at" in data["required"]


def test_rfc3339_keeps_date_time_and_oslo_timestamps_get_a_pattern(docs):
    data = docs["objects/Volume@1.1.schema.json"]["properties"]["nova_object.data"]
    assert data["properties"]["attached_at"]["format"] == "date-time"
    requested = docs["nova/compute/attach_volume@1.1.schema.json"]["properties"]["requested_at"]
    assert "format" not in requested
    assert "no zone" in requested["description"]
    validator = Draft202012Validator({"pattern": requested["pattern"]})
    assert validator.is_valid("2026-11-24 20:10:06.218414")
    assert not validator.is_valid("2026-11-24T20:10:06Z")


def test_evidence_becomes_description_and_examples_no_private_keywords(docs):
    for doc in schemas(docs).values():
        for node in walk(doc):
            assert not any(k.startswith("x-busdoc-") for k in node)
    prop = docs["nova/compute/attach_volume@1.1.schema.json"]["properties"]["mountpoint"]
    assert prop["description"] == "Seen in 9 of 9 messages."
    assert prop["examples"] == ["/dev/vdb"]


def test_request_wire_schema_carries_the_context_keys(docs):
    request = docs["nova/_wire/request.schema.json"]
    assert "_context_request_id" in request["properties"]
    assert {"method", "args", "_unique_id", "_context_request_id"} <= set(request["required"])
    envelope = docs["nova/_wire/envelope.schema.json"]
    assert envelope["properties"]["oslo.version"]["const"] == "2.0"
    validator(docs, "nova/_wire/envelope.schema.json").validate(
        {"oslo.version": "2.0", "oslo.message": "{}"})


def test_rendered_files_are_deterministic_json():
    a = render_files(oslo_catalog(), "jsonschema")
    b = render_files(oslo_catalog(), "jsonschema")
    assert a.keys() == b.keys()
    for path in a:
        json.loads(a[path])
    # uuids differ between builds (fresh _msg_id), the schemas must not
    assert a == b


def test_fanout_only_topics_and_namespaces_get_their_own_paths():
    from busdoc.inference.catalog import build_catalog
    from busdoc.inference.testing import call, fanout

    ping, _ = call("ping", {"arg": "x"}, namespace="baseapi", version="1.0")
    catalog = build_catalog([ping, fanout("sync", {"n": 1}, topic="scheduler")]).to_json()
    docs = jsonschema_documents(catalog)
    assert "nova/compute/baseapi/ping@1.0.schema.json" in docs
    assert "unknown/scheduler/sync@6.0.schema.json" in docs
    for fmt in ("markdown", "html", "asyncapi", "json"):
        assert render_files(catalog, fmt)
    for doc in schemas(docs).values():
        Draft202012Validator.check_schema(doc)
