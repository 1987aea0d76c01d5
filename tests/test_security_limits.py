"""Every resource limit exists, has a sane default, and holds at the pipeline's edges.

| limit | default | where |
| --- | --- | --- |
| largest stored body | 16 MiB (``--max-body``) | ``storage/store.py`` Writer |
| body kept while assembling | 256 MiB | ``sniffer/amqp.py`` AmqpConnection.max_body |
| decompressed size / ratio | 64 MiB / 200× past 1 MiB | ``sniffer/body.py`` |
| frame size before Tune-Ok | 64 MiB | ``sniffer/amqp.py`` DEFAULT_FRAME_LIMIT |
| bytes held per TCP flow | 8 MiB | ``sniffer/tcp.py`` TcpReassembler |
| TCP flows tracked | 10,000 | ``sniffer/tcp.py`` TcpReassembler |
| JSON depth | 128 parsed, 32 described | ``sniffer/body.py``, ``inference/schema.py`` |
| pcap record size | 256 MiB | ``sniffer/pcap.py`` MAX_RECORD |
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from busdoc.errors import InputError
from busdoc.inference.classify import decode_body
from busdoc.sniffer import amqp, body, pcap, tcp
from busdoc.sniffer.amqp import AmqpConnection
from busdoc.sniffer.capture import CaptureDecoder
from busdoc.sniffer.packet import TcpSegment
from busdoc.sniffer.pcap import PacketRecord
from busdoc.sniffer.records import Notice, Observation
from busdoc.storage.records import StoredMessage

CAPTURES = Path(__file__).parent / "captures"


def test_defaults_are_the_documented_ones() -> None:
    assert body.MAX_OUTPUT == 64 << 20 and body.MAX_RATIO == 200 and body.MAX_DEPTH == 128
    assert amqp.DEFAULT_FRAME_LIMIT == 64 << 20
    assert pcap.MAX_RECORD == 256 << 20
    reassembler = tcp.TcpReassembler()
    assert reassembler.max_flows == 10_000 and reassembler.max_buffer_per_flow == 8 << 20
    assert CaptureDecoder().max_body == 256 << 20


def test_max_body_stores_large_bodies_cut_with_full_size_and_hash(tmp_path: Path) -> None:
    manifest = json.loads((CAPTURES / "pika_split.json").read_text())
    truth = {(m["body_length"], m["body_sha256"]) for m in manifest["messages"]}
    env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    run = subprocess.run(
        [sys.executable, "-m", "busdoc", "capture", "pcap", "-q", "--max-body", "4096",
         "--db", "s.db", str(CAPTURES / "pika_split.pcapng")],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    exported = subprocess.run(
        [sys.executable, "-m", "busdoc", "export", "--db", "s.db"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120,
    ).stdout.splitlines()
    messages = [json.loads(line) for line in exported]
    cut = [m for m in messages if m["truncated"]]
    # full size and the hash of the whole body, as the client sent it
    assert {(m["body_size"], m["body_sha256"]) for m in cut} == {t for t in truth if t[0] > 4096}
    for m in messages:
        assert m["truncated"] == (m["body_size"] > 4096)


def test_decompression_bomb_in_a_stored_body_is_described_not_inflated() -> None:
    bomb = gzip.compress(b"[" + b" " * (100 << 20) + b"]")
    message = StoredMessage(
        id=1, vhost="/", exchange="x", routing_key="k",
        properties={"content_type": "application/json", "content_encoding": "gzip"},
        headers=None, body=bomb, body_size=len(bomb),
        body_sha256=hashlib.sha256(bomb).hexdigest(), truncated=False, redactions=(),
        observations=(), first_seen=0.0,
    )
    decoded = decode_body(message)
    assert decoded.status in ("opaque", "undecodable")  # never the inflated document


def test_frame_header_announcing_2_gib_is_skipped_not_buffered() -> None:
    conn = AmqpConnection("c")
    records = conn.feed(b"AMQP\x00\x00\x09\x01", from_client=True, time=0.0)
    records += conn.feed(struct.pack(">BHI", 1, 1, 0x7FFFFFFF), from_client=True, time=0.0)
    for _ in range(4):
        records += conn.feed(b"\0" * (1 << 20), from_client=True, time=1.0)
    assert [r.code for r in records if isinstance(r, Notice)] == ["garbage"]
    assert "exceeds the limit" in records[0].message  # type: ignore[union-attr]
    assert not any(isinstance(r, Observation) for r in records)


def test_json_nested_past_the_depth_limit_is_an_input_error() -> None:
    body.parse_json("[" * 128 + "]" * 128)
    with pytest.raises(InputError, match="deeper than 128"):
        body.parse_json("[" * 129 + "]" * 129)


def test_number_of_tracked_flows_is_bounded() -> None:
    reassembler = tcp.TcpReassembler(max_flows=500)
    for port in range(1000, 3000):
        seg = TcpSegment("10.0.0.1", "10.0.0.2", port, 5672, 1, 0, 0x18, b"x" * 10)
        reassembler.feed(seg, 0.0)
    assert len(reassembler) <= 500


def test_capture_decoder_forgets_flows_past_the_default_bound() -> None:
    """12,000 one-packet flows (a port scan through the capture): state stays bounded."""
    decoder = CaptureDecoder()
    eth = b"\0" * 12 + b"\x08\x00"
    for i in range(12_000):
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 40 + 4, 0, 0, 64, 6, 0,
                         bytes([10, 1, i >> 8, i & 255]), bytes([10, 0, 0, 1]))
        tcp_hdr = struct.pack(">HHIIBBHHH", 40000, 5672, 7, 0, 0x50, 0x18, 65535, 0, 0)
        decoder.feed(PacketRecord(float(i), 1, eth + ip + tcp_hdr + b"AMQP", 0))
    assert len(decoder._reassembler) <= 10_000


def test_flow_limits_reach_the_reassembler_from_the_capture_decoder() -> None:
    decoder = CaptureDecoder(max_flows=2, max_flow_buffer=4096)
    assert decoder._reassembler.max_flows == 2
    assert decoder._reassembler.max_buffer_per_flow == 4096
    peak = 0
    for rec in pcap.open_capture(CAPTURES / "pika_basic.pcap"):  # 3 connections, 6 directions
        decoder.feed(rec)
        peak = max(peak, len(decoder._reassembler))
    decoder.finish()
    assert peak <= 2
    assert decoder._reassembler.stats.evicted_flows > 0


@pytest.mark.parametrize("flag", ["--max-flows", "--max-flow-buffer"])
def test_flow_limit_flags_are_validated_and_used(tmp_path: Path, flag: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    base = [sys.executable, "-m", "busdoc", "capture", "pcap", "-q", "--json", "--db", "s.db"]
    bad = subprocess.run([*base, flag, "0", str(CAPTURES / "any_cooked.pcap")], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and flag in bad.stderr
    ok = subprocess.run([*base, flag, "100000", str(CAPTURES / "any_cooked.pcap")],
                        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["messages"] == 4
