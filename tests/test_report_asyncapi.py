"""The ``asyncapi`` report: an AsyncAPI 3.0 document the official parser accepts, with AMQP
bindings, send/receive operations and a reply on every call.

Validation runs ``tools/asyncapi-validate/validate.mjs`` (``@asyncapi/parser`` from npm).
Without ``tools/asyncapi-validate/node_modules`` the test installs the locked packages with
``npm ci`` into a cache folder (``BUSDOC_NPM_CACHE``, default ``~/.cache/busdoc``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from report_samples import CAPTURES, capture_catalog, oslo_catalog

from busdoc.reports import render_files
from busdoc.reports.asyncapi import asyncapi_document

TOOL = Path(__file__).resolve().parent.parent / "tools" / "asyncapi-validate"


def validator_dir() -> Path:
    """A folder holding validate.mjs and installed node_modules (npm ci once, cached)."""
    if (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir():
        return TOOL
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed to validate AsyncAPI (apt-get install nodejs npm)")
    lock = (TOOL / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("BUSDOC_NPM_CACHE", Path.home() / ".cache" / "busdoc"))
    target = cache / ("asyncapi-validate-" + hashlib.sha256(lock).hexdigest()[:12])
    if not (target / "node_modules" / "@asyncapi" / "parser").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(TOOL / name, target / name)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                       cwd=target, check=True, capture_output=True, timeout=600)
    shutil.copy(TOOL / "validate.mjs", target / "validate.mjs")
    return target


def validate_all(folder: Path, documents: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Run the parser once over several documents (node starts in seconds, not ms)."""
    paths = []
    for name, document in documents.items():
        path = folder / f"{name}.json"
        path.write_text(json.dumps(document))
        paths.append(str(path))
    where = validator_dir()
    run = subprocess.run(["node", str(where / "validate.mjs"), *paths], cwd=where,
                         capture_output=True, text=True, timeout=300)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in documents}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            out[Path(record["file"]).stem].append(record)
    assert run.returncode == (1 if any(x.get("severity") == "error" for lines in out.values()
                                       for x in lines) else 0), run.stderr
    return out


def broken(document: dict[str, Any]) -> dict[str, Any]:
    copy = json.loads(json.dumps(document))
    op = copy["operations"]["nova.compute.attach_volume_1_1.call"]
    op["messages"] = [{"$ref": "#/channels/nova.compute/messages/NoSuchMessage"}]
    return copy


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Parser output and documents: the sample, a broken copy, and each committed capture."""
    tmp = tmp_path_factory.mktemp("asyncapi")
    documents = {"sample": asyncapi_document(oslo_catalog())}
    documents["broken"] = broken(documents["sample"])
    for capture in ("oslo_rpc.pcap", "pika_basic.pcap"):
        if (CAPTURES / capture).exists():
            (tmp / capture).mkdir()
            documents[Path(capture).stem] = asyncapi_document(
                capture_catalog(CAPTURES / capture, tmp / capture))
    return {"documents": documents, "results": validate_all(tmp, documents)}


def errors(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [x for x in lines if x.get("severity") == "error"]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(oslo_catalog())


def test_official_parser_accepts_the_document(parsed, document):
    lines = parsed["results"]["sample"]
    assert not errors(lines)
    summary = lines[-1]
    assert summary["ok"] and summary["version"] == "3.0.0"
    assert summary["operations"] == len(document["operations"]) == 6


def test_official_parser_rejects_a_broken_reference(parsed):
    assert errors(parsed["results"]["broken"])


def test_calls_send_on_the_topic_channel_and_name_their_reply_queue(document):
    op = document["operations"]["nova.compute.attach_volume_1_1.call"]
    assert op["action"] == "send"
    assert op["channel"] == {"$ref": "#/channels/nova.compute"}
    assert op["reply"]["address"]["location"] == "$message.payload#/_reply_q"
    assert op["reply"]["channel"] == {"$ref": "#/channels/nova.reply"}
    assert document["channels"]["nova.reply"]["address"] is None
    channel = document["channels"]["nova.compute"]
    assert channel["address"] == "compute"
    assert channel["bindings"]["amqp"]["exchange"] == {"name": "nova", "type": "topic"}


def test_casts_fanouts_and_notifications_have_no_reply(document):
    ops = document["operations"]
    assert "reply" not in ops["nova.compute.reboot_1_0.cast"]
    fanout = ops["nova.compute.refresh_cache_1_0.fanout"]
    assert fanout["channel"] == {"$ref": "#/channels/compute_fanout"}
    assert document["channels"]["compute_fanout"]["bindings"]["amqp"]["exchange"]["type"] == \
        "fanout"
    note = ops["nova.notifications.volume.attach.end.info"]
    assert note["action"] == "receive"
    assert document["channels"]["nova.notifications.info"]["address"] == "notifications.info"


def test_cast_to_one_server_uses_a_parameterised_address(document):
    channel = document["channels"]["nova.compute.server"]
    assert channel["address"] == "compute.{server}"
    assert channel["parameters"]["server"]["examples"] == ["host-a"]


def test_payloads_reference_shared_schemas_with_generator_titles(document):
    schemas = document["components"]["schemas"]
    assert schemas["Volume_1_1"]["title"] == "Volume_1_1"
    args = schemas["AttachVolumeArgs_1_1"]
    assert args["properties"]["volume"] == {
        "description": "Seen in 9 of 9 messages.",
        "allOf": [{"$ref": "#/components/schemas/Volume_1_1"}]}
    message = document["components"]["messages"]["AttachVolumeCall_1_1"]
    own = message["payload"]["allOf"][0]
    assert own["properties"]["method"] == {"const": "attach_volume"}
    assert own["properties"]["version"] == {"const": "1.1"}
    assert {"_msg_id", "_reply_q"} <= set(own["required"])
    assert message["payload"]["allOf"][1] == {"$ref": "#/components/schemas/NovaContextKeys"}
    reply = document["components"]["messages"]["AttachVolumeReply_1_1"]["payload"]
    assert reply["properties"]["result"]["anyOf"][0] == {
        "$ref": "#/components/schemas/AttachVolumeReply_1_1Result"}


def test_render_is_deterministic():
    assert render_files(oslo_catalog(), "asyncapi") == render_files(oslo_catalog(), "asyncapi")


@pytest.mark.parametrize("name", ["oslo_rpc", "pika_basic"])
def test_official_parser_accepts_the_document_of_a_real_capture(parsed, name):
    if name not in parsed["results"]:
        pytest.skip(f"{name}.pcap is not recorded yet")
    lines = parsed["results"][name]
    assert not errors(lines)
    assert lines[-1]["operations"] == len(parsed["documents"][name]["operations"]) > 0
