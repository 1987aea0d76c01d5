"""CaptureDecoder on real traffic: pika against the local RabbitMQ, recorded by tcpdump."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pytest

from busdoc.sniffer.capture import CaptureDecoder, connection_key
from busdoc.sniffer.pcap import PacketRecord, open_capture
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation

pytestmark = [pytest.mark.broker, pytest.mark.capture]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)


@dataclass
class Traffic:
    """What pika sent and received, to compare with what the capture decodes."""

    vhost: str
    pcap: Path
    published: list[tuple[int, str, str, bytes, dict]] = field(default_factory=list)
    delivered: list[bytes] = field(default_factory=list)
    got: list[bytes] = field(default_factory=list)
    returned: list[bytes] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)


class Tcpdump:
    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen(
            [
                "tcpdump",
                "-i",
                "lo",
                "-n",
                "-U",
                "--immediate-mode",  # else packets still in the TPACKET_V3 ring are lost at SIGINT
                "-B",
                "65536",  # KiB: loopback segments are up to 64 KiB each
                "-s",
                "0",
                "-w",
                str(path),
                "tcp port 5672",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # "listening on lo, ..." once the filter is set
        assert "listening on" in line, line

    def stop(self) -> str:
        time.sleep(0.2)  # let the last FIN/ACKs reach the capture buffer
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        return err


def body_of(size: int, seed: int) -> bytes:
    text = f'{{"oslo.version": "2.0", "oslo.message": "{{\\"method\\": \\"m{seed}\\"'
    pad = (str(seed) * size)[: max(0, size - len(text) - 4)]
    return (text + pad + '"}"}').encode()[:size] if size else b""


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    vhost = f"busdoc-capture-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    pcap = tmp_path_factory.mktemp("capture") / "traffic.pcap"
    out = Traffic(vhost=vhost, pcap=pcap)
    dump = Tcpdump(pcap)
    try:
        params = dict(host="127.0.0.1", virtual_host=vhost, frame_max=4096)
        pub = pika.BlockingConnection(
            pika.ConnectionParameters(**params, client_properties={"connection_name": "pub"})
        )
        con = pika.BlockingConnection(
            pika.ConnectionParameters(**params, client_properties={"connection_name": "con"})
        )
        out.ports["pub"] = pub._impl._transport._sock.getsockname()[1]
        out.ports["con"] = con._impl._transport._sock.getsockname()[1]
        setup = con.channel()
        setup.queue_declare("q-consume")
        setup.queue_declare("q-get")
        setup.exchange_declare("topic-ex", exchange_type="topic")
        setup.queue_bind("q-consume", "topic-ex", routing_key="compute.#")

        channels = [pub.channel() for _ in range(3)]
        sizes = [0, 1, 100, 4087, 4088, 4089, 9000, 20000, 65536, 150000]
        for i, size in enumerate(sizes):
            ch = channels[i % 3]
            body = body_of(size, i)
            props = pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                correlation_id=f"corr-{i}",
                reply_to="reply_abc",
                headers={"seq": i, "tags": ["a", "b"], "nested": {"n": i}},
            )
            if i % 2:
                exchange, key = "topic-ex", f"compute.host{i}"
            else:
                exchange, key = "", "q-get"
            ch.basic_publish(exchange, key, body, props)
            out.published.append((ch.channel_number, exchange, key, body, props))
        # Unroutable with mandatory: the broker sends basic.return.
        ret_body = b'{"lost": true}'
        channels[0].basic_publish("topic-ex", "nowhere", ret_body, mandatory=True)
        out.published.append((channels[0].channel_number, "topic-ex", "nowhere", ret_body, None))
        pub.process_data_events(time_limit=0.5)

        recv = con.channel()
        expected_consumed = sum(1 for p in out.published if p[1] == "topic-ex") - 1
        for _method, _props, body in recv.consume("q-consume", auto_ack=True, inactivity_timeout=5):
            if _method is None:
                break
            out.delivered.append(body)
            if len(out.delivered) == expected_consumed:
                break
        recv.cancel()
        getter = con.channel()
        while True:
            _method, _props, body = getter.basic_get("q-get", auto_ack=True)
            if _method is None:
                break
            out.got.append(body)
        setup.queue_delete("q-consume")
        setup.queue_delete("q-get")
        pub.close()
        con.close()
    finally:
        err = dump.stop()
        rabbitmqctl("delete_vhost", vhost)
    assert "0 packets dropped by kernel" in err, err
    yield out


def decode(paths: list[Path], *, skip_packets: int = 0, **kwargs) -> tuple[list, CaptureDecoder]:
    decoder = CaptureDecoder(**kwargs)
    records = []
    seen = 0
    for path in paths:
        with open_capture(path) as reader:
            for rec in reader:
                seen += 1
                if seen <= skip_packets:
                    continue
                records += decoder.feed(rec)
    records += decoder.finish()
    return records, decoder


def ours(records: list, traffic: Traffic) -> list:
    keys = {
        connection_key(("127.0.0.1", port), ("127.0.0.1", 5672)) for port in traffic.ports.values()
    }
    return [r for r in records if getattr(r, "connection", None) in keys]


def test_capture_was_recorded_with_both_connections(traffic: Traffic) -> None:
    assert traffic.pcap.stat().st_size > 200_000
    assert len(traffic.delivered) == 5  # six publishes to topic-ex, one of them unroutable
    assert len(traffic.got) == 5


def test_handshake_gives_connection_info_with_vhost_user_and_name(traffic: Traffic) -> None:
    records, _ = decode([traffic.pcap])
    infos = [r for r in ours(records, traffic) if isinstance(r, ConnectionInfo)]
    by_name = {i.client_properties["connection_name"]: i for i in infos}
    assert set(by_name) == {"pub", "con"}
    for name, info in by_name.items():
        assert info.connection == connection_key(
            ("127.0.0.1", traffic.ports[name]), ("127.0.0.1", 5672)
        )
        assert info.vhost == traffic.vhost
        assert info.user == "guest"
        assert info.client_properties["product"] == "Pika Python Client Library"


def test_every_publish_is_decoded_byte_exact_with_properties(traffic: Traffic) -> None:
    records, _ = decode([traffic.pcap])
    pubs = [r for r in ours(records, traffic) if isinstance(r, Observation) and r.kind == "publish"]
    assert len(pubs) == len(traffic.published)
    key = lambda o: (o.channel, o.exchange, o.routing_key, o.body)  # noqa: E731
    assert sorted(map(key, pubs)) == sorted(p[:4] for p in traffic.published)
    for o in pubs:
        assert o.vhost == traffic.vhost
        assert o.body_size == len(o.body)
        if o.routing_key != "nowhere":
            seq = o.headers["seq"]
            assert o.headers == {"seq": seq, "tags": ["a", "b"], "nested": {"n": seq}}
            assert o.properties == {
                "content_type": "application/json",
                "delivery_mode": 2,
                "correlation_id": f"corr-{seq}",
                "reply_to": "reply_abc",
            }
    # publishes on one channel keep their order
    for channel in {p[0] for p in traffic.published}:
        assert [o.body for o in pubs if o.channel == channel] == [
            p[3] for p in traffic.published if p[0] == channel
        ]


def test_deliveries_get_ok_and_return_match_what_pika_received(traffic: Traffic) -> None:
    records, _ = decode([traffic.pcap])
    obs = [r for r in ours(records, traffic) if isinstance(r, Observation)]
    delivers = [o for o in obs if o.kind == "deliver"]
    assert [o.body for o in delivers] == traffic.delivered
    assert {o.queue for o in delivers} == {"q-consume"}
    assert all(o.exchange == "topic-ex" and o.routing_key.startswith("compute.") for o in delivers)
    gets = [o for o in obs if o.kind == "get_ok"]
    assert [o.body for o in gets] == traffic.got
    assert {o.queue for o in gets} == {"q-get"}
    (ret,) = [o for o in obs if o.kind == "return"]
    assert (ret.reply_code, ret.reply_text, ret.body) == (312, "NO_ROUTE", b'{"lost": true}')


def test_clean_capture_has_no_notices_and_counts_add_up(traffic: Traffic) -> None:
    records, decoder = decode([traffic.pcap])
    mine = ours(records, traffic)
    assert [r for r in mine if isinstance(r, Notice)] == []
    stats = decoder.stats
    assert stats.packets >= stats.tcp_segments > 0
    assert stats.messages == sum(isinstance(r, Observation) for r in records)
    assert stats.messages >= len(traffic.published) + 5 + 5 + 1
    assert stats.gaps == 0 and stats.skipped_bytes == 0
    assert stats.amqp_connections >= 2
    assert stats.first_time is not None and stats.last_time >= stats.first_time


def test_capture_starting_mid_connection_decodes_what_follows(traffic: Traffic) -> None:
    with open_capture(traffic.pcap) as reader:
        packets = list(reader)
    # Start the capture just after the publisher's third message went out.
    records, _ = decode([traffic.pcap])
    third = [
        r for r in ours(records, traffic) if isinstance(r, Observation) and r.kind == "publish"
    ][2]
    cut = next(i for i, p in enumerate(packets) if p.time >= third.time) + 1
    late, _ = decode([traffic.pcap], skip_packets=cut)
    pubs = [r for r in ours(late, traffic) if isinstance(r, Observation) and r.kind == "publish"]
    sent_after = [p[3] for p in traffic.published][3:]
    got = [o.body for o in pubs]
    # Nothing invented; at most the one message cut in half is lost.
    assert all(b in sent_after for b in got)
    assert len(got) >= len(sent_after) - 1
    assert all(o.vhost is None for o in pubs)  # connection.open was before the cut
    assert not any(isinstance(r, ConnectionInfo) for r in ours(late, traffic))


def test_rotated_files_carry_connections_across(traffic: Traffic, tmp_path: Path) -> None:
    with open_capture(traffic.pcap) as reader:
        packets = list(reader)
    half = len(packets) // 2
    parts = [tmp_path / "a.pcap", tmp_path / "b.pcap"]
    write_pcap(parts[0], packets[:half])
    write_pcap(parts[1], packets[half:])
    whole, _ = decode([traffic.pcap])
    split, _ = decode(parts)
    assert split == whole


def write_pcap(path: Path, packets: list[PacketRecord]) -> None:
    """A classic little-endian µs pcap (what tcpdump -C writes, one file per rotation)."""
    import struct

    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, packets[0].linktype))
        for p in packets:
            sec = int(p.time)
            usec = round((p.time - sec) * 1e6)
            f.write(struct.pack("<IIII", sec, usec, len(p.data), p.orig_len))
            f.write(p.data)


# --------------------------------------------------------------------------- crafted packets


class Conn:
    """A TCP connection crafted with scapy, one PacketRecord per segment."""

    def __init__(self, client: tuple[str, int], server: tuple[str, int]) -> None:
        self.client, self.server = client, server
        self.seq = {client: 1000, server: 5000}
        self.t = 1_700_000_000.0

    def _pkt(self, src, dst, flags: str, payload: bytes = b"", *, skip: int = 0) -> PacketRecord:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        ip = IPv6 if ":" in src[0] else IP
        seq = self.seq[src] + skip
        frame = (
            Ether()
            / ip(src=src[0], dst=dst[0])
            / TCP(sport=src[1], dport=dst[1], seq=seq, ack=self.seq[dst], flags=flags)
            / payload
        )
        self.seq[src] = seq + len(payload) + (1 if "S" in flags else 0)
        self.t += 0.001
        data = bytes(frame)
        return PacketRecord(time=self.t, linktype=1, data=data, orig_len=len(data))

    def handshake(self) -> list[PacketRecord]:
        return [
            self._pkt(self.client, self.server, "S"),
            self._pkt(self.server, self.client, "SA"),
            self._pkt(self.client, self.server, "A"),
        ]

    def send(self, from_client: bool, payload: bytes, *, skip: int = 0) -> PacketRecord:
        a, b = (self.client, self.server) if from_client else (self.server, self.client)
        return self._pkt(a, b, "PA", payload, skip=skip)


def amqp_publish(channel: int, body: bytes, routing_key: str = "rk") -> bytes:
    return (
        pika.frame.Method(
            channel, pika.spec.Basic.Publish(exchange="", routing_key=routing_key)
        ).marshal()
        + pika.frame.Header(channel, len(body), pika.spec.BasicProperties()).marshal()
        + pika.frame.Body(channel, body).marshal()
    )


def run_packets(packets: list[PacketRecord], **kwargs) -> tuple[list, CaptureDecoder]:
    decoder = CaptureDecoder(**kwargs)
    records = [r for p in packets for r in decoder.feed(p)]
    return records + decoder.finish(), decoder


def test_tls_port_gives_one_notice_per_connection() -> None:
    c = Conn(("10.0.0.5", 40000), ("10.0.0.9", 5671))
    packets = c.handshake() + [
        c.send(True, b"\x16\x03\x01\x00\x10" + b"h" * 16),
        c.send(False, b"\x16\x03\x03\x00\x10" + b"s" * 16),
        c.send(True, b"\x17\x03\x03\x00\x10" + b"d" * 16),
    ]
    records, decoder = run_packets(packets)
    assert records == [
        Notice(
            code="tls",
            message="encrypted (TLS), cannot decode",
            connection="10.0.0.5:40000->10.0.0.9:5671",
        )
    ]
    assert decoder.stats.tls_connections == 1
    assert decoder.stats.notices == {"tls": 1}


def test_non_amqp_connection_is_ignored_and_counted() -> None:
    c = Conn(("10.0.0.5", 40001), ("10.0.0.9", 80))
    packets = c.handshake() + [
        c.send(True, b"GET / HTTP/1.1\r\n\r\n"),
        c.send(False, b"\x01\x00\x00" * 30),
    ]
    records, decoder = run_packets(packets)
    assert records == []
    assert decoder.stats.non_amqp_connections == 1
    assert decoder.stats.amqp_connections == 0


def test_protocol_header_on_any_port_makes_its_sender_the_client() -> None:
    c = Conn(("fd00::5", 40002), ("fd00::9", 15672))
    packets = [
        c.send(True, pika.frame.ProtocolHeader().marshal()),
        c.send(True, amqp_publish(1, b"v6")),
    ]
    records, decoder = run_packets(packets)
    (obs,) = records
    assert obs.connection == "[fd00::5]:40002->[fd00::9]:15672"
    assert obs.body == b"v6"


def test_server_port_decides_direction_without_syn() -> None:
    c = Conn(("10.0.0.5", 40003), ("10.0.0.9", 5672))
    deliver = (
        pika.frame.Method(
            1,
            pika.spec.Basic.Deliver(consumer_tag="t", delivery_tag=1, exchange="", routing_key="q"),
        ).marshal()
        + pika.frame.Header(1, 2, pika.spec.BasicProperties()).marshal()
        + pika.frame.Body(1, b"hi").marshal()
    )
    packets = [c.send(False, deliver), c.send(True, amqp_publish(2, b"pub"))]
    records, _ = run_packets(packets)
    assert [(r.kind, r.body, r.connection) for r in records] == [
        ("deliver", b"hi", "10.0.0.5:40003->10.0.0.9:5672"),
        ("publish", b"pub", "10.0.0.5:40003->10.0.0.9:5672"),
    ]


def test_tcp_gap_gives_notice_and_decoding_resumes() -> None:
    c = Conn(("10.0.0.5", 40004), ("10.0.0.9", 5672))
    first, lost, after = (
        amqp_publish(1, b"one"),
        amqp_publish(1, b"two" * 100),
        amqp_publish(1, b"three"),
    )
    packets = c.handshake() + [
        c.send(True, pika.frame.ProtocolHeader().marshal()),
        c.send(True, first),
    ]
    packets.append(c.send(True, after, skip=len(lost)))  # the segment with "two" was not captured
    packets.append(c.send(False, b"", skip=len(lost)))  # server ACKs past the hole: it is lost
    records, decoder = run_packets(packets)
    assert [r.body for r in records if isinstance(r, Observation)] == [b"one", b"three"]
    assert [r.code for r in records if isinstance(r, Notice)] == ["tcp_gap"]
    assert decoder.stats.gaps == 1


def test_gap_before_the_first_captured_byte_resynchronises_instead_of_garbage() -> None:
    c = Conn(("10.0.0.5", 40005), ("10.0.0.9", 5672))
    header = pika.frame.ProtocolHeader().marshal()
    packets = c.handshake()
    packets.append(c.send(True, amqp_publish(1, b"after"), skip=len(header)))  # header lost
    packets.append(c.send(False, b""))  # the server ACKs past the hole
    records, _ = run_packets(packets)
    assert [r.body for r in records if isinstance(r, Observation)] == [b"after"]
    assert [r.code for r in records if isinstance(r, Notice)] == ["tcp_gap"]


# --------------------------------------------------------------------------- committed fixtures

CAPTURES = Path(__file__).parent / "captures"


def sidecar_value(value: object) -> object:
    """The sidecar's JSON spelling of AMQP field values, back to what pika decodes."""
    import base64
    import datetime
    import decimal

    if isinstance(value, dict):
        if set(value) == {"$decimal"}:
            return decimal.Decimal(value["$decimal"])
        if set(value) == {"$timestamp"}:
            return datetime.datetime.fromtimestamp(value["$timestamp"], datetime.UTC)
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: sidecar_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sidecar_value(v) for v in value]
    return value


