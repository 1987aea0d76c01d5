"""The Markdown report: what a client author needs per method, with every link resolving."""

from __future__ import annotations

import re

import pytest
from report_samples import oslo_catalog

from busdoc.reports.document import program
from busdoc.reports.markdown import render_markdown


@pytest.fixture(scope="module")
def text() -> str:
    return render_markdown(oslo_catalog())


def section(text: str, anchor: str) -> str:
    start = text.index(f'<a id="{anchor}"></a>')
    end = text.find('<a id="', start + 1)
    return text[start:end if end > 0 else None]


def test_every_internal_link_has_its_anchor(text):
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and links <= anchors, links - anchors


def test_table_of_contents_goes_service_topic_method(text):
    toc = section(text, "contents")
    assert "- service `nova`: [wire contract](#wire-nova), [context](#context-nova)" in toc
    assert "  - topic `compute`" in toc
    assert "    - [compute.attach_volume v1.1](#rpc-nova-compute-attach-volume-1-1) (call, 9)" \
        in toc


def test_method_says_how_to_send_it(text):
    attach = section(text, "rpc-nova-compute-attach-volume-1-1")
    assert "| to call | exchange `nova` (topic), routing key `compute` or " \
           "`compute.<server>` |" in attach
    assert "`_reply_q`" in attach
    assert '"method": "attach_volume"' in attach
    assert '"_reply_q": "reply_<uuid4 hex>"' in attach
    assert "| schema files | `nova/compute/attach_volume@1.1.schema.json`, " \
           "`nova/compute/attach_volume@1.1.reply.schema.json` |" in attach
    fanout = section(text, "rpc-nova-compute-refresh-cache-1-0")
    assert "exchange `compute_fanout` (fanout)" in fanout
    assert "No reply: sent as fanout only." in fanout


def test_versions_are_linked_and_changes_listed(text):
    attach = section(text, "rpc-nova-compute-attach-volume-1-1")
    assert "Other versions: [1.0](#rpc-nova-compute-attach-volume-1-0)." in attach
    assert "Since version 1.0: added `mode`; changed `volume`." in attach


def test_argument_table_has_evidence_nullability_values_and_layout(text):
    attach = section(text, "rpc-nova-compute-attach-volume-1-1")
    assert ("| `mode` | string | yes (seen in 9 of 9) | yes | one of `\"ro\"` `\"rw\"` `null` |"
            in attach)
    assert "| `volume` | object [Volume@1.1](#object-nova-volume-1-1) |" in attach
    assert "date-time `YYYY-MM-DD HH:MM:SS.ffffff`" in attach


def test_reply_failures_and_latency(text):
    detach = section(text, "rpc-nova-compute-detach-volume-1-0")
    assert "**Reply** (3 replies matched):" in detach
    assert "| `VolumeNotFound` | `cinder.exception` | 2 | Volume 1 could not be found. |" \
        in detach
    assert re.search(r"Latency over 3 calls: p50 [\d.]+ ms, p95 [\d.]+ ms, max [\d.]+ ms\.",
                     detach)


def test_objects_and_context_are_written_once_and_linked(text):
    volume = section(text, "object-nova-volume-1-1")
    assert '"nova_object.version": "1.1"' in volume
    assert "Used by [nova/compute//attach_volume@1.1](#rpc-nova-compute-attach-volume-1-1)" \
        in volume
    assert text.count("### Volume@1.1") == 1
    context = section(text, "context-nova")
    assert "| `request_id` | string |" in context


def test_who_calls_whom_is_a_mermaid_diagram(text):
    wire = section(text, "wire-nova")
    diagram = re.search(r"```mermaid\n(.*?)```", wire, re.S)
    assert diagram is not None
    lines = diagram.group(1)
    assert lines.startswith("graph LR\n")
    assert '["nova-conductor"]' in lines
    assert re.search(r'-->\|"attach_volume, detach_volume, reboot, refresh_cache"\|', lines)


def test_oslo_connection_names_reduce_to_the_program():
    assert program("nova-compute:4632:2addf351-2fda-4d35-9cb2-d55ea9993e13") == "nova-compute"
    assert program("busdoc-fx-publisher") == "busdoc-fx-publisher"


def test_empty_catalog_says_what_to_do():
    out = render_markdown({"catalog_version": 1, "contexts": {}, "entries": []})
    assert "busdoc capture pcap FILE" in out
