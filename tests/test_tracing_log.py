"""Reading rabbitmq_tracing JSON logs (a real log written by the 3.10 plugin)."""

from __future__ import annotations

import base64
import json

from conftest import CAPTURES

from busdoc.sniffer.records import ConnectionInfo, Notice, Observation
from busdoc.sniffer.tracing_log import line_to_records, read_tracing_log
from busdoc.storage.redact import Redactor
from busdoc.storage.store import open_store

LOG = CAPTURES / "tracing_log_oslo.log"


def observations() -> list[Observation]:
    with LOG.open("rb") as f:
        return [r for r in read_tracing_log(f) if isinstance(r, Observation)]


def test_published_and_received_lines_become_publish_and_deliver() -> None:
    obs = observations()

    assert [(o.kind, o.exchange, o.routing_key, o.queue) for o in obs] == [
        ("publish", "nova", "compute.host1", None),
        ("publish", "", "compute.host1", None),
        ("deliver", "nova", "compute.host1", "compute.host1"),
        ("deliver", "", "compute.host1", "compute.host1"),
    ]


def test_payload_is_the_original_body_byte_for_byte() -> None:
    obs = observations()
    first = json.loads(obs[0].body)

    assert json.loads(first["oslo.message"])["method"] == "ping"
    assert obs[1].body == b"\x00\xffbinary"
    assert obs[3].body == obs[1].body


def test_properties_and_headers_are_split_like_the_firehose() -> None:
    pub = observations()[0]

    assert pub.properties == {
        "content_type": "application/json",
        "correlation_id": "c1",
        "delivery_mode": 2,
        "message_id": "m1",
        "reply_to": "reply_1",
        "timestamp": 1700000000,
    }
    assert pub.headers == {"b": True, "ttl": 5}
    assert observations()[1].headers is None


def test_timestamps_keep_milliseconds_and_connection_is_announced_once_per_client() -> None:
    with LOG.open("rb") as f:
        records = list(read_tracing_log(f))
    infos = [r for r in records if isinstance(r, ConnectionInfo)]
    obs = [r for r in records if isinstance(r, Observation)]

    assert [i.connection for i in infos] == [
        "127.0.0.1:51492 -> 127.0.0.1:5672",
        "127.0.0.1:51504 -> 127.0.0.1:5672",
    ]
    assert infos[0].user == "guest" and infos[0].node == "rabbit@localhost"
    assert abs(obs[1].time - obs[0].time - 0.001) < 1e-6


def test_bad_lines_become_notices_with_their_line_number() -> None:
    lines = [
        b"not json",
        b"[1]",
        json.dumps({"type": "published", "timestamp": "2026-01-01T00:00:00+00:00"}).encode(),
        json.dumps({"type": "published", "timestamp": "2026-01-01T00:00:00+00:00",
                    "payload": "!!"}).encode(),
        json.dumps({"type": "other"}).encode(),
    ]
    records = list(read_tracing_log(lines))

    assert all(isinstance(r, Notice) for r in records)
    assert [r.message.split(":")[0] for r in records] == [  # type: ignore[union-attr]
        "line 1 skipped", "line 2 skipped", "line 3 skipped", "line 4 skipped",
        "line 5 skipped",
    ]


def test_stored_log_pairs_each_publish_with_its_delivery(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(str(tmp_path / "t.db"))
    run = store.begin_run(kind="tracing_log", name=LOG.name, content_hash=None)
    assert run is not None
    with store.writer(run, redactor=Redactor()) as writer, LOG.open("rb") as f:
        for record in read_tracing_log(f):
            writer.add(record)
    store.finish_run(run, stats={})

    messages = list(store.iter_messages())
    assert len(messages) == 2
    assert [sorted(o.kind for o in m.observations) for m in messages] == [
        ["deliver", "publish"], ["deliver", "publish"],
    ]


def test_single_line_without_seen_set_always_announces_the_connection() -> None:
    line = json.dumps({
        "type": "received", "timestamp": "2026-01-01T00:00:00.5+00:00", "exchange": "x",
        "queue": "q", "routing_keys": ["k"], "payload": base64.b64encode(b"hi").decode(),
        "properties": {}, "connection": "c", "vhost": "/", "channel": 2,
    })
    info, obs = line_to_records(line)

    assert isinstance(info, ConnectionInfo) and isinstance(obs, Observation)
    assert obs.body == b"hi" and obs.queue == "q" and obs.channel == 2
    assert obs.time == 1767225600.5
