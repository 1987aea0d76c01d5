"""Write a synthetic, protocol-correct pcap of oslo.messaging traffic over AMQP 0-9-1.

The benchmark needs a capture that is large (100k+ messages), reproducible (seeded) and
shaped like what busdoc meets in the field, without recording a real OpenStack:

* several TCP connections to one broker (10.0.1.1:5672), each opened with a full
  SYN / SYN-ACK / ACK handshake and closed with FIN / ACK in both directions; every
  segment carries correct sequence and acknowledgement numbers and checksums;
* each connection is a full AMQP 0-9-1 session (protocol header, connection.start /
  start-ok / tune / tune-ok / open / open-ok, channel.open / open-ok, basic.consume),
  encoded with ``pika.spec`` / ``pika.frame`` so the bytes are what a real client sends;
  some connections negotiate ``frame_max`` 4096, so the occasional 4-12 KB body spans
  several body frames, and some use two channels whose frames interleave;
* oslo.messaging 2.0 envelopes (``{"oslo.version": "2.0", "oslo.message": "<json>"}``)
  for RPC calls (publish, deliver, reply published on the default exchange to
  ``reply_<uuid>``, reply delivered), casts (publish, deliver) and notifications;
* mixed TCP segmentation: MSS-sized segments, a message over several segments, several
  messages coalesced into one large segment (as TSO and loopback captures show), and
  small odd-sized segments; heartbeat frames in between.

A sidecar JSON (``<file>.json``) states what was written: the exact message count
(basic.publish + basic.deliver frames) and order-independent digests of the
(kind, exchange, routing key) multiset and of the bodies, so a decoder's output can be
checked exactly (decoded == generated) without keeping 100k messages around.

Usage: ``python bench/gen_pcap.py out.pcap --messages 100000 --seed 1``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import struct
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pika import frame as amqp_frame
from pika import spec

PCAP_MAGIC = 0xA1B2C3D4
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
MSS = 1448
BROKER_IP = "10.0.1.1"
BROKER_PORT = 5672
START_TIME = 1_700_000_000.0
HEARTBEAT = b"\x08\x00\x00\x00\x00\x00\x00\xce"
DIGEST_MOD = 1 << 64

_ETH_IPV4 = b"\x08\x00"
_FIN, _SYN, _PSH, _ACK = 0x01, 0x02, 0x08, 0x10

SERVICES = [
    # (exchange, topic prefix of the consumers' routing keys, RPC methods)
    (
        "nova",
        "compute",
        [
            "build_and_run_instance",
            "terminate_instance",
            "reboot_instance",
            "get_console_output",
            "attach_interface",
        ],
    ),
    (
        "nova",
        "conductor",
        ["object_class_action_versions", "object_action", "schedule_and_build_instances"],
    ),
    (
        "neutron",
        "q-plugin",
        [
            "report_state",
            "get_devices_details_list",
            "update_device_list",
            "security_group_info_for_devices",
        ],
    ),
    ("cinder", "cinder-volume", ["create_volume", "delete_volume", "initialize_connection"]),
]
HOSTS = ["cmp-001", "cmp-002", "cmp-003", "ctl-01"]
NOTIFY_EVENTS = [
    "compute.instance.create.end",
    "compute.instance.delete.start",
    "port.update.end",
    "volume.attach.end",
]


def _ip_bytes(ip: str) -> bytes:
    return bytes(int(part) for part in ip.split("."))


def _mac_for(ip: str) -> bytes:
    return b"\x02\x00" + _ip_bytes(ip)


def _ones_complement_sum(data: bytes) -> int:
    """RFC 1071 sum of 16-bit words: 2**16 = 1 (mod 0xFFFF), so the one's complement sum
    of the big-endian words is the whole buffer as one integer modulo 0xFFFF (0xFFFF for a
    non-zero multiple), which CPython computes in C instead of a loop over the words."""
    if len(data) & 1:
        data += b"\x00"
    value = int.from_bytes(data, "big")
    folded = value % 0xFFFF
    if folded == 0 and value:
        return 0xFFFF
    return folded


def _checksum(data: bytes) -> int:
    return ~_ones_complement_sum(data) & 0xFFFF


class PcapWriter:
    """Classic little-endian microsecond pcap, Ethernet link type, written with struct."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.packets = 0
        self.bytes_written = 24
        out.write(struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self._ip_id: dict[bytes, int] = {}

    def tcp(
        self,
        t: float,
        src: tuple[str, int],
        dst: tuple[str, int],
        seq: int,
        ack: int,
        flags: int,
        payload: bytes = b"",
        options: bytes = b"",
    ) -> None:
        """One Ethernet/IPv4/TCP packet with valid IP and TCP checksums."""
        sip, dip = _ip_bytes(src[0]), _ip_bytes(dst[0])
        offset_words = (20 + len(options)) // 4
        tcp_header = struct.pack(
            "!HHIIBBHHH",
            src[1],
            dst[1],
            seq & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            offset_words << 4,
            flags,
            64240,
            0,
            0,
        )
        segment = tcp_header + options + payload
        pseudo = sip + dip + struct.pack("!BBH", 0, 6, len(segment))
        tcp_sum = _checksum(pseudo + segment)
        segment = segment[:16] + struct.pack("!H", tcp_sum) + segment[18:]
        ip_id = self._ip_id.get(sip, 0x1000)
        self._ip_id[sip] = (ip_id + 1) & 0xFFFF
        ip_header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), ip_id, 0x4000, 64, 6, 0, sip, dip
        )
        ip_header = ip_header[:10] + struct.pack("!H", _checksum(ip_header)) + ip_header[12:]
        packet = _mac_for(dst[0]) + _mac_for(src[0]) + _ETH_IPV4 + ip_header + segment
        sec = int(t)
        usec = int(round((t - sec) * 1_000_000))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        record = struct.pack("<IIII", sec, usec, len(packet), len(packet))
        self._out.write(record)
        self._out.write(packet)
        self.packets += 1
        self.bytes_written += 16 + len(packet)


