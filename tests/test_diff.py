"""``busdoc diff``: the changes between two real captures of the contract service, labelled.

``contract_v1.pcap`` and ``contract_v2.pcap`` are the oslo.messaging service of
``tests/oslo_testservice/contract.py`` at two API versions (its ``CHANGES`` lists what v2
does): the diff of their inferred catalogs must find exactly those changes, each with
its sender/receiver verdict, and call out the two changed without a version bump.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from busdoc.inference.catalog import build_catalog
from busdoc.reports.diff import diff_catalogs, render_markdown
from busdoc.storage import open_store
from busdoc.storage.ingest import import_captures
from busdoc.storage.redact import Redactor

CAPTURES = Path(__file__).parent / "captures"
SENDER, RECEIVER = "sender", "receiver"


def store_of(pcap: str, db: Path) -> dict[str, Any]:
    store = open_store(str(db))
    try:
        summary = import_captures(store, [str(CAPTURES / pcap)], redactor=Redactor())
        assert not summary.failed()
        return build_catalog(store.iter_messages()).to_json()
    finally:
        store.close()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("diff")
    out: dict[str, Any] = {"root": root}
    for api in ("v1", "v2"):
        db = root / f"{api}.db"
        out[api] = store_of(f"contract_{api}.pcap", db)
        out[f"{api}_db"] = db
        path = root / f"{api}.json"
        path.write_text(json.dumps(out[api]))
        out[f"{api}_json"] = path
    return out


def facts(catalog_a: dict[str, Any], catalog_b: dict[str, Any]) -> list[tuple[Any, ...]]:
    d = diff_catalogs(catalog_a, catalog_b)
    return [(c.entry, c.change, c.path, c.sender, c.receiver, c.old_version, c.new_version,
             c.unbumped) for c in d.changes]


def test_v1_to_v2_finds_each_change_of_the_service_with_its_labels(stores: dict[str, Any]) -> None:
    assert facts(stores["v1"], stores["v2"]) == [
        ("notification:nova/notifications/scheduler.instance.resized", "field_added",
         "old_flavor_id", "compatible", "compatible", None, None, False),
        ("rpc:nova/scheduler//evacuate", "entry_removed", "", "breaking", "compatible",
         "1.0", None, False),
        ("rpc:nova/scheduler//get_console", "now_optional", "console_type", "compatible",
         "breaking", "1.0", "1.0", True),
        ("rpc:nova/scheduler//list_hosts", "entry_added", "", "compatible", "compatible",
         None, "1.1", False),
        # bumped 1.0 -> 1.1; a new required argument breaks old callers, and new callers
        # of old servers (keyword arguments: an unexpected one is a TypeError)
        ("rpc:nova/scheduler//resize_instance", "field_added", "clean_shutdown", "breaking",
         "breaking", "1.0", "1.1", False),
        ("rpc:nova/scheduler//set_quota", "type_changed", "cores", "breaking", "breaking",
         "1.0", "1.0", True),
    ]


def test_shapes_changed_without_a_version_bump_are_called_out(stores: dict[str, Any]) -> None:
    d = diff_catalogs(stores["v1"], stores["v2"])
    assert d.unbumped == ["rpc:nova/scheduler//get_console@1.0",
                          "rpc:nova/scheduler//set_quota@1.0"]
    text = render_markdown(d)
    assert "## Changed without a version bump" in text
    assert "| now optional | `console_type` | `required` | `optional` | 1.0 (not bumped) |" \
        in text
    assert "| field added | `clean_shutdown` | – | `required` | 1.0 → 1.1 |" in text


def test_reverse_direction_swaps_sender_and_receiver_verdicts(stores: dict[str, Any]) -> None:
    got = {(f[0].rsplit("/", 1)[1], f[1], f[2]): (f[3], f[4])
           for f in facts(stores["v2"], stores["v1"])}
    assert got[("get_console", "now_required", "console_type")] == ("breaking", "compatible")
    assert got[("evacuate", "entry_added", "")] == ("compatible", "compatible")
    assert got[("list_hosts", "entry_removed", "")] == ("breaking", "compatible")
    assert got[("scheduler.instance.resized", "field_removed", "old_flavor_id")] == (
        "compatible", "compatible")


def test_a_catalog_diffed_with_itself_has_no_change(stores: dict[str, Any]) -> None:
    d = diff_catalogs(stores["v2"], copy.deepcopy(stores["v2"]))
    assert d.changes == () and not d.breaking


def test_an_observed_enum_that_grows_is_compatible_until_marked_closed() -> None:
    def cat(values: list[str], closed: bool = False) -> dict[str, Any]:
        prop: dict[str, Any] = {"type": "string", "enum": values}
        if closed:
            prop["x-busdoc-closed"] = True
        return {"catalog_version": 1, "contexts": {}, "entries": [{
            "kind": "notification", "key": "notification:nova/n/e",
            "schema": {"type": "object", "properties": {"state": prop},
                       "required": ["state"]}}]}

    open_diff = diff_catalogs(cat(["a"]), cat(["a", "b"]))
    assert [(c.change, c.sender, c.receiver) for c in open_diff.changes] == [
        ("enum_changed", "compatible", "compatible")]
    closed_diff = diff_catalogs(cat(["a"], closed=True), cat(["a", "b"]))
    assert [(c.change, c.sender, c.receiver) for c in closed_diff.changes] == [
        ("enum_changed", "compatible", "breaking")]


@pytest.mark.parametrize(
    ("old", "new", "change", "sender", "receiver"),
    [
        ({"type": "integer"}, {"type": ["integer", "null"]}, "type_widened", "compatible",
         "breaking"),
        ({"type": "integer"}, {"type": "number"}, "type_widened", "compatible", "breaking"),
        ({"type": "number"}, {"type": "integer"}, "type_narrowed", "breaking", "compatible"),
        ({"type": "string"}, {"type": "boolean"}, "type_changed", "breaking", "breaking"),
    ],
)
def test_type_changes_in_nested_arrays_are_labelled_by_direction(
        old: dict[str, Any], new: dict[str, Any], change: str, sender: str,
        receiver: str) -> None:
    def cat(item: dict[str, Any]) -> dict[str, Any]:
        return {"catalog_version": 1, "contexts": {}, "entries": [{
            "kind": "rpc", "key": "rpc:x/t//m@1.0", "exchange": "x", "topic": "t",
            "namespace": None, "method": "m", "version": "1.0", "reply": None,
            "schema": {"type": "object", "required": ["nets"], "properties": {"nets": {
                "type": "array", "items": {"type": "object", "required": ["size"],
                                           "properties": {"size": item}}}}}}]}

    [c] = diff_catalogs(cat(old), cat(new)).changes
    assert (c.path, c.change, c.sender, c.receiver, c.unbumped) == (
        "nets[].size", change, sender, receiver, True)


def test_versioned_object_fields_are_compared_through_their_refs() -> None:
    def cat(version: str, fields: dict[str, Any]) -> dict[str, Any]:
        key = f"Instance@{version}"
        return {"catalog_version": 1, "contexts": {}, "entries": [{
            "kind": "rpc", "key": "rpc:x/t//build@1.0", "exchange": "x", "topic": "t",
            "namespace": None, "method": "build", "version": "1.0", "reply": None,
            "schema": {"$defs": {key: {"type": "object", "properties": {"data": {
                "type": "object", "properties": fields, "required": sorted(fields)}}}},
                "type": "object", "required": ["instance"],
                "properties": {"instance": {"$ref": f"#/$defs/{key}"}}}}]}

    d = diff_catalogs(cat("2.7", {"uuid": {"type": "string"}}),
                      cat("2.8", {"uuid": {"type": "string"}, "tags": {"type": "array"}}))
    assert [(c.change, c.path, c.old, c.new) for c in d.changes] == [
        ("ref_changed", "instance", "Instance@2.7", "Instance@2.8"),
        ("field_added", "instance.data.tags", None, "required"),
    ]


# --------------------------------------------------------------------------- CLI


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    return subprocess.run([sys.executable, "-m", "busdoc", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_exits_1_on_breaking_changes_and_prints_json(stores: dict[str, Any]) -> None:
    result = run("diff", str(stores["v1_json"]), str(stores["v2_json"]), "--format", "json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["breaking"] is True
    assert doc["summary"]["unbumped"] == ["rpc:nova/scheduler//get_console@1.0",
                                          "rpc:nova/scheduler//set_quota@1.0"]
    assert len(doc["changes"]) == 6


def test_cli_exits_0_for_a_catalog_file_and_the_store_it_came_from(
        stores: dict[str, Any]) -> None:
    result = run("diff", str(stores["v1_json"]), str(stores["v1_db"]))
    assert result.returncode == 0, result.stderr
    assert "0 changes, no breaking change" in result.stdout


def test_cli_exits_0_when_only_compatible_changes(stores: dict[str, Any],
                                                  tmp_path: Path) -> None:
    def only(catalog: dict[str, Any], *methods: str) -> dict[str, Any]:
        out = copy.deepcopy(catalog)
        out["entries"] = [e for e in out["entries"] if e.get("method") in methods]
        return out

    old, new = only(stores["v1"], "ping"), only(stores["v2"], "ping", "list_hosts")
    (tmp_path / "a.json").write_text(json.dumps(old))
    (tmp_path / "b.json").write_text(json.dumps(new))
    result = run("diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert result.returncode == 0, result.stdout
    assert "| entry added |" in result.stdout


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "no such catalog file or store"), (b"{}", "not a busdoc catalog"),
     (b"\x00\x01garbage", "not a JSON catalog")],
)
def test_cli_bad_input_is_one_line_and_exit_2(stores: dict[str, Any], tmp_path: Path,
                                              content: bytes | None, needle: str) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_bytes(content)
    result = run("diff", str(bad), str(stores["v1_json"]))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_request_context_changes_are_reported_under_their_exchange(
        stores: dict[str, Any]) -> None:
    new = copy.deepcopy(stores["v1"])
    ctx = new["contexts"]["nova"]
    ctx["properties"]["is_admin"]["type"] = ["boolean", "null"]
    ctx["properties"]["tenant"] = {"type": "string"}
    assert facts(stores["v1"], new) == [
        ("context:nova", "type_widened", "is_admin", "compatible", "breaking", None, None,
         False),
        ("context:nova", "field_added", "tenant", "compatible", "compatible", None, None,
         False),
    ]


def test_diff_help_explains_the_labels() -> None:
    result = run("diff", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "labelled for senders" in text and "without a version bump" in text


def test_a_field_removed_from_a_closed_object_breaks_senders_still_sending_it() -> None:
    def cat(props: dict[str, Any], closed: bool) -> dict[str, Any]:
        return {"catalog_version": 1, "contexts": {}, "entries": [{
            "kind": "notification", "key": "notification:nova/n/e",
            "schema": {"type": "object", "properties": props, "required": sorted(props),
                       "x-busdoc-closed": closed}}]}

    both = {"a": {"type": "string"}, "b": {"type": "integer"}}
    only_a = {"a": {"type": "string"}}
    [open_change] = diff_catalogs(cat(both, False), cat(only_a, False)).changes
    assert (open_change.change, open_change.sender, open_change.receiver) == (
        "field_removed", "compatible", "breaking")
    [closed_change] = diff_catalogs(cat(both, True), cat(only_a, True)).changes
    assert (closed_change.sender, closed_change.receiver) == ("breaking", "breaking")


def test_a_version_no_longer_served_breaks_senders_pinned_to_it() -> None:
    def cat(*versions: str) -> dict[str, Any]:
        return {"catalog_version": 1, "contexts": {}, "entries": [{
            "kind": "rpc", "key": f"rpc:x/t//m@{v}", "exchange": "x", "topic": "t",
            "namespace": None, "method": "m", "version": v, "reply": None,
            "schema": {"type": "object", "properties": {"n": {"type": "integer"}},
                       "required": ["n"]}} for v in versions]}

    d = diff_catalogs(cat("1.0", "1.1"), cat("1.0"))
    assert [(c.change, c.old, c.new, c.sender) for c in d.changes] == [
        ("version_removed", "1.1", "1.0", "breaking")]
    assert diff_catalogs(cat("1.0"), cat("1.0", "1.1")).changes == ()
    [major] = diff_catalogs(cat("1.3"), cat("2.0")).changes
    assert (major.change, major.sender) == ("major_version_changed", "breaking")
