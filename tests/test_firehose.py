"""Decoding firehose trace messages (no broker: pika objects decoded from wire bytes).

The header sets are the ones RabbitMQ 3.10 sends (seen on the local broker): publish
traces carry exchange_name, routing_keys, properties, node, vhost, connection, channel,
user, routed_queues; deliver traces carry redelivered instead of routed_queues.
"""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any

from pika import spec

from busdoc.sniffer.firehose import BodySampler, RecordFilter, method_of, trace_to_records
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation

CONNECTION = "127.0.0.1:52962 -> 127.0.0.1:5672"
ORIGINAL_PROPERTIES = {
    "app_id": "ap",
    "type": "t",
    "timestamp": 1700000000,
    "message_id": "m1",
    "expiration": "60000",
    "reply_to": "rq",
    "correlation_id": "cid",
    "priority": 3,
    "delivery_mode": 2,
    "headers": {"a": 1, "b": "x", "c": [1, "y"], "d": {"e": True}},
    "content_type": "application/json",
}


def wire(routing_key: str, headers: dict[str, Any]) -> tuple[Any, Any]:
    """A Basic.Deliver and its properties as pika decodes them from the wire."""
    method = spec.Basic.Deliver(
        consumer_tag="ctag", delivery_tag=1, redelivered=False,
        exchange="amq.rabbitmq.trace", routing_key=routing_key,
    )
    decoded_method = spec.Basic.Deliver()
    decoded_method.decode(b"".join(method.encode()))
    props = spec.BasicProperties()
    props.decode(b"".join(spec.BasicProperties(headers=headers).encode()))
    return decoded_method, props


def publish_headers(**extra: Any) -> dict[str, Any]:
    headers = {
        "exchange_name": "",
        "routing_keys": ["app"],
        "properties": ORIGINAL_PROPERTIES,
        "node": "rabbit@localhost",
        "vhost": "v1",
        "connection": CONNECTION,
        "channel": 1,
        "user": "guest",
        "routed_queues": ["app"],
    }
    headers.update(extra)
    return headers


def deliver_headers(**extra: Any) -> dict[str, Any]:
    headers = publish_headers()
    del headers["routed_queues"]
    headers["redelivered"] = 0
    headers.update(extra)
    return headers


def test_publish_trace_becomes_connection_info_and_publish_observation() -> None:
    method, props = wire("publish.", publish_headers())
    body = b"\xff\x00hello"

    records = trace_to_records(method, props, body, time=1.5)

    info, obs = records
    assert info == ConnectionInfo(
        connection=CONNECTION, time=1.5, user="guest", vhost="v1", node="rabbit@localhost"
    )
    assert isinstance(obs, Observation)
    assert obs.kind == "publish"
    assert obs.source == "firehose"
    assert obs.exchange == ""
    assert obs.routing_key == "app"
    assert obs.body == body and obs.body_size == len(body)
    assert obs.connection == CONNECTION and obs.channel == 1 and obs.vhost == "v1"
    assert obs.queue is None and obs.redelivered is False
    expected = dict(ORIGINAL_PROPERTIES)
    del expected["headers"]
    assert obs.properties == expected
    assert obs.headers == {"a": 1, "b": "x", "c": [1, "y"], "d": {"e": True}}


def test_deliver_trace_names_the_queue_and_redelivery() -> None:
    method, props = wire("deliver.app", deliver_headers(redelivered=1))

    (_, obs) = trace_to_records(method, props, b"x", time=2.0)

    assert isinstance(obs, Observation)
    assert obs.kind == "deliver"
    assert obs.queue == "app"
    assert obs.redelivered is True
    assert obs.exchange == "" and obs.routing_key == "app"


def test_exchange_name_header_wins_over_dotted_routing_key() -> None:
    headers = publish_headers(exchange_name="nova.compute", routing_keys=["compute.host1"])
    method, props = wire("publish.nova.compute", headers)

    obs = trace_to_records(method, props, b"{}", seen_connections=set())[-1]

    assert isinstance(obs, Observation)
    assert obs.exchange == "nova.compute"
    assert obs.routing_key == "compute.host1"


def test_connection_info_is_emitted_once_per_connection() -> None:
    seen: set[tuple[str, str | None, str | None, str | None]] = set()
    method, props = wire("publish.", publish_headers())
    other_method, other_props = wire("publish.", publish_headers(connection="10.0.0.1:1 -> x:5672"))

    first = trace_to_records(method, props, b"a", seen_connections=seen)
    second = trace_to_records(method, props, b"b", seen_connections=seen)
    third = trace_to_records(other_method, other_props, b"c", seen_connections=seen)

    assert [type(r) for r in first] == [ConnectionInfo, Observation]
    assert [type(r) for r in second] == [Observation]
    assert [type(r) for r in third] == [ConnectionInfo, Observation]


def test_message_without_properties_has_no_headers_and_empty_properties() -> None:
    method, props = wire("publish.amq.topic", publish_headers(
        exchange_name="amq.topic", routing_keys=["nobody"], properties={}, routed_queues=[],
    ))

    obs = trace_to_records(method, props, b"")[-1]

    assert isinstance(obs, Observation)
    assert obs.properties == {}
    assert obs.headers is None
    assert obs.body == b""


