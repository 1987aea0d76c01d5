"""FrameDecoder and AmqpConnection on literal wire bytes and pika-encoded frames."""

from __future__ import annotations

import decimal

import pika.frame
import pika.spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from busdoc.sniffer import amqp
from busdoc.sniffer.amqp import (
    PROTOCOL_HEADER,
    AmqpConnection,
    BodyFrame,
    FrameDecoder,
    HeaderFrame,
    Heartbeat,
    MethodFrame,
    ProtocolHeader,
    TlsDetected,
    decode_properties,
    decode_table,
)
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation

CONN = "10.0.0.5:41234->10.0.0.9:5672"


def method(channel: int, m: object) -> bytes:
    return pika.frame.Method(channel, m).marshal()


def header(channel: int, size: int, **props: object) -> bytes:
    return pika.frame.Header(channel, size, pika.spec.BasicProperties(**props)).marshal()


def body(channel: int, payload: bytes) -> bytes:
    return pika.frame.Body(channel, payload).marshal()


def publish(
    channel: int,
    payload: bytes,
    *,
    exchange: str = "nova",
    routing_key: str = "compute.host1",
    frame_max: int = 131072,
    **props: object,
) -> bytes:
    """A basic.publish as a client sends it, the body cut to fit frame_max."""
    out = method(channel, pika.spec.Basic.Publish(exchange=exchange, routing_key=routing_key))
    out += header(channel, len(payload), **props)
    step = frame_max - 8
    for i in range(0, len(payload), step):
        out += body(channel, payload[i : i + step])
    return out


def deliver(channel: int, payload: bytes, *, tag: str = "ctag1", delivery_tag: int = 1) -> bytes:
    out = method(
        channel,
        pika.spec.Basic.Deliver(
            consumer_tag=tag,
            delivery_tag=delivery_tag,
            redelivered=True,
            exchange="nova",
            routing_key="compute.host1",
        ),
    )
    return (
        out
        + header(channel, len(payload), content_type="application/json")
        + body(channel, payload)
    )


def feed_whole(decoder: FrameDecoder, data: bytes) -> list:
    return decoder.feed(data)


def feed_bytewise(decoder: FrameDecoder, data: bytes) -> list:
    return [f for i in range(len(data)) for f in decoder.feed(data[i : i + 1])]


FEEDS = pytest.mark.parametrize("feed", [feed_whole, feed_bytewise], ids=["whole", "bytewise"])


# --------------------------------------------------------------------------- frames


def test_heartbeat_literal_bytes_decode_to_heartbeat() -> None:
    assert FrameDecoder().feed(b"\x08\x00\x00\x00\x00\x00\x00\xce") == [Heartbeat(channel=0)]


@FEEDS
def test_publish_frames_decode_the_same_whole_or_bytewise(feed) -> None:
    data = PROTOCOL_HEADER + publish(1, b'{"a": 1}', content_type="application/json")
    frames = feed(FrameDecoder(), data)
    assert frames == [
        ProtocolHeader(version=b"\x00\x00\x09\x01"),
        MethodFrame(
            channel=1,
            class_id=60,
            method_id=40,
            name="Basic.Publish",
            arguments={
                "ticket": 0,
                "exchange": "nova",
                "routing_key": "compute.host1",
                "mandatory": False,
                "immediate": False,
            },
        ),
        HeaderFrame(
            channel=1, body_size=8, properties={"content_type": "application/json"}, headers=None
        ),
        BodyFrame(channel=1, payload=b'{"a": 1}'),
    ]


def test_split_frame_header_waits_for_more_bytes() -> None:
    data = method(3, pika.spec.Basic.Qos(prefetch_count=10))
    decoder = FrameDecoder()
    assert decoder.feed(data[:5]) == []
    assert decoder.feed(data[5:-1]) == []
    (frame,) = decoder.feed(data[-1:])
    assert frame.name == "Basic.Qos"
    assert frame.arguments["prefetch_count"] == 10
    assert decoder.offset == len(data)


