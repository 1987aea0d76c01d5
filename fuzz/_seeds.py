"""Seed inputs for the atheris targets: the committed capture fixtures, cut to size."""

from __future__ import annotations

import os
from pathlib import Path

CAPTURES = Path(__file__).parent.parent / "tests" / "captures"


def write_corpus(directory: str, kind: str) -> str:
    """Fill ``directory`` (created if missing) with seeds for ``kind``; return it."""
    os.makedirs(directory, exist_ok=True)
    if os.listdir(directory):
        return directory
    seeds: list[bytes] = []
    if kind == "pcap":
        seeds = [p.read_bytes()[:4096] for p in sorted(CAPTURES.glob("*.pcap*"))]
    elif kind == "amqp":
        from busdoc.sniffer.packet import decode_tcp
        from busdoc.sniffer.pcap import open_capture

        for name in ("any_cooked.pcap", "pika_basic.pcap"):
            client, server = [], []
            for rec in open_capture(CAPTURES / name):
                seg = decode_tcp(rec.linktype, rec.data)
                if seg is not None and seg.payload:
                    (client if seg.dport == 5672 else server).append(seg.payload)
            seeds += [b"\x01" + b"".join(client)[:4096], b"\x00" + b"".join(server)[:4096]]
    elif kind == "body":
        import gzip
        import json

        doc = {"oslo.version": "2.0", "oslo.message": json.dumps(
            {"method": "ping", "args": {"admin_password": "x" * 12},
             "_context_auth_token": "t" * 40, "url": "rabbit://u:p@h:5672/"})}
        raw = json.dumps(doc).encode()
        seeds = [b"\x00" + raw, b"\x01" + gzip.compress(raw), b"\x02[[[[[[1]]]]]]"]
    for i, seed in enumerate(seeds):
        Path(directory, f"seed-{i}").write_bytes(seed)
    return directory
