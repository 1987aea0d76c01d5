"""Link, IP and TCP decoding of single captured packets, built with scapy."""

from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

from busdoc.errors import CaptureFormatError
from busdoc.sniffer.packet import (
    TcpSegment,
    UnsupportedLinkType,
    decode_tcp,
    decode_tcp_fields,
    is_supported_linktype,
)

PAYLOAD = b"\x01\x00\x01\x00\x00\x00\x0c" + b"x" * 12 + b"\xce"


def tcp4() -> Packet:
    return (
        IP(src="10.1.2.3", dst="10.9.8.7")
        / TCP(sport=41234, dport=5672, seq=1000, ack=2000, flags="PA")
        / Raw(PAYLOAD)
    )


def tcp6() -> Packet:
    return (
        IPv6(src="fe80::1", dst="2001:db8::5")
        / TCP(sport=41234, dport=5672, seq=1000, ack=2000, flags="PA")
        / Raw(PAYLOAD)
    )


EXPECTED4 = TcpSegment("10.1.2.3", "10.9.8.7", 41234, 5672, 1000, 2000, 0x18, PAYLOAD)
EXPECTED6 = TcpSegment("fe80::1", "2001:db8::5", 41234, 5672, 1000, 2000, 0x18, PAYLOAD)


def null_header(family: int, order: str) -> bytes:
    return struct.pack(order + "I", family)


@pytest.mark.parametrize(
    ("name", "linktype", "frame", "expected"),
    [
        ("ethernet ipv4", 1, bytes(Ether() / tcp4()), EXPECTED4),
        ("ethernet ipv6", 1, bytes(Ether() / tcp6()), EXPECTED6),
        ("802.1Q", 1, bytes(Ether() / Dot1Q(vlan=7) / tcp4()), EXPECTED4),
        (
            "802.1ad over 802.1Q",
            1,
            bytes(Ether() / Dot1AD(vlan=100) / Dot1Q(vlan=7) / tcp6()),
            EXPECTED6,
        ),
        ("linux cooked v1", 113, bytes(CookedLinux(proto=0x0800) / tcp4()), EXPECTED4),
        ("linux cooked v2", 276, bytes(CookedLinuxV2(proto=0x86DD) / tcp6()), EXPECTED6),
        ("null little-endian", 0, null_header(2, "<") + bytes(tcp4()), EXPECTED4),
        ("null big-endian", 0, null_header(2, ">") + bytes(tcp4()), EXPECTED4),
        ("null ipv6 (freebsd)", 0, null_header(28, "<") + bytes(tcp6()), EXPECTED6),
        ("null ipv6 (macos)", 0, null_header(30, ">") + bytes(tcp6()), EXPECTED6),
        ("openbsd loop", 108, null_header(2, ">") + bytes(tcp4()), EXPECTED4),
        ("raw 101", 101, bytes(tcp4()), EXPECTED4),
        ("raw 101 ipv6", 101, bytes(tcp6()), EXPECTED6),
        ("raw 12", 12, bytes(tcp4()), EXPECTED4),
        ("ipv4", 228, bytes(tcp4()), EXPECTED4),
        ("ipv6", 229, bytes(tcp6()), EXPECTED6),
    ],
)
def test_link_types_lead_to_the_same_tcp_segment(
    name: str, linktype: int, frame: bytes, expected: TcpSegment
) -> None:
    assert is_supported_linktype(linktype)
    assert decode_tcp(linktype, frame) == expected
    # The capture loop's plain-tuple form carries the same fields in the same order.
    fields = decode_tcp_fields(linktype, frame)
    assert type(fields) is tuple and fields == tuple(expected)


def test_ethernet_padding_after_a_short_ip_packet_is_not_payload() -> None:
    packet = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(flags="A") / Raw(b"hi")
    frame = bytes(packet) + b"\0" * 4  # padded to the 60-byte Ethernet minimum
    assert len(frame) == 60
    segment = decode_tcp(1, frame)
    assert segment is not None and segment.payload == b"hi"


def test_ipv4_header_options_are_skipped() -> None:
    packet = IP(src="1.1.1.1", dst="2.2.2.2", options=b"\x01\x01\x01\x00") / TCP() / Raw(b"d")
    assert bytes(packet)[0] & 0x0F == 6
    segment = decode_tcp(228, bytes(packet))
    assert segment is not None and segment.payload == b"d"