def test_rare_method_arguments_come_from_pika() -> None:
    m = pika.spec.Queue.Declare(queue="q1", durable=True, arguments={"x-max-length": 5})
    (frame,) = FrameDecoder().feed(method(2, m))
    assert frame.name == "Queue.Declare"
    assert frame.arguments["queue"] == "q1"
    assert frame.arguments["durable"] is True
    assert frame.arguments["arguments"] == {"x-max-length": 5}


@pytest.mark.parametrize(
    "m",
    [
        pika.spec.Basic.Publish(exchange="", routing_key="reply_abc", mandatory=True),
        pika.spec.Basic.Deliver(
            consumer_tag="ctag", delivery_tag=2**40, redelivered=True, exchange="e", routing_key="k"
        ),
        pika.spec.Basic.GetOk(
            delivery_tag=7, redelivered=False, exchange="x", routing_key="r", message_count=3
        ),
        pika.spec.Basic.Return(
            reply_code=312, reply_text="NO_ROUTE", exchange="x", routing_key="r"
        ),
        pika.spec.Basic.Ack(delivery_tag=99, multiple=True),
    ],
    ids=lambda m: m.NAME,
)
def test_hand_decoded_methods_match_pika(m) -> None:
    (frame,) = FrameDecoder().feed(method(1, m))
    expected = vars(type(m)().decode(b"".join(m.encode())))
    assert frame.name == m.NAME
    assert dict(frame.arguments) == {k: v for k, v in expected.items() if k in frame.arguments}
    assert set(frame.arguments) >= set(expected) - {"ticket"}


shortstr = st.text(max_size=40).filter(lambda s: len(s.encode()) < 256)
field_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.decimals(places=2, min_value=-(10**6), max_value=10**6, allow_nan=False),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
property_values = st.fixed_dictionaries(
    {},
    optional={
        "content_type": shortstr,
        "content_encoding": shortstr,
        "headers": st.dictionaries(st.text(min_size=1, max_size=10), field_values, max_size=4),
        "delivery_mode": st.integers(1, 2),
        "priority": st.integers(0, 255),
        "correlation_id": shortstr,
        "reply_to": shortstr,
        "expiration": st.integers(0, 10**6).map(str),
        "message_id": shortstr,
        "timestamp": st.integers(0, 2**63 - 1),
        "type": shortstr,
        "user_id": shortstr,
        "app_id": shortstr,
        "cluster_id": shortstr,
    },
)


@settings(max_examples=200, deadline=None)
@given(props=property_values, size=st.integers(0, 2**40))
def test_hand_content_header_decoder_matches_pika(props, size) -> None:
    wire = header(5, size, **props)
    # The same header twice: decoded, then (without a headers table) remembered.
    first, again = FrameDecoder().feed(wire + wire)
    _, ref = pika.frame.decode_frame(wire)
    expected = {k: v for k, v in vars(ref.properties).items() if v is not None and k != "headers"}
    for frame in (first, again):
        assert frame.channel == 5
        assert frame.body_size == ref.body_size == size
        assert dict(frame.properties) == expected
        assert frame.headers == ref.properties.headers


def test_repeated_content_headers_get_their_own_property_dicts() -> None:
    plain = header(1, 3, content_type="application/json", delivery_mode=2, headers={})
    nested = header(1, 3, headers={"trace": {"ids": [1, 2]}})
    a, b, c, d = FrameDecoder().feed(plain + plain + nested + nested)
    assert a.properties == b.properties == {"content_type": "application/json", "delivery_mode": 2}
    assert a.properties is not b.properties
    assert a.headers == b.headers == {} and a.headers is not b.headers
    assert c.headers == d.headers == {"trace": {"ids": [1, 2]}}
    assert c.headers["trace"] is not d.headers["trace"]