@dataclass
class _Direction:
    src: tuple[str, int]
    dst: tuple[str, int]
    seq: int
    pending: bytearray = field(default_factory=bytearray)


@dataclass
class _Connection:
    index: int
    client: _Direction
    server: _Direction
    frame_max: int
    channels: tuple[int, ...]
    consumer_tag: str
    delivery_tag: int = 0
    role: str = "api"

    def other(self, d: _Direction) -> _Direction:
        return self.server if d is self.client else self.client


class _Clock:
    def __init__(self, rng: random.Random) -> None:
        self.t = START_TIME
        self._rng = rng

    def tick(self) -> float:
        self.t += self._rng.uniform(0.000005, 0.0002)
        return self.t


class TrafficWriter:
    """Turns AMQP byte streams into TCP segments, choosing a segmentation per flush."""

    def __init__(self, out: BinaryIO, rng: random.Random) -> None:
        self.pcap = PcapWriter(out)
        self.rng = rng
        self.clock = _Clock(rng)

    def handshake(self, conn: _Connection) -> None:
        c, s = conn.client, conn.server
        mss_option = struct.pack("!BBH", 2, 4, 1460)
        self.pcap.tcp(self.clock.tick(), c.src, c.dst, c.seq, 0, _SYN, options=mss_option)
        c.seq += 1
        self.pcap.tcp(
            self.clock.tick(), s.src, s.dst, s.seq, c.seq, _SYN | _ACK, options=mss_option
        )
        s.seq += 1
        self.pcap.tcp(self.clock.tick(), c.src, c.dst, c.seq, s.seq, _ACK)

    def send(
        self, conn: _Connection, d: _Direction, data: bytes, hold: bool = False, whole: bool = False
    ) -> None:
        """Queue bytes in one direction; flush now unless ``hold`` (coalesce with more).
        ``whole`` sends what is queued as one segment, as peers do with handshake methods."""
        d.pending += data
        if not hold or len(d.pending) > 48_000:
            self.flush(conn, d, whole)

    def flush(self, conn: _Connection, d: _Direction, whole: bool = False) -> None:
        if not d.pending:
            return
        data = bytes(d.pending)
        d.pending.clear()
        other = conn.other(d)
        style = self.rng.random()
        if whole:
            sizes: Iterable[int] = iter(lambda: len(data), None)
        elif style < 0.55:
            sizes = iter(lambda: MSS, None)
        elif style < 0.85:
            sizes = iter(lambda: self.rng.choice((4096, 16384, 32768, 65000)), None)
        else:
            sizes = iter(lambda: self.rng.randint(1, 700), None)
        pos = 0
        for size in sizes:
            if pos >= len(data):
                break
            chunk = data[pos : pos + size]
            self.pcap.tcp(self.clock.tick(), d.src, d.dst, d.seq, other.seq, _PSH | _ACK, chunk)
            d.seq += len(chunk)
            pos += len(chunk)
        self.pcap.tcp(self.clock.tick(), other.src, other.dst, other.seq, d.seq, _ACK)

    def close(self, conn: _Connection) -> None:
        c, s = conn.client, conn.server
        self.flush(conn, c)
        self.flush(conn, s)
        self.pcap.tcp(self.clock.tick(), c.src, c.dst, c.seq, s.seq, _FIN | _ACK)
        c.seq += 1
        self.pcap.tcp(self.clock.tick(), s.src, s.dst, s.seq, c.seq, _FIN | _ACK)
        s.seq += 1
        self.pcap.tcp(self.clock.tick(), c.src, c.dst, c.seq, s.seq, _ACK)