def test_empty_headers_table_stays_distinct_from_no_headers() -> None:
    method, props = wire("publish.", publish_headers(properties={"headers": {}}))

    obs = trace_to_records(method, props, b"")[-1]

    assert isinstance(obs, Observation)
    assert obs.headers == {}


def test_typed_header_values_survive_decoding() -> None:
    original = {
        "headers": {
            "price": decimal.Decimal("1.25"),
            "raw": b"\x00\x01",
            "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            "big": 2**40,
            "none": None,
        }
    }
    method, props = wire("publish.x", publish_headers(exchange_name="x", properties=original))

    obs = trace_to_records(method, props, b"")[-1]

    assert isinstance(obs, Observation)
    assert obs.headers is not None
    assert obs.headers["price"] == decimal.Decimal("1.25")
    assert obs.headers["raw"] == b"\x00\x01"
    assert obs.headers["big"] == 2**40
    assert obs.headers["none"] is None
    assert obs.headers["when"] == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def test_message_that_is_not_a_trace_becomes_a_notice() -> None:
    method, props = wire("something.else", {"foo": "bar"})
    no_headers_method, no_headers_props = wire("publish.x", {"foo": "bar"})

    (notice,) = trace_to_records(method, props, b"x")
    (second,) = trace_to_records(no_headers_method, no_headers_props, b"x")

    assert isinstance(notice, Notice) and notice.code == "firehose_undecodable"
    assert isinstance(second, Notice) and "exchange_name" in second.message


def test_non_utf8_long_strings_are_decoded_as_text() -> None:
    method, props = wire("publish.", publish_headers(user=b"\xffuser"))

    info = trace_to_records(method, props, b"")[0]

    assert isinstance(info, ConnectionInfo)
    assert info.user == "\ufffduser"


# -- filters and body sampling ------------------------------------------------------------


def obs(kind: str = "publish", exchange: str = "nova", key: str = "compute",
        body: bytes = b"{}", t: float = 600.0) -> Observation:
    return Observation(
        time=t, source="firehose", connection="c", channel=1, kind=kind,  # type: ignore[arg-type]
        exchange=exchange, routing_key=key, properties={}, headers=None, body=body,
        queue="q" if kind == "deliver" else None, body_size=len(body),
    )


def oslo(method: str, n: int) -> bytes:
    inner = json.dumps({"method": method, "n": n})
    return json.dumps({"oslo.version": "2.0", "oslo.message": inner}).encode()


def test_filter_keeps_included_exchanges_minus_excluded_keys() -> None:
    f = RecordFilter(include_exchanges=["nova", "cinder*"], exclude_routing_keys=["*.fanout"])
    info = ConnectionInfo(connection="c", time=0.0)

    kept = f([obs(exchange="nova"), obs(exchange="cinder-vol"), obs(exchange="glance"),
              obs(exchange="nova", key="compute.fanout"), info])

    assert [(o.exchange, o.routing_key) for o in kept if isinstance(o, Observation)] == [
        ("nova", "compute"), ("cinder-vol", "compute"),
    ]
    assert info in kept and f.dropped == 2


def test_empty_pattern_selects_the_default_exchange_and_no_filter_is_a_no_op() -> None:
    records = [obs(exchange=""), obs(exchange="nova")]

    assert RecordFilter(include_exchanges=[""])(list(records)) == records[:1]
    assert RecordFilter()(records) is records


def test_method_of_reads_oslo_method_and_collapses_reply_queues() -> None:
    assert method_of(obs(body=oslo("resize", 1))) == "nova\0resize"
    assert method_of(obs(body=b'{"event_type": "compute.instance.create.end"}')) == (
        "nova\0compute.instance.create.end")
    assert method_of(obs(body=b"opaque")) == "nova\0compute"
    assert method_of(obs(exchange="", key="reply_abc")) == method_of(
        obs(exchange="", key="reply_def"))


def test_sampler_keeps_n_bodies_per_method_per_minute_and_the_size_of_the_rest() -> None:
    s = BodySampler(2)
    out = s([obs(body=oslo("resize", i), t=600.0 + i) for i in range(4)]
            + [obs(body=oslo("reboot", 9), t=610.0)]
            + [obs(body=oslo("resize", 5), t=661.0)])

    bodies = [o.body for o in out if isinstance(o, Observation)]
    assert bodies == [oslo("resize", 0), oslo("resize", 1), b"", b"", oslo("reboot", 9),
                      oslo("resize", 5)]
    assert out[2].body_size == len(oslo("resize", 2))  # type: ignore[union-attr]
    assert s.sampled_out == 2


def test_sampler_gives_a_delivery_the_fate_of_its_publish() -> None:
    s = BodySampler(1)
    a, b = oslo("resize", 1), oslo("resize", 2)
    out = s([obs(body=a), obs(body=b), obs("deliver", body=b, t=601.0),
             obs("deliver", body=a, t=661.0)])

    assert [o.body for o in out] == [a, b"", b"", a]  # type: ignore[union-attr]