def test_remembered_property_lists_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amqp, "_SEEN_PROPERTIES", {})
    monkeypatch.setattr(amqp, "_SEEN_PROPERTIES_MAX", 4)
    wire = b"".join(header(1, 0, message_id=f"m{i}") for i in range(10))
    frames = FrameDecoder().feed(wire + header(1, 0, message_id="x" * 255))
    assert [f.properties["message_id"] for f in frames[:10]] == [f"m{i}" for i in range(10)]
    assert 0 < len(amqp._SEEN_PROPERTIES) <= 4
    assert all(len(key) <= amqp._SEEN_PROPERTIES_KEY_MAX for key in amqp._SEEN_PROPERTIES)


def test_headers_table_keeps_decimals_byte_arrays_and_nesting() -> None:
    headers = {
        "price": decimal.Decimal("12.50"),
        "blob": b"\x00\xff",
        "nested": {"list": [1, "two", None]},
    }
    wire = header(1, 0, headers=headers)
    props, decoded = decode_properties(wire[7:-1], 12)
    assert props == {}
    assert decoded == {
        "price": decimal.Decimal("12.50"),
        "blob": b"\x00\xff",
        "nested": {"list": [1, "two", None]},
    }


def test_frame_max_from_tune_bounds_frame_size() -> None:
    decoder = FrameDecoder(frame_max=4096)
    ok = body(1, b"x" * (4096 - 8))
    assert decoder.feed(ok) == [BodyFrame(channel=1, payload=b"x" * 4088)]


def test_non_091_protocol_header_is_reported_not_decoded() -> None:
    (event,) = FrameDecoder().feed(b"AMQP\x01\x01\x00\x0a")
    assert event == ProtocolHeader(version=b"\x01\x01\x00\x0a")
    assert not event.supported


def test_tls_client_hello_marks_direction_undecodable() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03") == [TlsDetected()]
    assert decoder.feed(b"\x01\x00\x00\x00\x00\x00\x00\xce") == []


# --------------------------------------------------------------------------- connection


def handshake(vhost: str = "/nova", frame_max: int = 131072) -> tuple[bytes, bytes]:
    """Client and server bytes of a 0-9-1 handshake with PLAIN auth."""
    client = PROTOCOL_HEADER + method(
        0,
        pika.spec.Connection.StartOk(
            client_properties={
                "connection_name": "nova-compute:1234",
                "product": "py-amqp",
                "platform": "Python 3.11",
                "version": "5.2.0",
                "capabilities": {"publisher_confirms": True},
            },
            mechanism="PLAIN",
            response="\x00nova\x00s3cret-pw",
            locale="en_US",
        ),
    )
    client += method(0, pika.spec.Connection.TuneOk(channel_max=2047, frame_max=frame_max))
    client += method(0, pika.spec.Connection.Open(virtual_host=vhost))
    server = method(
        0,
        pika.spec.Connection.Start(server_properties={"product": "RabbitMQ"}, mechanisms="PLAIN"),
    )
    server += method(0, pika.spec.Connection.Tune(channel_max=2047, frame_max=frame_max))
    server += method(0, pika.spec.Connection.OpenOk())
    return client, server


def run(conn: AmqpConnection, chunks: list[tuple[bool, bytes]], *, bytewise: bool = False):
    out = []
    for t, (from_client, data) in enumerate(chunks):
        if bytewise:
            for i in range(len(data)):
                out += conn.feed(data[i : i + 1], from_client=from_client, time=float(t))
        else:
            out += conn.feed(data, from_client=from_client, time=float(t))
    return out


def test_handshake_yields_connection_info_without_password() -> None:
    client, server = handshake()
    conn = AmqpConnection(CONN)
    records = run(conn, [(False, server[:40]), (True, client), (False, server[40:])])
    (info,) = records
    assert isinstance(info, ConnectionInfo)
    assert info.connection == CONN
    assert info.user == "nova"
    assert info.vhost == "/nova"
    assert info.client_properties["connection_name"] == "nova-compute:1234"
    assert info.client_properties["product"] == "py-amqp"
    assert "s3cret" not in repr(info) and "s3cret" not in repr(conn.__dict__)
    assert conn.frame_max == 131072


