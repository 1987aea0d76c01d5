"""The agent feeding the real store: a publish and its delivery become one message."""

from __future__ import annotations

import pika
import pytest
from brokerutil import AgentThread, connect, temp_vhost, url_for

from busdoc.sniffer.agent import FirehoseAgent
from busdoc.sniffer.records import Record
from busdoc.storage.redact import Redactor
from busdoc.storage.store import open_store

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def test_agent_sink_on_store_writer_keeps_publish_and_delivery_as_one_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(str(tmp_path / "busdoc.db"))
    run = store.begin_run(kind="firehose", name="test", content_hash=None)
    assert run is not None
    with temp_vhost() as vhost, store.writer(run, redactor=Redactor()) as writer:

        def sink(records: list[Record]) -> None:
            for record in records:
                writer.add(record)
            writer.flush()

        agent = FirehoseAgent([url_for(vhost)], [vhost], sink, max_messages=2)
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)
        conn = connect(vhost, "billing")
        ch = conn.channel()
        ch.queue_declare("invoices")
        ch.basic_publish(
            "", "invoices", b'{"amount": 12}',
            pika.BasicProperties(content_type="application/json", headers={"v": 2}),
        )
        method, _props, body = None, None, None
        while method is None:
            method, _props, body = ch.basic_get("invoices", auto_ack=True)
        conn.close()
        runner.join()
    store.finish_run(run, stats={})

    (message,) = list(store.iter_messages())
    assert message.vhost == vhost
    assert message.exchange == "" and message.routing_key == "invoices"
    assert message.body == b'{"amount": 12}'
    assert message.headers == {"v": 2}
    assert message.properties.get("content_type") == "application/json"
    assert sorted(o.kind for o in message.observations) == ["deliver", "publish"]
    assert {o.queue for o in message.observations if o.kind == "deliver"} == {"invoices"}