def test_tcp_options_are_skipped_by_data_offset() -> None:
    options = [("MSS", 1460), ("NOP", None), ("WScale", 7), ("Timestamp", (1, 2)), ("SAckOK", b"")]
    packet = IP() / TCP(flags="S", options=options) / Raw(b"syn data")
    segment = decode_tcp(228, bytes(packet))
    assert segment is not None
    assert (segment.flags, segment.payload) == (0x02, b"syn data")


def test_ipv6_extension_headers_are_walked_to_tcp() -> None:
    packet = (
        IPv6(src="::1", dst="::1")
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrRouting()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrFragment(offset=0, m=0)
        / TCP(sport=1, dport=2)
        / Raw(b"deep")
    )
    segment = decode_tcp(229, bytes(packet))
    assert segment is not None and (segment.src, segment.payload) == ("::1", b"deep")


def test_ipv6_non_first_fragment_is_not_tcp() -> None:
    packet = IPv6() / IPv6ExtHdrFragment(nh=6, offset=100) / Raw(b"middle of a segment" * 3)
    assert decode_tcp(229, bytes(packet)) is None


def test_ipv4_non_first_fragment_is_not_tcp() -> None:
    packet = IP(proto=6, frag=185) / Raw(b"middle of a segment" * 3)
    assert decode_tcp(228, bytes(packet)) is None


def test_ipv4_first_fragment_gives_the_captured_part() -> None:
    packet = IP(flags="MF") / TCP() / Raw(b"first part")
    segment = decode_tcp(228, bytes(packet))
    assert segment is not None and segment.payload == b"first part"


@pytest.mark.parametrize(
    "packet",
    [
        Ether() / ARP(),
        Ether() / IP() / UDP() / Raw(b"dns"),
        Ether() / IP() / ICMP(),
        Ether() / IPv6() / UDP(),
        Ether(type=0x88CC) / Raw(b"lldp"),
        CookedLinux(proto=0x0806) / ARP(),
    ],
    ids=["arp", "udp", "icmp", "udp6", "lldp", "cooked arp"],
)
def test_packets_without_tcp_give_none(packet: Packet) -> None:
    linktype = 113 if isinstance(packet, CookedLinux) else 1
    assert decode_tcp(linktype, bytes(packet)) is None


def test_null_header_with_a_foreign_family_is_not_tcp() -> None:
    assert decode_tcp(0, null_header(7, "<") + bytes(tcp4())) is None


@pytest.mark.parametrize(
    ("linktype", "frame"),
    [
        (1, bytes(Ether() / Dot1Q() / tcp4())),
        (1, bytes(Ether() / tcp6())),
        (113, bytes(CookedLinux() / tcp4())),
        (276, bytes(CookedLinuxV2(proto=0x0800) / tcp4())),
        (0, null_header(2, "<") + bytes(tcp4())),
        (101, bytes(tcp6())),
    ],
)
def test_packets_cut_before_the_end_of_the_tcp_header_give_none(
    linktype: int, frame: bytes
) -> None:
    headers = len(frame) - len(PAYLOAD)
    for cut in range(headers):
        assert decode_tcp(linktype, frame[:cut]) is None, cut


def test_payload_cut_by_snaplen_is_what_was_captured() -> None:
    frame = bytes(Ether() / tcp4())
    segment = decode_tcp(1, frame[:-5])
    assert segment is not None and segment.payload == PAYLOAD[:-5]


def test_ip_total_length_zero_from_segmentation_offload_trusts_the_capture() -> None:
    frame = bytearray(bytes(tcp4()))
    frame[2:4] = b"\0\0"
    segment = decode_tcp(228, bytes(frame))
    assert segment is not None and segment.payload == PAYLOAD


@pytest.mark.parametrize(
    ("linktype", "label"), [(127, r"127 \(IEEE802_11_RADIOTAP\)"), (4242, "4242")]
)
def test_unknown_link_type_raises_a_capture_format_error_naming_it(
    linktype: int, label: str
) -> None:
    assert not is_supported_linktype(linktype)
    with pytest.raises(UnsupportedLinkType, match=f"unsupported link type {label}") as info:
        decode_tcp(linktype, b"\0" * 64)
    assert isinstance(info.value, CaptureFormatError)
    assert info.value.linktype == linktype


def test_address_text_is_shared_between_packets_of_a_connection() -> None:
    first = decode_tcp(228, bytes(tcp4()))
    second = decode_tcp(228, bytes(tcp4()))
    assert first is not None and second is not None
    assert first.src is second.src and first.dst is second.dst