def test_amqplain_login_is_read_from_the_response_table() -> None:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, {"LOGIN": "cinder", "PASSWORD": "pw"})
    response = b"".join(pieces)[4:]  # AMQPLAIN: a field table without its length prefix
    payload = b"\x00\x0a\x00\x0b" + b"\x00\x00\x00\x00"  # Connection.StartOk, empty table
    payload += b"\x08AMQPLAIN" + len(response).to_bytes(4, "big") + response + b"\x05en_US"
    wire = b"\x01\x00\x00" + len(payload).to_bytes(4, "big") + payload + b"\xce"
    (frame,) = FrameDecoder().feed(wire)
    assert frame.name == "Connection.StartOk"
    assert frame.arguments["user"] == "cinder"
    assert frame.arguments["locale"] == "en_US"
    assert "response" not in frame.arguments


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_interleaved_channels_assemble_each_message(bytewise) -> None:
    client, server = handshake(frame_max=4096)
    a = b'{"method": "ping", "args": {}}' * 300  # 9000 bytes: three body frames
    b = b"B" * 5000
    fa = publish(1, a, frame_max=4096, content_type="application/json", correlation_id="c1")
    fb = publish(2, b, frame_max=4096, headers={"x": 1})
    # Split into frames and interleave them: m1 m2 h1 h2 b1 b2 b1 b2 b1
    frames_a = FrameDecoder().feed(fa)
    frames_b = FrameDecoder().feed(fb)
    assert len(frames_a) == 5 and len(frames_b) == 4
    wire_a = split_frames(fa)
    wire_b = split_frames(fb)
    inter = b"".join(x for pair in zip(wire_a, wire_b + [b""], strict=True) for x in pair)
    conn = AmqpConnection(CONN)
    records = run(conn, [(True, client), (False, server), (True, inter)], bytewise=bytewise)
    obs = [r for r in records if isinstance(r, Observation)]
    assert [(o.channel, o.body) for o in obs] == [(2, b), (1, a)]
    assert obs[1].properties == {"content_type": "application/json", "correlation_id": "c1"}
    assert obs[0].headers == {"x": 1}
    assert all(o.vhost == "/nova" and o.kind == "publish" for o in obs)
    assert [r for r in records if isinstance(r, Notice)] == []


def split_frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        size = int.from_bytes(data[pos + 3 : pos + 7], "big")
        out.append(data[pos : pos + size + 8])
        pos += size + 8
    return out


def test_deliveries_carry_the_queue_of_their_consumer() -> None:
    client, server = handshake()
    client += method(1, pika.spec.Channel.Open())
    client += method(1, pika.spec.Basic.Consume(queue="compute", consumer_tag=""))
    server += method(1, pika.spec.Channel.OpenOk())
    server += method(1, pika.spec.Basic.ConsumeOk(consumer_tag="amq.ctag-1"))
    server += deliver(1, b"hello", tag="amq.ctag-1", delivery_tag=4)
    conn = AmqpConnection(CONN)
    records = run(conn, [(True, client), (False, server)])
    (obs,) = [r for r in records if isinstance(r, Observation)]
    assert obs.kind == "deliver"
    assert obs.queue == "compute"
    assert obs.consumer_tag == "amq.ctag-1"
    assert obs.delivery_tag == 4
    assert obs.redelivered is True
    assert obs.body == b"hello"


def test_get_ok_carries_the_queue_of_its_basic_get() -> None:
    conn = AmqpConnection(CONN)
    client = method(1, pika.spec.Basic.Get(queue="q-empty"))
    client += method(1, pika.spec.Basic.Get(queue="q-full"))
    server = method(1, pika.spec.Basic.GetEmpty())
    server += method(
        1, pika.spec.Basic.GetOk(delivery_tag=1, exchange="", routing_key="q-full", message_count=0)
    )
    server += header(1, 2) + body(1, b"hi")
    records = run(conn, [(True, client), (False, server)])
    (obs,) = records
    assert (obs.kind, obs.queue, obs.body, obs.routing_key) == ("get_ok", "q-full", b"hi", "q-full")


