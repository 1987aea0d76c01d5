"""``busdoc validate``: real traffic of a conforming and a misbehaving client, checked.

The contract is the catalog inferred from ``contract_v1.pcap`` (the oslo test service of
``tests/oslo_testservice/contract.py`` at API v1). ``contract_bad_client.pcap`` is a real
client breaking it (``cores`` sent as a string, ``flavor_id`` left out, an extra
``verbose`` argument, a method the server lacks); ``contract_good_client.pcap`` keeps to
it with values v1 never used (flavor 42), which are evidence, not violations.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from busdoc.inference.catalog import build_catalog
from busdoc.reports.validate import render_markdown, validate_messages
from busdoc.storage import open_store
from busdoc.storage.ingest import import_captures
from busdoc.storage.records import StoredMessage
from busdoc.storage.redact import Redactor

CAPTURES = Path(__file__).parent / "captures"
APIS = {"v1": "contract_v1.pcap", "v2": "contract_v2.pcap",
        "good": "contract_good_client.pcap", "bad": "contract_bad_client.pcap"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("validate")
    out: dict[str, Any] = {"root": root, "messages": {}, "db": {}}
    for api, pcap in APIS.items():
        db = root / f"{api}.db"
        store = open_store(str(db))
        try:
            summary = import_captures(store, [str(CAPTURES / pcap)], redactor=Redactor())
            assert not summary.failed()
            out["messages"][api] = list(store.iter_messages())
            if api == "v1":
                out["catalog"] = build_catalog(out["messages"][api]).to_json()
        finally:
            store.close()
        out["db"][api] = db
    out["catalog_json"] = root / "v1.json"
    out["catalog_json"].write_text(json.dumps(out["catalog"]))
    return out


def findings(report: Any, severity: str) -> set[tuple[str, str, str]]:
    return {(f.entry, f.rule, f.path) for f in report.findings.values()
            if f.severity == severity}


def test_traffic_the_catalog_came_from_has_no_finding(world: dict[str, Any]) -> None:
    report = validate_messages(world["catalog"], world["messages"]["v1"])
    assert report.ok and report.findings == {}
    assert report.checked == report.messages == 23


def test_misbehaving_client_breaks_exactly_the_rules_it_broke(world: dict[str, Any]) -> None:
    report = validate_messages(world["catalog"], world["messages"]["bad"])
    assert not report.ok
    assert findings(report, "violation") == {
        ("rpc:nova/scheduler//frobnicate", "unknown_method", ""),
        ("rpc:nova/scheduler//ping@1.0", "unexpected_argument", "verbose"),
        ("rpc:nova/scheduler//resize_instance@1.0", "missing_required", "flavor_id"),
        ("rpc:nova/scheduler//set_quota@1.0", "wrong_type", "cores"),
    }
    assert report.violations == 4
    # the server's TypeError replies are failures the catalog never saw: warnings
    assert findings(report, "warning") == {
        ("rpc:nova/scheduler//ping@1.0", "new_failure", "reply:"),
        ("rpc:nova/scheduler//resize_instance@1.0", "new_failure", "reply:"),
    }
    wrong = report.findings[("rpc:nova/scheduler//set_quota@1.0", "wrong_type", "cores")]
    assert wrong.examples[0].detail == "string '20', expected integer"


def test_conforming_client_gets_warnings_for_new_values_only(world: dict[str, Any]) -> None:
    report = validate_messages(world["catalog"], world["messages"]["good"])
    assert report.ok
    assert findings(report, "violation") == set()
    assert findings(report, "warning") == {
        ("notification:nova/notifications/scheduler.instance.resized", "new_value",
         "flavor_id"),
        ("rpc:nova/scheduler//resize_instance@1.0", "new_value", "flavor_id"),
        ("rpc:nova/scheduler//resize_instance@1.0", "new_value", "reply:flavor_id"),
    }


def test_a_range_marked_closed_turns_a_new_value_into_a_violation(
        world: dict[str, Any]) -> None:
    closed = copy.deepcopy(world["catalog"])
    [entry] = [e for e in closed["entries"] if e["key"].endswith("resize_instance@1.0")]
    entry["schema"]["properties"]["flavor_id"]["x-busdoc-closed"] = True
    report = validate_messages(closed, world["messages"]["good"])
    assert findings(report, "violation") == {
        ("rpc:nova/scheduler//resize_instance@1.0", "out_of_range", "flavor_id")}


def test_newer_api_traffic_shows_its_drift_as_violations(world: dict[str, Any]) -> None:
    report = validate_messages(world["catalog"], world["messages"]["v2"])
    assert findings(report, "violation") == {
        ("rpc:nova/scheduler//get_console@1.0", "missing_required", "console_type"),
        ("rpc:nova/scheduler//list_hosts", "unknown_method", ""),
        ("rpc:nova/scheduler//resize_instance", "unsupported_version", ""),
        ("rpc:nova/scheduler//set_quota@1.0", "wrong_type", "cores"),
    }
    assert ("notification:nova/notifications/scheduler.instance.resized", "new_field",
            "old_flavor_id") in findings(report, "warning")


def _message(mid: int, body: dict[str, Any]) -> StoredMessage:
    raw = orjson.dumps(body)
    return StoredMessage(
        id=mid, vhost="/", exchange="nova", routing_key="scheduler", properties={
            "content_type": "application/json"}, headers=None, body=raw,
        body_size=len(raw), body_sha256="0" * 64, truncated=False, redactions=(),
        observations=(), first_seen=0.0)


def test_an_enum_is_law_only_when_marked_closed(world: dict[str, Any]) -> None:
    catalog = copy.deepcopy(world["catalog"])
    [entry] = [e for e in catalog["entries"] if e["key"].endswith("get_console@1.0")]
    entry["schema"]["properties"]["console_type"]["enum"] = ["novnc", "spice-html5"]
    call = {"method": "get_console", "version": "1.0", "args": {
        "instance_uuid": "9d2c6f6e-8f5f-4f55-9d7b-6d7f0e0c1a01", "console_type": "rdp"}}
    report = validate_messages(catalog, [_message(1, call)])
    assert report.ok and findings(report, "warning") == {
        ("rpc:nova/scheduler//get_console@1.0", "new_value", "console_type")}
    entry["schema"]["properties"]["console_type"]["x-busdoc-closed"] = True
    report = validate_messages(catalog, [_message(1, call)])
    assert findings(report, "violation") == {
        ("rpc:nova/scheduler//get_console@1.0", "not_in_enum", "console_type")}


def test_markdown_lists_violations_with_message_examples(world: dict[str, Any]) -> None:
    report = validate_messages(world["catalog"], world["messages"]["bad"])
    text = render_markdown(report, "v1.json")
    assert "violates the contract; 4 violations, 2 warnings" in text
    assert "| **violation** | missing required | `flavor_id` | 1 | #" in text


# --------------------------------------------------------------------------- CLI


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    return subprocess.run([sys.executable, "-m", "busdoc", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_exit_codes_for_good_and_bad_clients(world: dict[str, Any]) -> None:
    cat = str(world["catalog_json"])
    good = run("validate", "--catalog", cat, "--db", str(world["db"]["good"]))
    assert good.returncode == 0, good.stderr
    assert "the traffic conforms" in good.stdout
    bad = run("validate", "--catalog", cat, "--db", str(world["db"]["bad"]),
              "--format", "json")
    assert bad.returncode == 1, bad.stderr
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["violations"] == 4


def test_cli_accepts_a_store_as_the_catalog(world: dict[str, Any]) -> None:
    result = run("validate", "--catalog", str(world["db"]["v1"]), "--db",
                 str(world["db"]["bad"]), "--format", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["violations"] == 4


@pytest.mark.parametrize("which", ["catalog", "db"])
def test_cli_missing_input_is_one_line_and_exit_2(world: dict[str, Any], tmp_path: Path,
                                                 which: str) -> None:
    cat = str(tmp_path / "nope.json") if which == "catalog" else str(world["catalog_json"])
    db = str(tmp_path / "nope.db") if which == "db" else str(world["db"]["good"])
    result = run("validate", "--catalog", cat, "--db", db)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope" in lines[0], result.stderr


def test_validate_help_explains_closed_sets() -> None:
    result = run("validate", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "x-busdoc-closed" in text and "--catalog" in text


@pytest.mark.postgres
def test_cli_checks_traffic_stored_in_postgresql(world: dict[str, Any]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from brokerutil import temp_postgres_db

    with temp_postgres_db() as url:
        store = open_store(url)
        try:
            import_captures(store, [str(CAPTURES / APIS["bad"])], redactor=Redactor())
        finally:
            store.close()
        result = run("validate", "--catalog", str(world["catalog_json"]), "--db", url,
                     "--format", "json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["violations"] == 4 and doc["checked"] == 14


def test_keys_outside_a_closed_object_are_violations_and_new_fields_otherwise(
        world: dict[str, Any]) -> None:
    catalog = copy.deepcopy(world["catalog"])
    [entry] = [e for e in catalog["entries"] if e["kind"] == "notification"]
    payload = {"event_type": "scheduler.instance.resized", "priority": "INFO",
               "publisher_id": "scheduler.host-a", "payload": {
                   "instance_uuid": "9d2c6f6e-8f5f-4f55-9d7b-6d7f0e0c1a01",
                   "flavor_id": 2, "zone": "az1"}}

    report = validate_messages(catalog, [_notification(payload)])
    assert report.ok and findings(report, "warning") == {
        (entry["key"], "new_field", "zone")}
    entry["schema"]["x-busdoc-closed"] = True
    report = validate_messages(catalog, [_notification(payload)])
    assert findings(report, "violation") == {(entry["key"], "unexpected_field", "zone")}


def _notification(body: dict[str, Any]) -> StoredMessage:
    raw = orjson.dumps(body)
    return StoredMessage(
        id=1, vhost="/", exchange="nova", routing_key="notifications.info",
        properties={"content_type": "application/json"}, headers=None, body=raw,
        body_size=len(raw), body_sha256="0" * 64, truncated=False, redactions=(),
        observations=(), first_seen=0.0)


def test_fixtures_are_the_recorded_captures() -> None:
    import hashlib

    for pcap in APIS.values():
        manifest = json.loads((CAPTURES / pcap.replace(".pcap", ".json")).read_text())
        data = (CAPTURES / pcap).read_bytes()
        assert manifest["fixture"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert len(data) < 300_000


def test_an_older_minor_version_is_checked_against_the_newer_entry(
        world: dict[str, Any], tmp_path: Path) -> None:
    store = open_store(str(world["db"]["v2"]), create=False)
    try:
        v2_catalog = build_catalog(store.iter_messages()).to_json()
    finally:
        store.close()
    report = validate_messages(v2_catalog, world["messages"]["v1"])
    resize = "rpc:nova/scheduler//resize_instance"
    assert findings(report, "warning") == {
        (resize, "older_version", ""),
        (f"{resize}@1.1", "absent_in_older_version", "clean_shutdown"),
    }
    assert findings(report, "violation") == {
        ("rpc:nova/scheduler//evacuate", "unknown_method", ""),
        ("rpc:nova/scheduler//set_quota@1.0", "wrong_type", "cores"),
    }


def test_rich_oslo_traffic_conforms_to_its_own_catalog(tmp_path: Path) -> None:
    """Versioned objects behind $ref, maps, nullable fields, redacted secrets, fanouts
    (no exchange on the wire), failure replies: all of it checks clean."""
    store = open_store(str(tmp_path / "oslo.db"))
    try:
        import_captures(store, [str(CAPTURES / "oslo_rpc.pcap")], redactor=Redactor())
        messages = list(store.iter_messages())
    finally:
        store.close()
    report = validate_messages(build_catalog(messages).to_json(), messages)
    assert report.findings == {}
    assert report.checked == 48