def _method(channel: int, method: spec.amqp_object.Method) -> bytes:
    return amqp_frame.Method(channel, method).marshal()


def _content(
    channel: int,
    method: spec.amqp_object.Method,
    props: spec.BasicProperties,
    body: bytes,
    frame_max: int,
) -> list[bytes]:
    """Method, header and body frames of one message; a body frame carries at most
    frame_max - 8 bytes (AMQP 0-9-1 section 4.2.3: 7-byte header plus frame-end)."""
    frames = [_method(channel, method), amqp_frame.Header(channel, len(body), props).marshal()]
    step = frame_max - 8
    for pos in range(0, len(body), step):
        frames.append(amqp_frame.Body(channel, body[pos : pos + step]).marshal())
    return frames


def _interleave(a: list[bytes], b: list[bytes]) -> list[bytes]:
    """Frames of two channels interleaved, each channel's frames in order."""
    out: list[bytes] = []
    for i in range(max(len(a), len(b))):
        if i < len(a):
            out.append(a[i])
        if i < len(b):
            out.append(b[i])
    return out


class OsloTraffic:
    """Builds oslo.messaging 2.0 bodies: RPC calls, replies, casts, notifications."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._token_pool = [
            "gAAAAAB"
            + "".join(
                rng.choices(
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", k=180
                )
            )
            for _ in range(16)
        ]
        self._words = (
            "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
            "lima mike november oscar papa quebec romeo sierra tango"
        ).split()

    def _text(self, low: int, high: int) -> str:
        """Filler words; one time in twelve a long text (4-12 KB), so bodies also span
        several body frames on the connections that negotiated frame_max 4096."""
        if self.rng.random() < 1 / 12:
            low, high = 700, 2000
        return " ".join(self.rng.choices(self._words, k=self.rng.randint(low, high)))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hexid(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4).hex

    def _context(self) -> dict[str, Any]:
        rng = self.rng
        user, project = self.hexid(), self.hexid()
        return {
            "_context_auth_token": rng.choice(self._token_pool),
            "_context_user_id": user,
            "_context_project_id": project,
            "_context_tenant": project,
            "_context_user": user,
            "_context_request_id": "req-" + self.uuid(),
            "_context_global_request_id": None,
            "_context_roles": rng.choice([["member", "reader"], ["admin", "member", "reader"]]),
            "_context_is_admin": rng.random() < 0.2,
            "_context_read_deleted": "no",
            "_context_show_deleted": False,
            "_context_timestamp": f"2026-11-25T21:{rng.randrange(60):02d}:"
            f"{rng.randrange(60):02d}.{rng.randrange(1_000_000):06d}",
            "_context_remote_address": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            "_context_user_name": rng.choice(["admin", "demo", "nova", "neutron"]),
            "_context_project_name": rng.choice(["admin", "demo", "service"]),
        }

    def _args(self, method: str) -> dict[str, Any]:
        rng = self.rng
        args: dict[str, Any] = {
            "instance_uuid": self.uuid(),
            "host": rng.choice(HOSTS),
            "request_spec": {
                "num_instances": rng.randint(1, 4),
                "flavor": {
                    "vcpus": rng.choice([1, 2, 4, 8]),
                    "memory_mb": rng.choice([512, 2048, 8192]),
                    "root_gb": rng.choice([1, 20, 80]),
                    "name": "m1.small",
                },
                "image": {
                    "id": self.uuid(),
                    "min_disk": 0,
                    "status": "active",
                    "properties": {"hw_disk_bus": "virtio"},
                },
            },
            "filter_properties": {"retry": {"num_attempts": 1, "hosts": []}, "scheduler_hints": {}},
            "description": self._text(10, 120),
        }
        if method.startswith("object_"):
            args = {
                "objinst": {
                    "nova_object.name": "Instance",
                    "nova_object.namespace": "nova",
                    "nova_object.version": "2.7",
                    "nova_object.data": {
                        "uuid": self.uuid(),
                        "vm_state": "active",
                        "task_state": None,
                        "host": rng.choice(HOSTS),
                    },
                    "nova_object.changes": ["task_state"],
                },
                "objmethod": "save",
                "args": [],
                "kwargs": {"expected_task_state": []},
                "description": args["description"],
            }
        return args

    def call(self, method: str, reply_q: str | None) -> tuple[bytes, str]:
        msg: dict[str, Any] = {
            "method": method,
            "args": self._args(method),
            "version": f"5.{self.rng.randrange(13)}",
            "namespace": None,
        }
        msg_id = self.hexid()
        if reply_q is not None:
            msg["_msg_id"] = msg_id
            msg["_reply_q"] = reply_q
            msg["_timeout"] = None
        msg["_unique_id"] = self.hexid()
        msg.update(self._context())
        return _envelope(msg), msg_id

    def reply(self, msg_id: str) -> bytes:
        rng = self.rng
        failure = None
        result: Any = {
            "id": self.uuid(),
            "status": rng.choice(["ACTIVE", "BUILD"]),
            "output": self._text(60, 200),
        }
        if rng.random() < 0.05:
            failure = json.dumps(
                {
                    "class": "InstanceNotFound",
                    "module": "nova.exception",
                    "message": "Instance could not be found.",
                    "tb": ["Traceback (most recent call last):\n"] * 3,
                    "args": [],
                    "kwargs": {"code": 404},
                }
            )
            result = None
        msg = {
            "result": result,
            "failure": failure,
            "ending": True,
            "_msg_id": msg_id,
            "_unique_id": self.hexid(),
        }
        return _envelope(msg)

    def notification(self, event: str) -> bytes:
        rng = self.rng
        msg = {
            "message_id": self.uuid(),
            "publisher_id": "compute." + rng.choice(HOSTS),
            "event_type": event,
            "priority": "INFO",
            "payload": {
                "instance_id": self.uuid(),
                "state": "active",
                "tenant_id": self.hexid(),
                "memory_mb": 2048,
                "display_name": " ".join(rng.choices(self._words, k=30)),
            },
            "timestamp": "2026-11-25 21:30:00.000000",
            "_unique_id": self.hexid(),
        }
        msg.update(self._context())
        return _envelope(msg)


def _envelope(message: dict[str, Any]) -> bytes:
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(message)}).encode()


_PROPS_PERSISTENT = spec.BasicProperties(
    content_type="application/json",
    content_encoding="utf-8",
    headers={},
    delivery_mode=2,
    priority=0,
)
_PROPS_TRANSIENT = spec.BasicProperties(
    content_type="application/json",
    content_encoding="utf-8",
    headers={},
    delivery_mode=1,
    priority=0,
)


def _digest_line(kind: str, exchange: str, routing_key: str) -> int:
    line = f"{kind}\x00{exchange}\x00{routing_key}".encode()
    return int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "big")


def _body_digest(body: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(body, digest_size=8).digest(), "big")


@dataclass
class Tally:
    """What was written, for the sidecar: counts and order-independent digests."""

    messages: int = 0
    publish: int = 0
    deliver: int = 0
    body_bytes: int = 0
    routing_digest: int = 0
    body_digest: int = 0

    def add(self, kind: str, exchange: str, routing_key: str, body: bytes) -> None:
        self.messages += 1
        if kind == "publish":
            self.publish += 1
        else:
            self.deliver += 1
        self.body_bytes += len(body)
        self.routing_digest = (
            self.routing_digest + _digest_line(kind, exchange, routing_key)
        ) % DIGEST_MOD
        self.body_digest = (self.body_digest + _body_digest(body)) % DIGEST_MOD


def routing_digest(items: Iterable[tuple[str, str, str]]) -> str:
    """Digest of a (kind, exchange, routing key) multiset, as stored in the sidecar."""
    total = 0
    for kind, exchange, routing_key in items:
        total = (total + _digest_line(kind, exchange, routing_key)) % DIGEST_MOD
    return f"{total:016x}"


def body_digest(bodies: Iterable[bytes]) -> str:
    """Digest of a multiset of bodies, as stored in the sidecar."""
    total = 0
    for body in bodies:
        total = (total + _body_digest(body)) % DIGEST_MOD
    return f"{total:016x}"


def _open_session(w: TrafficWriter, conn: _Connection, oslo: OsloTraffic) -> None:
    """The AMQP 0-9-1 connection and channel handshake (spec section 2.2.4), then a
    consumer on the connection's own topic queue."""
    w.send(conn, conn.client, amqp_frame.ProtocolHeader().marshal(), whole=True)
    w.send(
        conn,
        conn.server,
        _method(
            0,
            spec.Connection.Start(
                server_properties={
                    "product": "RabbitMQ",
                    "version": "3.10.7",
                    "platform": "Erlang/OTP 24.3.4",
                    "cluster_name": "rabbit@broker",
                    "capabilities": {
                        "publisher_confirms": True,
                        "basic.nack": True,
                        "consumer_cancel_notify": True,
                        "connection.blocked": True,
                    },
                },
                mechanisms="AMQPLAIN PLAIN",
                locales="en_US",
            ),
        ),
        whole=True,
    )
    pid = 1000 + conn.index * 7
    w.send(
        conn,
        conn.client,
        _method(
            0,
            spec.Connection.StartOk(
                client_properties={
                    "product": "py-amqp",
                    "product_version": "5.1.1",
                    "platform": "Python 3.10.12",
                    "connection_name": f"{conn.role}:{pid}:{oslo.uuid()}",
                    "capabilities": {
                        "authentication_failure_close": True,
                        "consumer_cancel_notify": True,
                        "connection.blocked": True,
                    },
                },
                mechanism="AMQPLAIN",
                response="\x05LOGINS\x00\x00\x00\x04nova\x08PASSWORDS\x00\x00\x00\x06secret",
                locale="en_US",
            ),
        ),
        whole=True,
    )
    w.send(
        conn,
        conn.server,
        _method(0, spec.Connection.Tune(channel_max=2047, frame_max=131072, heartbeat=60)),
        whole=True,
    )
    w.send(
        conn,
        conn.client,
        _method(
            0, spec.Connection.TuneOk(channel_max=2047, frame_max=conn.frame_max, heartbeat=60)
        ),
        hold=True,
    )
    w.send(conn, conn.client, _method(0, spec.Connection.Open(virtual_host="/")), whole=True)
    w.send(conn, conn.server, _method(0, spec.Connection.OpenOk()), whole=True)
    for ch in conn.channels:
        w.send(conn, conn.client, _method(ch, spec.Channel.Open()), whole=True)
        w.send(conn, conn.server, _method(ch, spec.Channel.OpenOk()), whole=True)
    ch = conn.channels[0]
    queue = conn.consumer_tag.split("#")[0]
    w.send(
        conn,
        conn.client,
        _method(ch, spec.Basic.Consume(queue=queue, consumer_tag=conn.consumer_tag, no_ack=True)),
        whole=True,
    )
    w.send(
        conn,
        conn.server,
        _method(ch, spec.Basic.ConsumeOk(consumer_tag=conn.consumer_tag)),
        whole=True,
    )


