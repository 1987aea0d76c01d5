"""The pcap/pcapng record loop: formats, byte orders, time resolutions, streams, damage."""

from __future__ import annotations

import gzip
import io
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, wrpcap

from busdoc.errors import CaptureFormatError
from busdoc.sniffer import pcap
from busdoc.sniffer.packet import decode_tcp
from busdoc.sniffer.pcap import CaptureReader, PacketRecord, open_capture
from busdoc.sniffer.tcp import StreamData, StreamGap, TcpReassembler

# -- a small writer, so byte order, resolution and block mix are under the test's control --


def pcap_file(
    packets: list[tuple[int, int, bytes, int]],
    *,
    order: str = "<",
    nanos: bool = False,
    linktype: int = 1,
    snaplen: int = 262144,
) -> bytes:
    """pcap bytes from ``(seconds, fraction, data, orig_len)`` tuples."""
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for sec, frac, data, orig in packets:
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def block(order: str, btype: int, body: bytes) -> bytes:
    body = _pad(body)
    length = 12 + len(body)
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def shb(order: str) -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    return block(order, 0x0A0D0D0A, body)


def idb(
    order: str,
    linktype: int,
    *,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
) -> bytes:
    body = struct.pack(order + "HHI", linktype, 0, snaplen)
    if tsresol is not None:
        body += option(order, 9, bytes([tsresol]))
    if tsoffset is not None:
        body += option(order, 14, struct.pack(order + "q", tsoffset))
    if tsresol is not None or tsoffset is not None:
        body += option(order, 0, b"")
    return block(order, 1, body)


def epb(order: str, ifid: int, ts: int, data: bytes, orig: int | None = None) -> bytes:
    orig = len(data) if orig is None else orig
    body = struct.pack(order + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), orig) + data
    return block(order, 6, body)


def spb(order: str, data: bytes, orig: int | None = None) -> bytes:
    orig = len(data) if orig is None else orig
    return block(order, 3, struct.pack(order + "I", orig) + data)


def obsolete_pb(order: str, ifid: int, ts: int, data: bytes) -> bytes:
    head = struct.pack(order + "HHIIII", ifid, 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
    return block(order, 2, head + data)


class NonSeekable(io.RawIOBase):
    """A pipe-like stream: read() only, in small pieces, seeking fails."""

    def __init__(self, data: bytes, piece: int = 1 << 20) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._piece = piece

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        size = self._piece if size < 0 else min(size, self._piece)
        chunk = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(chunk)
        return chunk

    def seek(self, *args: object) -> int:
        raise io.UnsupportedOperation("seek")

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")


def read_all(data: bytes, **kw: int) -> tuple[CaptureReader, list[PacketRecord]]:
    reader = CaptureReader(NonSeekable(data, **kw), name="t.pcap")  # type: ignore[arg-type]
    return reader, list(reader)


PACKETS = [
    (1_700_000_000, 250_000, b"\x01" * 60, 60),
    (1_700_000_001, 999_999, b"\x02" * 1514, 1514),
    (1_700_000_002, 0, b"", 0),
]


# -- pcap -----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcap_reads_both_byte_orders_with_microsecond_times(order: str) -> None:
    reader, records = read_all(pcap_file(PACKETS, order=order, linktype=113))
    assert reader.format == "pcap"
    assert [r.data for r in records] == [p[2] for p in PACKETS]
    assert [r.time for r in records] == [1_700_000_000.25, 1_700_000_001.999999, 1_700_000_002.0]
    assert {r.linktype for r in records} == {113}
    assert not reader.truncated


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcap_nanosecond_magic_scales_fraction_by_1e9(order: str) -> None:
    data = pcap_file([(10, 123_456_789, b"x", 1)], order=order, nanos=True)
    _, records = read_all(data)
    assert records[0].time == pytest.approx(10.123456789, abs=1e-9)


def test_pcap_keeps_original_length_of_packets_cut_by_snaplen() -> None:
    _, records = read_all(pcap_file([(1, 0, b"a" * 96, 1500)], snaplen=96))
    assert (len(records[0].data), records[0].orig_len) == (96, 1500)


def test_pcap_linktype_ignores_fcs_bits_in_the_header_field() -> None:
    data = pcap_file([(1, 0, b"a", 1)], linktype=1 | (0x5 << 26))
    _, records = read_all(data)
    assert records[0].linktype == 1


def test_pcap_written_by_scapy_decodes_to_the_same_segment(tmp_path: Path) -> None:
    packet = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=4000, dport=5672)
    packet = packet / Raw(b"AMQP\x00\x00\x09\x01")
    wrpcap(str(tmp_path / "s.pcap"), [packet])
    with open_capture(tmp_path / "s.pcap") as reader:
        records = list(reader)
    segment = decode_tcp(records[0].linktype, records[0].data)
    assert segment is not None
    assert (segment.src, segment.dport, segment.payload) == ("10.0.0.1", 5672, b"AMQP\0\0\x09\1")