def test_return_keeps_reply_code_and_text() -> None:
    server = method(
        1,
        pika.spec.Basic.Return(
            reply_code=312, reply_text="NO_ROUTE", exchange="x", routing_key="k"
        ),
    )
    server += header(1, 0)
    (obs,) = AmqpConnection(CONN).feed(server, from_client=False, time=2.0)
    assert (obs.kind, obs.reply_code, obs.reply_text, obs.body, obs.body_size) == (
        "return",
        312,
        "NO_ROUTE",
        b"",
        0,
    )


def test_heartbeats_between_frames_are_ignored() -> None:
    hb = pika.frame.Heartbeat().marshal()
    wire = b"".join(f + hb for f in split_frames(publish(1, b"x" * 10)))
    (obs,) = AmqpConnection(CONN).feed(hb + wire, from_client=True, time=0.0)
    assert obs.body == b"x" * 10


def test_body_over_max_body_is_kept_cut_with_announced_size() -> None:
    conn = AmqpConnection(CONN, max_body=1000)
    (obs,) = conn.feed(publish(1, b"y" * 5000, frame_max=1024), from_client=True, time=0.0)
    assert obs.body == b"y" * 1000
    assert obs.body_size == 5000


def test_body_larger_than_announced_is_a_notice_and_skipped() -> None:
    wire = method(1, pika.spec.Basic.Publish(exchange="e", routing_key="k"))
    wire += header(1, 3) + body(1, b"12345")
    wire += publish(1, b"next")
    records = AmqpConnection(CONN).feed(wire, from_client=True, time=0.0)
    assert [type(r).__name__ for r in records] == ["Notice", "Observation"]
    assert records[0].code == "body_overflow"
    assert records[1].body == b"next"


def test_body_frame_without_header_is_a_notice_and_skipped() -> None:
    records = AmqpConnection(CONN).feed(
        body(1, b"zz") + publish(1, b"ok"), from_client=True, time=0
    )
    assert [getattr(r, "code", None) for r in records] == ["orphan_content", None]
    assert records[1].body == b"ok"


def test_channel_close_drops_content_in_flight() -> None:
    wire = method(1, pika.spec.Basic.Publish(exchange="e", routing_key="k")) + header(1, 10)
    wire += method(
        1, pika.spec.Channel.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)
    )
    wire += method(1, pika.spec.Channel.Open()) + publish(1, b"fresh")
    records = AmqpConnection(CONN).feed(wire, from_client=True, time=0)
    assert [getattr(r, "code", None) for r in records] == ["incomplete_content", None]
    assert records[1].body == b"fresh"


def test_content_method_direction_decides_kind() -> None:
    # A deliver sent by the "client" side is not content we assemble.
    records = AmqpConnection(CONN).feed(deliver(1, b"x"), from_client=True, time=0)
    assert all(isinstance(r, Notice) for r in records)
    assert not any(isinstance(r, Observation) for r in records)


def test_tls_connection_gives_one_notice() -> None:
    conn = AmqpConnection(CONN)
    hello = b"\x16\x03\x01\x00\x05hello"
    records = conn.feed(hello, from_client=True, time=0)
    records += conn.feed(b"\x16\x03\x03\x00\x02hi", from_client=False, time=0)
    records += conn.feed(b"\x17\x03\x03" + b"\x00" * 50, from_client=True, time=0)
    assert records == [
        Notice(code="tls", message="encrypted (TLS), cannot decode", connection=CONN)
    ]


def test_finish_reports_content_cut_by_end_of_capture() -> None:
    client, server = handshake()
    conn = AmqpConnection(CONN)
    run(conn, [(True, client), (False, server)])
    conn.feed(publish(1, b"abcdef")[:-10], from_client=True, time=1)
    (notice,) = conn.finish(2.0)
    assert notice.code == "incomplete_content"