@pytest.mark.parametrize("name", ["pika_basic.pcap", "pika_split.pcapng"])
def test_committed_fixture_decodes_to_its_sidecar(name: str) -> None:
    import base64
    import hashlib
    import json

    path = CAPTURES / name
    sidecar_path = path.with_suffix(".json")
    if not path.exists() or not sidecar_path.exists():
        pytest.skip(f"{name} not recorded")
    sidecar = json.loads(sidecar_path.read_text())
    records, decoder = decode([path])
    obs = [r for r in records if isinstance(r, Observation)]
    assert [r for r in records if isinstance(r, Notice)] == []
    counts = {k: sum(o.kind == k for o in obs) for k in sidecar["counts"]}
    assert counts == sidecar["counts"]
    infos = {r.connection: r for r in records if isinstance(r, ConnectionInfo)}
    for conn in sidecar["connections"]:
        info = infos[conn["connection"]]
        assert (info.user, info.vhost) == (conn["user"], conn["vhost"])
        assert info.client_properties["connection_name"] == conn["connection_name"]
    unmatched = list(obs)
    for msg in sidecar["messages"]:
        body = base64.b64decode(msg["body_b64"]) if "body_b64" in msg else None
        for seen in msg["observations"]:
            candidates = [
                o
                for o in unmatched
                if (o.connection, o.channel, o.kind)
                == (seen["connection"], seen["channel"], seen["kind"])
                and o.delivery_tag == seen.get("delivery_tag")
                and o.routing_key == msg["routing_key"]
                and hashlib.sha256(o.body).hexdigest() == msg["body_sha256"]
            ]
            assert candidates, (msg["id"], seen)
            o = candidates[0]
            unmatched.remove(o)
            assert (o.exchange, o.vhost) == (msg["exchange"], msg["vhost"])
            assert len(o.body) == o.body_size == msg["body_length"]
            if body is not None:
                assert o.body == body
            assert dict(o.properties) == msg["properties"]
            assert o.headers == sidecar_value(msg["headers"])
            for key in ("queue", "consumer_tag", "redelivered", "reply_code", "reply_text"):
                if key in seen:
                    assert getattr(o, key) == seen[key], key
    assert unmatched == []