def test_loopback_sized_65549_byte_frame_is_kept_whole() -> None:
    # IPv4 total length 65535 + 14 bytes of Ethernet header: what `tcpdump -i lo` records.
    frame = bytes(Ether() / IP() / TCP(sport=1, dport=5672) / Raw(b"m" * (65535 - 40)))
    assert len(frame) == 65549
    _, records = read_all(pcap_file([(1, 0, frame, len(frame))]), piece=4096)
    segment = decode_tcp(1, records[0].data)
    assert segment is not None and len(segment.payload) == 65495


def test_records_straddling_read_chunks_are_reassembled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pcap, "CHUNK_SIZE", 37)
    packets = [(i, i, bytes([i]) * (i * 13 % 200), i * 13 % 200) for i in range(200)]
    reader, records = read_all(pcap_file(packets))
    assert [r.data for r in records] == [p[2] for p in packets]
    assert not reader.truncated


@pytest.mark.parametrize("chunk", [1, 5, 15, 16, 17, 23, 37, 100])
def test_every_cut_of_a_capture_read_in_small_chunks(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Wherever the stream ends and however the chunks fall (record headers and data
    across one or several chunk boundaries): the complete records, and truncated exactly
    when the end is not on a record boundary."""
    monkeypatch.setattr(pcap, "CHUNK_SIZE", chunk)
    packets = [(i, i, bytes([i + 1]) * n, n) for i, n in enumerate([0, 3, 40, 1, 0, 21])]
    data = pcap_file(packets)
    ends, at = [], 24
    for p in packets:
        at += 16 + len(p[2])
        ends.append(at)
    for cut in range(24, len(data) + 1):
        reader, records = read_all(data[:cut])
        complete = sum(1 for e in ends if e <= cut)
        assert [r.data for r in records] == [p[2] for p in packets[:complete]], cut
        assert [r.time for r in records] == [p[0] + p[1] / 1e6 for p in packets[:complete]]
        assert reader.truncated == (cut not in (24, *ends)), cut


@pytest.mark.parametrize("chunk", [30, 33, 36, 39, 1 << 20])
def test_impossible_record_length_names_its_offset_wherever_the_chunks_fall(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(pcap, "CHUNK_SIZE", chunk)
    data = pcap_file(PACKETS[:1]) + struct.pack("<IIII", 1, 0, pcap.MAX_RECORD + 1, 0)

    with pytest.raises(CaptureFormatError, match=f"impossible record length "
                       f"{pcap.MAX_RECORD + 1} at offset {24 + 16 + 60}$"):
        read_all(data + b"x" * 64)


@pytest.mark.parametrize("chunk", [1, 7, 12, 13, 29, 64])
def test_every_cut_of_a_pcapng_read_in_small_chunks(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(pcap, "CHUNK_SIZE", chunk)
    payloads = [b"", b"a" * 3, b"b" * 40, b"c", b"d" * 21]
    blocks = [shb("<"), idb("<", 1, tsresol=3)]
    blocks += [epb("<", 0, 1000 + i, data) for i, data in enumerate(payloads[:3])]
    blocks += [spb("<", payloads[3]), obsolete_pb("<", 0, 2000, payloads[4])]
    data = b"".join(blocks)
    ends, at = [], 0
    for b in blocks:
        at += len(b)
        ends.append(at)
    packet_ends = ends[2:]
    for cut in range(4, len(data) + 1):  # the first 4 bytes tell the format
        reader, records = read_all(data[:cut])
        complete = sum(1 for e in packet_ends if e <= cut)
        assert [r.data for r in records] == payloads[:complete], cut
        assert reader.truncated == (cut not in ends), cut


@pytest.mark.parametrize("chunk", [50, 60, 70, 1 << 20])
def test_pcapng_error_offsets_are_the_blocks_wherever_the_chunks_fall(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(pcap, "CHUNK_SIZE", chunk)
    head = shb("<") + idb("<", 1)
    data = head + epb("<", 0, 1, b"x" * 8) + epb("<", 3, 2, b"y" * 40)

    with pytest.raises(CaptureFormatError, match=f"undescribed interface 3 at offset "
                       f"{len(head) + len(epb('<', 0, 1, b'x' * 8))}$"):
        read_all(data)


def test_reader_accepts_streams_returning_one_byte_per_read() -> None:
    data = pcap_file(PACKETS)
    _, records = read_all(data, piece=1)
    assert [r.data for r in records] == [p[2] for p in PACKETS]


def test_second_iteration_of_a_consumed_stream_is_empty() -> None:
    reader, records = read_all(pcap_file(PACKETS))
    assert len(records) == 3 and list(reader) == []


def test_bytes_read_reaches_the_stream_size() -> None:
    data = pcap_file(PACKETS)
    reader, _ = read_all(data, piece=100)
    assert reader.bytes_read == len(data)


# -- damage and non-captures ------------------------------------------------------------------


def test_file_cut_inside_a_record_yields_complete_records_and_flags_truncation() -> None:
    data = pcap_file(PACKETS)
    reader, records = read_all(data[:-1])
    assert [r.data for r in records] == [PACKETS[0][2], PACKETS[1][2]]
    assert reader.truncated


def test_file_cut_inside_a_record_header_flags_truncation() -> None:
    data = pcap_file(PACKETS[:1])
    reader, records = read_all(data + b"\0" * 5)
    assert len(records) == 1 and reader.truncated


def test_file_ending_on_a_record_boundary_is_not_truncated() -> None:
    reader, records = read_all(pcap_file(PACKETS[:2]))
    assert len(records) == 2 and not reader.truncated


def test_pcapng_cut_inside_a_block_flags_truncation() -> None:
    data = shb("<") + idb("<", 1) + epb("<", 0, 1, b"a" * 10) + epb("<", 0, 2, b"b" * 10)
    reader, records = read_all(data[:-3])
    assert [r.data for r in records] == [b"a" * 10] and reader.truncated


@pytest.mark.parametrize("content", [b"", b"hello world, not a capture", b"\xd4\xc3"])
def test_empty_or_foreign_file_is_rejected_with_its_name(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(CaptureFormatError, match=r"notes\.txt: not a pcap or pcapng file$"):
        open_capture(path)


def test_missing_file_is_a_capture_format_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureFormatError, match="cannot open"):
        open_capture(tmp_path / "absent.pcap")


def test_absurd_pcap_record_length_names_the_offset() -> None:
    data = pcap_file(PACKETS[:1]) + struct.pack("<IIII", 1, 0, 300 << 20, 300 << 20)
    with pytest.raises(CaptureFormatError, match=r"length 314572800 at offset 100"):
        read_all(data)


@pytest.mark.parametrize("length", [8, 13, 400 << 20])
def test_absurd_pcapng_block_length_names_the_offset(length: int) -> None:
    head = shb("<") + idb("<", 1)
    data = head + struct.pack("<II", 6, length) + b"\0" * 40
    with pytest.raises(CaptureFormatError, match=f"length {length} at offset {len(head)}"):
        read_all(data)


def test_pcapng_packet_for_an_undescribed_interface_is_an_error() -> None:
    data = shb("<") + idb("<", 1) + epb("<", 3, 1, b"abc")
    with pytest.raises(CaptureFormatError, match="interface 3"):
        read_all(data)


# -- pcapng ----------------------------------------------------------------------------------


def test_pcapng_interfaces_keep_their_own_linktype_and_time_resolution() -> None:
    o = "<"
    data = b"".join(
        [
            shb(o),
            idb(o, 1),  # default resolution: microseconds
            idb(o, 276, tsresol=9),  # nanoseconds
            idb(o, 101, tsresol=0x80 | 20, tsoffset=1_000_000_000),  # 2**-20 s, offset
            block(o, 4, b"\x01\x00\x04\x00abcd\x00\x00\x00\x00"),  # name resolution: skipped
            epb(o, 0, 1_700_000_000_500_000, b"eth"),
            epb(o, 1, 1_700_000_000_123_456_789, b"sll2"),
            block(o, 5, struct.pack(o + "III", 0, 0, 0)),  # interface statistics: skipped
            epb(o, 2, 3 << 20 | 1 << 19, b"raw"),
            block(o, 0x00000BAD, b"custom block payload"),  # custom: skipped
            epb(o, 0, 1_700_000_001_000_000, b"eth2"),
        ]
    )
    reader, records = read_all(data)
    assert reader.format == "pcapng"
    assert [(r.linktype, r.data) for r in records] == [
        (1, b"eth"),
        (276, b"sll2"),
        (101, b"raw"),
        (1, b"eth2"),
    ]
    assert records[0].time == 1_700_000_000.5
    assert records[1].time == pytest.approx(1_700_000_000.123456789, abs=1e-6)
    assert records[2].time == 1_000_000_003.5
    assert records[3].time == 1_700_000_001.0


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_simple_and_obsolete_packet_blocks(order: str) -> None:
    data = b"".join(
        [
            shb(order),
            idb(order, 1, snaplen=4),
            obsolete_pb(order, 0, 7_000_000, b"pb"),
            spb(order, b"abcdefgh", orig=8),  # snaplen 4 of interface 0 applies
        ]
    )
    _, records = read_all(data)
    assert [r.data for r in records] == [b"pb", b"abcd"]
    assert records[1].orig_len == 8
    assert records[1].time == records[0].time == 7.0  # SPB has no time: previous packet's


def test_pcapng_new_section_may_switch_byte_order_and_resets_interfaces() -> None:
    data = b"".join(
        [
            shb(">"),
            idb(">", 113, tsresol=3),
            epb(">", 0, 5_000, b"big"),
            shb("<"),
            idb("<", 1),
            epb("<", 0, 6_000_000, b"little"),
        ]
    )
    _, records = read_all(data)
    assert [(r.linktype, r.data, r.time) for r in records] == [
        (113, b"big", 5.0),
        (1, b"little", 6.0),
    ]


def test_pcapng_written_by_scapy_reads_back(tmp_path: Path) -> None:
    packets = [Ether() / IP() / TCP(sport=1, dport=2) / Raw(bytes([i]) * i) for i in range(1, 6)]
    writer = PcapNgWriter(str(tmp_path / "s.pcapng"))
    for p in packets:
        writer.write(p)
    writer.close()
    with open_capture(tmp_path / "s.pcapng") as reader:
        records = list(reader)
    assert [r.data for r in records] == [bytes(p) for p in packets]


# -- gzip and stdin ----------------------------------------------------------------------------


def test_gzipped_capture_is_detected_by_magic(tmp_path: Path) -> None:
    path = tmp_path / "c.pcap.anything"
    path.write_bytes(gzip.compress(pcap_file(PACKETS)))
    with open_capture(path) as reader:
        records = list(reader)
    assert reader.compressed and reader.format == "pcap"
    assert [r.data for r in records] == [p[2] for p in PACKETS]
    assert reader.bytes_read == path.stat().st_size


def test_gzip_members_concatenated_are_read_in_turn() -> None:
    data = shb("<") + idb("<", 1) + epb("<", 0, 1, b"one") + epb("<", 0, 2, b"two")
    cut = len(data) - 28
    stream = gzip.compress(data[:cut]) + gzip.compress(data[cut:])
    for piece in (1, 10, 1 << 20):  # the second member's magic may arrive split
        reader, records = read_all(stream, piece=piece)
        assert [r.data for r in records] == [b"one", b"two"] and not reader.truncated


def test_gzip_stream_cut_short_yields_what_inflated_and_flags_truncation() -> None:
    packets = [(i, 0, os.urandom(300), 300) for i in range(50)]
    stream = gzip.compress(pcap_file(packets))
    reader, records = read_all(stream[: len(stream) // 2])
    assert 0 < len(records) < 50
    assert [r.data for r in records] == [p[2] for p in packets[: len(records)]]
    assert reader.truncated


@pytest.mark.parametrize("compress", [False, True])
def test_dash_reads_standard_input(tmp_path: Path, compress: bool) -> None:
    data = pcap_file(PACKETS)
    script = (
        "from busdoc.sniffer.pcap import open_capture\n"
        "r = open_capture('-')\n"
        "print(r.name, r.format, [len(p.data) for p in r])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=gzip.compress(data) if compress else data,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.decode().split(maxsplit=2) == ["<stdin>", "pcap", "[60, 1514, 0]\n"]


# -- real captures ---------------------------------------------------------------------------

CLIENT_MESSAGES = [b"AMQP\x00\x00\x09\x01", os.urandom(1500), os.urandom(200_000), b"bye" * 700]
SERVER_REPLY = os.urandom(90_000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exchange(port: int) -> None:
    """A tiny TCP conversation on the loopback: several sends each way, then close."""
    server = socket.create_server(("127.0.0.1", port))
    received = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while len(received) < sum(map(len, CLIENT_MESSAGES)):
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                received.extend(chunk)
            conn.sendall(SERVER_REPLY)

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(("127.0.0.1", port)) as client:
        for message in CLIENT_MESSAGES:
            client.sendall(message)
        got = bytearray()
        while len(got) < len(SERVER_REPLY):
            chunk = client.recv(1 << 16)
            if not chunk:
                break
            got.extend(chunk)
    thread.join(10)
    server.close()
    assert bytes(received) == b"".join(CLIENT_MESSAGES) and bytes(got) == SERVER_REPLY


class _Recorder:
    """Run tcpdump/dumpcap until the test's traffic is done, then stop it with SIGINT."""

    def __init__(self, argv: list[str], started: str, stdout: int | None = None) -> None:
        self.proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, text=False)
        assert self.proc.stderr is not None
        self.log = b""
        while started.encode() not in self.log:
            line = self.proc.stderr.readline()
            if not line:
                raise AssertionError(f"{argv[0]} did not start: {self.log!r}")
            self.log += line

    def stop(self) -> str:
        # Let the last packets reach the capture buffer before interrupting.
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.stderr is not None
        self.log += self.proc.stderr.read()
        self.proc.wait(30)
        return self.log.decode(errors="replace")


