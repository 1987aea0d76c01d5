"""Body decoding and classification of oslo.messaging, Celery, plain JSON and opaque messages."""

from __future__ import annotations

import gzip
import pickle

import orjson
import pytest

from busdoc.inference.classify import (
    OPAQUE,
    classify,
    decode_body,
    parse_failure,
    routing_pattern,
    split_topic,
)
from busdoc.inference.schema import Redacted
from busdoc.inference.testing import (
    call,
    envelope,
    failure_json,
    fanout,
    notification,
    reply,
    stored,
)
from busdoc.storage.records import Redaction


def classified(message):
    return classify(message, decode_body(message))


def test_oslo_envelope_is_unwrapped():
    m, _ = call("ping", {"x": 1})
    d = decode_body(m)
    assert d.enveloped and d.value["method"] == "ping" and d.value["args"] == {"x": 1}


def test_unenveloped_oslo_1_message_is_read_as_is():
    body = orjson.dumps({"method": "ping", "args": {}, "_msg_id": "a" * 32, "_reply_q": "reply_x"})
    c = classified(stored(body, exchange="nova", routing_key="conductor"))
    assert (c.kind, c.topic, c.method) == ("call", "conductor", "ping")


def test_gzip_content_encoding_is_decompressed():
    body = gzip.compress(orjson.dumps({"hello": "world"}))
    m = stored(body, exchange="app", routing_key="greet",
               properties={"content_type": "application/json", "content_encoding": "gzip"})
    assert decode_body(m).value == {"hello": "world"}


def test_python_pickles_are_opaque_and_never_unpickled():
    body = pickle.dumps({"task": "x"})
    m = stored(body, exchange="celery", routing_key="celery",
               properties={"content_type": "application/x-python-serialize"},
               headers={"task": "proj.tasks.add", "id": "1"})
    assert decode_body(m).value is OPAQUE
    c = classified(m)
    assert (c.kind, c.identity, c.body) == ("celery", {"task": "proj.tasks.add"}, None)


def test_truncated_and_broken_bodies_are_reported_not_parsed():
    m = stored(b'{"a": 1', exchange="x", routing_key="y", truncated=True)
    assert decode_body(m).status == "truncated"
    m = stored(b'{"a": ', exchange="x", routing_key="y")
    assert decode_body(m).status == "undecodable"


def test_redacted_paths_inside_the_envelope_become_markers_of_the_original_type():
    m, _ = call("ping", {"password": "<redacted>"}, redactions=[
        Redaction(path="/oslo.message/args/password", json_type="string", length_class="8-15")])
    assert decode_body(m).value["args"]["password"] == Redacted("string", None, "8-15")


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: call("ping", {}, server="host1")[0], "call"),
        (lambda: call("ping", {}, cast=True)[0], "cast"),
        (lambda: fanout("refresh", {}), "fanout"),
        (lambda: reply("0" * 32, {"a": 1}), "reply"),
        (lambda: reply("0" * 32, failure=failure_json("E", "m", "boom")), "reply"),
        (lambda: notification("compute.instance.update", {}), "notification"),
    ],
)
def test_oslo_message_kinds(make, kind):
    assert classified(make()).kind == kind


def test_call_identity_strips_the_server_from_the_routing_key():
    m, msg_id = call("build", {}, topic="compute", server="host1.example.org", exchange="nova",
                     version="6.2", namespace="compute")
    c = classified(m)
    assert (c.exchange, c.topic, c.server, c.method, c.version, c.namespace, c.msg_id) == (
        "nova", "compute", "host1.example.org", "build", "6.2", "compute", msg_id)


def test_context_is_split_out_without_its_prefix():
    c = classified(call("ping", {})[0])
    assert c.context["request_id"].startswith("req-")
    assert not any(k.startswith("_context_") for k in c.context)


def test_fanout_topic_comes_from_the_exchange_and_its_control_exchange_is_unknown():
    c = classified(fanout("refresh", {}, topic="scheduler"))
    assert (c.topic, c.exchange) == ("scheduler", None)


def test_notification_topic_drops_the_priority_suffix():
    c = classified(notification("compute.instance.update", {}, priority="ERROR",
                                topic="versioned_notifications"))
    assert (c.topic, c.priority, c.event_type) == ("versioned_notifications", "ERROR",
                                                   "compute.instance.update")


def test_celery_protocol_1_body_is_recognised_by_task_and_id():
    body = orjson.dumps({"task": "proj.add", "id": "1", "args": [1, 2], "kwargs": {}})
    assert classified(stored(body, exchange="celery", routing_key="celery")).kind == "celery"


def test_plain_json_is_identified_by_exchange_routing_pattern_and_type():
    body = orjson.dumps({"order": 1})
    m = stored(body, exchange="shop", routing_key="orders.1234.created",
               properties={"content_type": "application/json", "type": "OrderCreated"})
    c = classified(m)
    assert c.kind == "json"
    assert c.identity == {"exchange": "shop", "routing_key": "orders.*.created",
                          "type": "OrderCreated"}


def test_binary_bodies_are_opaque_with_their_content_type():
    m = stored(b"\x00\x01\x02", exchange="x", routing_key="bin",
               properties={"content_type": "application/octet-stream"})
    c = classified(m)
    assert c.kind == "opaque" and c.identity["content_type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("routing_key", "topic", "server"),
    [("compute", "compute", None), ("compute.host1", "compute", "host1"),
     ("compute.host1.example.org", "compute", "host1.example.org")],
)
def test_split_topic(routing_key, topic, server):
    assert split_topic(routing_key) == (topic, server)


def test_routing_pattern_hides_data_segments():
    assert routing_pattern("job.6f1d2c3b-4a59-4e8f-8a7b-1c2d3e4f5a6b.done") == "job.*.done"


def test_failure_json_gives_class_module_and_message():
    assert parse_failure(failure_json("InstanceNotFound", "nova.exception", "gone")) == (
        "InstanceNotFound", "nova.exception", "gone")
    assert parse_failure("not json") == ("?", None, "not json")


def test_envelope_helper_writes_the_oslo_2_0_layout():
    outer = orjson.loads(envelope({"a": 1}))
    assert outer["oslo.version"] == "2.0" and orjson.loads(outer["oslo.message"]) == {"a": 1}


def test_hostile_nesting_is_undecodable_not_a_crash():
    body = b"[" * 5000 + b"]" * 5000
    m = stored(body, exchange="x", routing_key="deep")
    assert decode_body(m).status == "undecodable"


def test_json_string_nested_too_deep_stays_a_plain_string():
    from busdoc.inference.schema import infer

    s = infer(["[" * 5000 + "]" * 5000]).to_json_schema()
    assert s["type"] == "string" and "x-busdoc-encoded" not in s


def test_msgpack_bodies_are_decoded_with_string_keys():
    msgpack = pytest.importorskip("msgpack")
    m = stored(msgpack.packb({"id": 1, 2: b"x"}), exchange="x", routing_key="mp",
               properties={"content_type": "application/x-msgpack"})
    assert decode_body(m).value == {"id": 1, "2": "x"}


def test_yaml_bodies_use_the_safe_loader_only():
    pytest.importorskip("yaml")
    ok = stored(b"task: add\nargs: [1, 2]\nwhen: 2026-11-24\n", exchange="x",
                routing_key="y", properties={"content_type": "application/x-yaml"})
    assert decode_body(ok).value == {"task": "add", "args": [1, 2], "when": "2026-11-24"}
    evil = stored(b"!!python/object/apply:os.system ['true']", exchange="x", routing_key="y",
                  properties={"content_type": "application/x-yaml"})
    assert decode_body(evil).status == "undecodable"