def test_headers_keep_floats_and_plain_ints_where_pika_truncates() -> None:
    import struct

    # py-amqp (oslo.messaging's client) writes floats as "d"; pika cannot encode them.
    table = b"\x05ratiod" + struct.pack(">d", 2.5) + b"\x03bigl" + struct.pack(">q", 2**40)
    payload = struct.pack(">HHQH", 60, 0, 0, 0x2000) + struct.pack(">I", len(table)) + table
    wire = b"\x02\x00\x01" + struct.pack(">I", len(payload)) + payload + b"\xce"
    (frame,) = FrameDecoder().feed(wire)
    assert frame.headers == {"ratio": 2.5, "big": 2**40}
    assert type(frame.headers["big"]) is int  # not pika's ``long`` marker subclass
    _, ref = pika.frame.decode_frame(wire)
    assert ref.properties.headers["ratio"] == 2  # the pika behaviour this decoder avoids


def test_field_table_with_every_type_letter() -> None:
    import datetime
    import struct

    def field(name: bytes, kind: bytes, value: bytes) -> bytes:
        return bytes([len(name)]) + name + kind + value

    fields = b"".join(
        [
            field(b"t", b"t", b"\x01"),
            field(b"b", b"b", b"\xff"),
            field(b"B", b"B", b"\xff"),
            field(b"s", b"s", struct.pack(">h", -2)),
            field(b"u", b"u", struct.pack(">H", 65535)),
            field(b"I", b"I", struct.pack(">i", -3)),
            field(b"i", b"i", struct.pack(">I", 2**32 - 1)),
            field(b"l", b"l", struct.pack(">q", -(2**40))),
            field(b"f", b"f", struct.pack(">f", 0.5)),
            field(b"d", b"d", struct.pack(">d", 0.1)),
            field(b"D", b"D", b"\x02" + struct.pack(">i", -314)),
            field(b"S", b"S", struct.pack(">I", 2) + "é".encode()),
            field(b"x", b"x", struct.pack(">I", 2) + b"\x00\xff"),
            field(b"T", b"T", struct.pack(">Q", 1700000000)),
            field(b"V", b"V", b""),
            field(b"A", b"A", struct.pack(">I", 6) + b"t\x00" + b"b\x05" + b"V" + b"V"),
            field(b"F", b"F", struct.pack(">I", 3) + field(b"k", b"V", b"")),
        ]
    )
    table, end = decode_table(struct.pack(">I", len(fields)) + fields, 0)
    assert end == len(fields) + 4
    assert table == {
        "t": True,
        "b": -1,
        "B": 255,
        "s": -2,
        "u": 65535,
        "I": -3,
        "i": 2**32 - 1,
        "l": -(2**40),
        "f": 0.5,
        "d": 0.1,
        "D": decimal.Decimal("-3.14"),
        "S": "é",
        "x": b"\x00\xff",
        "T": datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC),
        "V": None,
        "A": [False, 5, None, None],
        "F": {"k": None},
    }


def test_no_wait_consume_with_client_tag_still_names_the_queue() -> None:
    client = method(1, pika.spec.Basic.Consume(queue="events", consumer_tag="mine", nowait=True))
    server = deliver(1, b"e1", tag="mine")
    conn = AmqpConnection(CONN)
    records = run(conn, [(True, client), (False, server)])
    (obs,) = records
    assert (obs.queue, obs.consumer_tag, obs.body) == ("events", "mine", b"e1")


@settings(max_examples=150, deadline=None)
@given(
    exchange=shortstr,
    routing_key=shortstr,
    tag=shortstr,
    delivery_tag=st.integers(0, 2**64 - 1),
    flag=st.booleans(),
)
def test_hand_publish_and_deliver_decoders_match_pika(
    exchange, routing_key, tag, delivery_tag, flag
) -> None:
    for m in (
        pika.spec.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=flag),
        pika.spec.Basic.Deliver(
            consumer_tag=tag,
            delivery_tag=delivery_tag,
            redelivered=flag,
            exchange=exchange,
            routing_key=routing_key,
        ),
    ):
        (frame,) = FrameDecoder().feed(method(7, m))
        expected = vars(type(m)().decode(b"".join(m.encode())))
        assert dict(frame.arguments) == {k: v for k, v in expected.items() if k in frame.arguments}