def _streams(records: list[PacketRecord], port: int) -> dict[str, bytes]:
    reassembler = TcpReassembler()
    out: dict[str, bytearray] = {"to_server": bytearray(), "to_client": bytearray()}
    events = []
    for record in records:
        segment = decode_tcp(record.linktype, record.data)
        if segment is not None:
            events += reassembler.feed(segment, record.time)
    events += reassembler.flush(records[-1].time)
    for event in events:
        assert not isinstance(event, StreamGap), event
        if isinstance(event, StreamData):
            out["to_server" if event.flow[3] == port else "to_client"].extend(event.data)
    return {k: bytes(v) for k, v in out.items()}


def _assert_whole_conversation(records: list[PacketRecord], port: int) -> None:
    streams = _streams(records, port)
    assert streams["to_server"] == b"".join(CLIENT_MESSAGES)
    assert streams["to_client"] == SERVER_REPLY


@pytest.mark.capture
@pytest.mark.parametrize(
    ("interface", "extra", "linktype"),
    [
        ("lo", [], 1),
        ("any", ["--nano", "-y", "LINUX_SLL"], 113),
        ("any", ["-y", "LINUX_SLL2"], 276),
    ],
)
def test_tcpdump_capture_reassembles_to_the_bytes_sent(
    tmp_path: Path, interface: str, extra: list[str], linktype: int
) -> None:
    port = _free_port()
    path = tmp_path / "real.pcap"
    # -B: the default 2 MiB kernel buffer drops packets of a fast loopback burst.
    argv = ["tcpdump", "-n", "-U", "--immediate-mode", "-B", "65536", "-i", interface, *extra]
    recorder = _Recorder([*argv, "-w", str(path), "tcp", "port", str(port)], "listening on")
    _exchange(port)
    log = recorder.stop()
    assert re.search(r"^0 packets dropped by kernel$", log, re.M), log
    captured = int(re.search(r"(\d+) packets? captured", log).group(1))  # type: ignore[union-attr]
    with open_capture(path) as reader:
        records = list(reader)
    assert len(records) == captured and not reader.truncated
    assert {r.linktype for r in records} == {linktype}
    _assert_whole_conversation(records, port)