def generate(
    path: str | Path, messages: int = 100_000, seed: int = 1, connections: int = 8
) -> dict[str, Any]:
    """Write ``path`` (pcap) and ``path + ".json"`` (sidecar); return the sidecar dict."""
    if messages < 1:
        raise ValueError("messages must be at least 1")
    rng = random.Random(seed)
    oslo = OsloTraffic(rng)
    path = Path(path)
    tally = Tally()
    with path.open("wb", buffering=1 << 20) as out:
        w = TrafficWriter(out, rng)
        conns: list[_Connection] = []
        for i in range(max(2, connections)):
            client_ip = f"10.0.0.{10 + i}"
            # the first client's sequence numbers wrap past 2**32 a few KB in
            isn = (1 << 32) - 5000 if i == 0 else rng.getrandbits(32)
            port = 40000 + i * 11
            exchange, topic, _ = SERVICES[i % len(SERVICES)]
            conn = _Connection(
                index=i,
                client=_Direction((client_ip, port), (BROKER_IP, BROKER_PORT), isn),
                server=_Direction((BROKER_IP, BROKER_PORT), (client_ip, port), rng.getrandbits(32)),
                frame_max=4096 if i % 3 == 1 else 131072,
                channels=(1, 2) if i % 4 == 2 else (1,),
                consumer_tag=f"{topic}.{HOSTS[i % len(HOSTS)]}#{i}",
                role=f"{exchange}-{topic}",
            )
            conns.append(conn)
            w.handshake(conn)
            _open_session(w, conn, oslo)

        def publish(
            conn: _Connection,
            exchange: str,
            rk: str,
            body: bytes,
            props: spec.BasicProperties,
            channel: int | None = None,
        ) -> list[bytes]:
            tally.add("publish", exchange, rk, body)
            ch = conn.channels[0] if channel is None else channel
            return _content(
                ch,
                spec.Basic.Publish(exchange=exchange, routing_key=rk),
                props,
                body,
                conn.frame_max,
            )

        def deliver(
            conn: _Connection, exchange: str, rk: str, body: bytes, props: spec.BasicProperties
        ) -> list[bytes]:
            tally.add("deliver", exchange, rk, body)
            conn.delivery_tag += 1
            return _content(
                conn.channels[0],
                spec.Basic.Deliver(
                    consumer_tag=conn.consumer_tag,
                    delivery_tag=conn.delivery_tag,
                    redelivered=rng.random() < 0.01,
                    exchange=exchange,
                    routing_key=rk,
                ),
                props,
                body,
                conn.frame_max,
            )

        def emit(
            conn: _Connection,
            d: _Direction,
            frames: list[bytes],
            after: tuple[_Connection, _Direction] | None = None,
        ) -> None:
            """Send frames, maybe held back to share a segment with later ones; ``after``
            is the direction whose bytes must reach the wire first (the broker cannot
            deliver a message before its publish arrived, nor a consumer reply to a call
            before its delivery)."""
            if after is not None:
                w.flush(*after)
            if rng.random() < 0.02:
                frames = [HEARTBEAT, *frames]
            w.send(conn, d, b"".join(frames), hold=rng.random() < 0.4)

        while tally.messages < messages:
            left = messages - tally.messages
            caller, callee = rng.sample(conns, 2)
            exchange, topic, methods = rng.choice(SERVICES)
            method = rng.choice(methods)
            host = rng.choice(HOSTS)
            rk = f"{topic}.{host}"
            roll = rng.random()
            if roll < 0.6 and left >= 4:
                reply_q = "reply_" + oslo.hexid()
                body, msg_id = oslo.call(method, reply_q)
                call_frames = publish(caller, exchange, rk, body, _PROPS_TRANSIENT)
                if len(caller.channels) > 1 and left >= 5 and rng.random() < 0.5:
                    # a second publish on the other channel, frames interleaved
                    other, _ = oslo.call(method, None)
                    call_frames = _interleave(
                        call_frames,
                        publish(caller, exchange, rk, other, _PROPS_TRANSIENT, caller.channels[1]),
                    )
                emit(caller, caller.client, call_frames)
                emit(
                    callee,
                    callee.server,
                    deliver(callee, exchange, rk, body, _PROPS_TRANSIENT),
                    after=(caller, caller.client),
                )
                reply = oslo.reply(msg_id)
                emit(
                    callee,
                    callee.client,
                    publish(callee, "", reply_q, reply, _PROPS_TRANSIENT),
                    after=(callee, callee.server),
                )
                emit(
                    caller,
                    caller.server,
                    deliver(caller, "", reply_q, reply, _PROPS_TRANSIENT),
                    after=(callee, callee.client),
                )
            elif roll < 0.85 and left >= 2:
                body, _ = oslo.call(method, None)
                emit(caller, caller.client, publish(caller, exchange, rk, body, _PROPS_TRANSIENT))
                emit(
                    callee,
                    callee.server,
                    deliver(callee, exchange, rk, body, _PROPS_TRANSIENT),
                    after=(caller, caller.client),
                )
            else:
                body = oslo.notification(rng.choice(NOTIFY_EVENTS))
                emit(
                    caller,
                    caller.client,
                    publish(caller, exchange, "notifications.info", body, _PROPS_PERSISTENT),
                )
        for conn in conns:
            w.close(conn)
        pcap_bytes = w.pcap.bytes_written
        packets = w.pcap.packets
    sidecar = {
        "pcap": path.name,
        "seed": seed,
        "messages": tally.messages,
        "publish": tally.publish,
        "deliver": tally.deliver,
        # every delivery repeats a publish seen earlier, so a store that pairs them
        # holds one message per publish
        "distinct_messages": tally.publish,
        "connections": len(conns),
        "packets": packets,
        "pcap_bytes": pcap_bytes,
        "body_bytes": tally.body_bytes,
        "routing_digest": f"{tally.routing_digest:016x}",
        "body_digest": f"{tally.body_digest:016x}",
    }
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="pcap file to write (sidecar: OUTPUT.json)")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args(argv)
    info = generate(args.output, args.messages, args.seed, args.connections)
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
