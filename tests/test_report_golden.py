"""Golden files: every report format of a committed real capture, byte for byte.

The capture is imported into a fresh store, inferred incrementally and rendered, exactly as
``busdoc capture pcap`` + ``busdoc infer --format …`` would. A change in the decoder, the
inference or a renderer shows up here as a readable diff of the documents. After checking
the diff is intended, rewrite them: ``UPDATE_GOLDEN=1 pytest tests/test_report_golden.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from report_samples import CAPTURES, GOLDEN, capture_catalog

from busdoc.reports import FORMATS, render_files
from busdoc.reports.json_schema import BASE_URI

CAPTURE_NAMES = ["oslo_rpc.pcap", "pika_basic.pcap"]
"""oslo_rpc is the real oslo.messaging service; pika_basic plain JSON and binary bodies."""


def rendered(capture: Path, tmp: Path) -> dict[str, str]:
    catalog = capture_catalog(capture, tmp)
    files: dict[str, str] = {}
    for fmt in sorted(FORMATS):
        for name, text in render_files(catalog, fmt).items():
            files[f"{fmt}/{name}"] = text
    return files


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_reports_of_a_committed_capture_match_the_golden_files(name, tmp_path):
    capture = CAPTURES / name
    if not capture.exists():
        pytest.skip(f"{name} is not recorded yet (tests/captures/make_captures.py)")
    files = rendered(capture, tmp_path)
    golden = GOLDEN / Path(name).stem
    if os.environ.get("UPDATE_GOLDEN") == "1":
        if golden.exists():
            shutil.rmtree(golden)
        for rel, text in files.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text, encoding="utf-8")
    assert golden.is_dir(), f"no golden files for {name}: run UPDATE_GOLDEN=1 pytest {__file__}"
    on_disk = {p.relative_to(golden).as_posix() for p in golden.rglob("*") if p.is_file()}
    assert on_disk == set(files), "files added or removed; UPDATE_GOLDEN=1 after checking"
    for rel, text in sorted(files.items()):
        assert (golden / rel).read_text(encoding="utf-8") == text, f"{rel} differs"


def test_rendering_a_capture_twice_gives_the_same_bytes(tmp_path):
    capture = CAPTURES / "pika_basic.pcap"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert rendered(capture, tmp_path / "a") == rendered(capture, tmp_path / "b")


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_schema_files_of_a_capture_are_valid_and_resolve(name, tmp_path):
    capture = CAPTURES / name
    if not capture.exists():
        pytest.skip(f"{name} is not recorded yet")
    docs = {path: json.loads(text) for path, text in
            render_files(capture_catalog(capture, tmp_path), "jsonschema").items()
            if path.endswith(".schema.json")}
    assert docs
    registry = Registry().with_resources(
        (BASE_URI + p, Resource.from_contents(d)) for p, d in docs.items())
    for path, doc in docs.items():
        Draft202012Validator.check_schema(doc)
        resolver = registry.resolver(base_uri=BASE_URI + path)
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("$ref"), str):
                    resolver.lookup(node["$ref"])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)


def test_what_the_oslo_service_really_sent_validates_against_its_schema_files(tmp_path):
    """Ground truth from the capture's manifest (what the clients sent and got back)."""
    capture = CAPTURES / "oslo_rpc.pcap"
    if not capture.exists():
        pytest.skip("oslo_rpc.pcap is not recorded yet")
    manifest = json.loads(capture.with_suffix(".json").read_text())
    files = render_files(capture_catalog(capture, tmp_path), "jsonschema")
    registry = Registry().with_resources(
        (BASE_URI + p, Resource.from_contents(json.loads(t))) for p, t in files.items()
        if p.endswith(".schema.json"))

    def check(path: str, value: object) -> None:
        Draft202012Validator({"$ref": BASE_URI + path}, registry=registry,
                             format_checker=Draft202012Validator.FORMAT_CHECKER).validate(value)

    checked = 0
    for sent in manifest["sent"]:
        if "method" in sent:
            base = f"nova/compute/{sent['method']}@{sent['version']}"
            check(base + ".schema.json", sent["args"])
            checked += 1
            if "result" in sent and base + ".reply.schema.json" in files:
                check(base + ".reply.schema.json", sent["result"])
                checked += 1
        elif "event_type" in sent:
            check(f"nova/notifications/{sent['event_type']}.schema.json", sent["payload"])
            checked += 1
    assert checked >= len(manifest["sent"])
