"""Damaged input never escapes as anything but None or CaptureFormatError."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_pcap import NonSeekable, epb, idb, pcap_file, shb

from busdoc.errors import CaptureFormatError
from busdoc.sniffer.packet import SUPPORTED_LINKTYPES, TcpSegment, decode_tcp
from busdoc.sniffer.pcap import CaptureReader

FUZZ = settings(max_examples=300, deadline=None)

# A valid Ethernet/IPv4/TCP frame with options, to mutate.
_FRAME = (
    bytes.fromhex(
        "000000000000"
        "000000000000"
        "0800"  # Ethernet
        "4600003c0001000040060000"
        "0a000001"
        "0a000002"
        "01010100"  # IPv4 + 4 option bytes
        "9c401628"
        "000003e8"
        "000007d0"
        "6018ffff00000000"
        "020405b4"  # TCP + MSS
    )
    + b"payload!"
)


@FUZZ
@given(linktype=st.sampled_from(sorted(SUPPORTED_LINKTYPES)), data=st.binary(max_size=200))
def test_random_bytes_decode_to_none_or_a_segment(linktype: int, data: bytes) -> None:
    result = decode_tcp(linktype, data)
    assert result is None or isinstance(result, TcpSegment)


# The same without IPv4 options: the inlined Ethernet/IPv4 fast path.
_FRAME5 = _FRAME[:14] + b"\x45" + _FRAME[15:16] + b"\x00\x38" + _FRAME[18:34] + _FRAME[38:]


@FUZZ
@given(
    frame=st.sampled_from([_FRAME, _FRAME5]),
    flips=st.lists(st.tuples(st.integers(0, len(_FRAME5) - 1), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, len(_FRAME)),
)
def test_mutated_frames_decode_to_none_or_a_segment_within_the_frame(
    frame: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    mutated = bytearray(frame)
    for index, value in flips:
        mutated[index] = value
    result = decode_tcp(1, bytes(mutated[:cut]))
    if result is not None:
        assert len(result.payload) <= cut - 14 - 20 - 20


@pytest.mark.parametrize("frame", [_FRAME, _FRAME5], ids=["options", "no options"])
def test_unmutated_fuzz_frames_are_segments(frame: bytes) -> None:
    result = decode_tcp(1, frame)
    assert result is not None and result.payload == b"payload!" and result.dport == 5672


_PCAP = pcap_file([(1, 2, b"abc" * 20, 60), (3, 4, b"d" * 100, 100)])
_PCAPNG = shb("<") + idb("<", 1, tsresol=9) + epb("<", 0, 5, b"x" * 33) + epb("<", 0, 6, b"y")


@FUZZ
@given(
    base=st.sampled_from([_PCAP, _PCAPNG]),
    flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 300),
)
def test_damaged_captures_yield_records_or_a_capture_format_error(
    base: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(base)
    for index, value in flips:
        if index < len(data):
            data[index] = value
    try:
        reader = CaptureReader(NonSeekable(bytes(data[:cut]), piece=7), name="f")  # type: ignore[arg-type]
        records = list(reader)
    except CaptureFormatError as exc:
        assert str(exc).startswith("f: ")
        return
    assert sum(len(r.data) for r in records) <= cut
    if reader.format == "pcap":
        assert all(r.linktype == struct.unpack_from("<I", data, 20)[0] & 0xFFFF for r in records)
