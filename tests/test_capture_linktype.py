"""A pcapng with an interface busdoc cannot decode: its packets are skipped, once noticed."""

from __future__ import annotations

import struct
from pathlib import Path

import pika
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from busdoc.sniffer.capture import CaptureDecoder
from busdoc.sniffer.pcap import open_capture
from busdoc.sniffer.records import Notice, Observation

LINKTYPE_ETHERNET = 1
LINKTYPE_USB_LINUX = 189
LINKTYPE_IEEE802_11 = 105


def block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def shb() -> bytes:
    return block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(linktype: int) -> bytes:
    return block(1, struct.pack("<HHI", linktype, 0, 0))


def epb(ifid: int, usec: int, data: bytes) -> bytes:
    head = struct.pack("<IIIII", ifid, usec >> 32, usec & 0xFFFFFFFF, len(data), len(data))
    return block(6, head + data)


def tcp_frame(
    sport: int, dport: int, seq: int, ack: int, flags: str, payload: bytes = b""
) -> bytes:
    return bytes(
        Ether()
        / IP(
            src="10.0.0.5" if sport != 5672 else "10.0.0.9",
            dst="10.0.0.9" if dport == 5672 else "10.0.0.5",
        )
        / TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags)
        / payload
    )


def publish_bytes(body: bytes) -> bytes:
    return (
        b"AMQP\x00\x00\x09\x01"
        + pika.frame.Method(1, pika.spec.Basic.Publish(exchange="x", routing_key="rk")).marshal()
        + pika.frame.Header(1, len(body), pika.spec.BasicProperties()).marshal()
        + pika.frame.Body(1, body).marshal()
    )


def write_mixed_pcapng(path: Path) -> bytes:
    """USB and 802.11 interfaces around an Ethernet one carrying one AMQP publish."""
    body = b'{"hello": "world"}'
    payload = publish_bytes(body)
    t = 1_700_000_000_000_000
    blocks = [shb(), idb(LINKTYPE_USB_LINUX), idb(LINKTYPE_ETHERNET), idb(LINKTYPE_IEEE802_11)]
    blocks.append(epb(0, t, b"\x01" * 64))
    blocks.append(epb(1, t + 1, tcp_frame(40000, 5672, 100, 0, "S")))
    blocks.append(epb(0, t + 2, b"\x02" * 48))
    blocks.append(epb(2, t + 3, b"\x03" * 30))
    blocks.append(epb(1, t + 4, tcp_frame(5672, 40000, 900, 101, "SA")))
    blocks.append(epb(1, t + 5, tcp_frame(40000, 5672, 101, 901, "PA", payload)))
    blocks.append(epb(0, t + 6, b"\x04" * 70))
    path.write_bytes(b"".join(blocks))
    return body


def test_unsupported_interface_is_skipped_with_one_notice_per_linktype(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcapng"
    body = write_mixed_pcapng(path)
    decoder = CaptureDecoder()
    with open_capture(path) as reader:
        records = [r for rec in reader for r in decoder.feed(rec)]
    records += decoder.finish()

    notices = [r for r in records if isinstance(r, Notice)]
    assert [n.code for n in notices] == ["unsupported_linktype", "unsupported_linktype"]
    assert "189 (USB_LINUX)" in notices[0].message
    assert "105 (IEEE802_11)" in notices[1].message
    assert decoder.stats.notices["unsupported_linktype"] == 2

    observations = [r for r in records if isinstance(r, Observation)]
    assert [(o.kind, o.exchange, o.routing_key, o.body) for o in observations] == [
        ("publish", "x", "rk", body)
    ]
    assert decoder.stats.packets == 7