@pytest.mark.capture
def test_tcpdump_writing_to_a_pipe_is_read_while_it_runs(tmp_path: Path) -> None:
    port = _free_port()
    argv = ["tcpdump", "-n", "-U", "--immediate-mode", "-B", "65536", "-i", "lo", "-w", "-"]
    argv += ["tcp", "port"]
    recorder = _Recorder([*argv, str(port)], "listening on", stdout=subprocess.PIPE)
    assert recorder.proc.stdout is not None
    reader = CaptureReader(recorder.proc.stdout, name="<pipe>")
    records: list[PacketRecord] = []
    consumer = threading.Thread(target=lambda: records.extend(reader))
    consumer.start()
    _exchange(port)
    log = recorder.stop()
    consumer.join(30)
    assert re.search(r"^0 packets dropped by kernel$", log, re.M), log
    captured = int(re.search(r"(\d+) packets? captured", log).group(1))  # type: ignore[union-attr]
    assert len(records) == captured and not reader.truncated
    _assert_whole_conversation(records, port)


@pytest.mark.capture
def test_dumpcap_pcapng_with_two_interfaces_reassembles_despite_duplicates(
    tmp_path: Path,
) -> None:
    # Every loopback packet is seen on "lo" (Ethernet) and on "any" (cooked): the second
    # copy must be trimmed as a retransmission.
    port = _free_port()
    path = tmp_path / "real.pcapng"
    argv = ["dumpcap", "-q", "-B", "64", "-f", f"tcp port {port}", "-i", "lo", "-i", "any"]
    argv += ["-w", str(path)]
    recorder = _Recorder(argv, "File: ")  # printed once the interfaces are open
    _exchange(port)
    log = recorder.stop()
    drops = re.findall(r"Packets received/dropped on interface '[^']+': \d+/(\d+)", log)
    assert drops and set(drops) == {"0"}, log
    with open_capture(path) as reader:
        records = list(reader)
    assert reader.format == "pcapng"
    assert {r.linktype for r in records} == {1, 113}, log
    _assert_whole_conversation(records, port)
