"""The agent watching a real oslo.messaging RPC server, client and notifier."""

from __future__ import annotations

import json
import threading
import urllib.parse

import oslo_messaging as messaging
import pytest
from brokerutil import AgentThread, Collector, temp_vhost, url_for, wait_until
from oslo_config import cfg

from busdoc.sniffer.agent import FirehoseAgent

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]

EXCHANGE = "busdoc_agent_test"


class Calculator:
    target = None

    def add(self, ctxt: dict[str, object], a: int, b: int) -> int:
        return a + b


def oslo_message(body: bytes) -> dict[str, object]:
    """oslo.messaging 2.0 envelope: the message is a JSON string inside JSON."""
    return json.loads(json.loads(body)["oslo.message"])


def test_agent_captures_oslo_call_reply_and_notification() -> None:
    with temp_vhost() as vhost:
        sink = Collector()
        stop = threading.Event()
        runner = AgentThread(FirehoseAgent([url_for(vhost)], [vhost], sink, stop_event=stop))
        runner.start().wait_capturing(vhost)

        messaging.set_transport_defaults(EXCHANGE)
        conf = cfg.CONF
        conf([], project="busdoc-agent-test")
        url = f"rabbit://guest:guest@127.0.0.1:5672/{urllib.parse.quote(vhost, safe='')}"
        transport = messaging.get_rpc_transport(conf, url=url)
        ntransport = messaging.get_notification_transport(conf, url=url)
        server = messaging.get_rpc_server(
            transport, messaging.Target(topic="calc", server="calc-1", exchange=EXCHANGE),
            [Calculator()],
        )
        server.start()
        try:
            client = messaging.get_rpc_client(
                transport, messaging.Target(topic="calc", exchange=EXCHANGE)
            )
            assert client.call({"request_id": "req-1"}, "add", a=2, b=3) == 5
            notifier = messaging.Notifier(
                ntransport, publisher_id="calc.calc-1", driver="messagingv2",
                topics=["busdoc_notifications"],
            )
            notifier.info({"request_id": "req-2"}, "calc.added", {"sum": 5})

            def seen() -> bool:
                keys = {(o.kind, o.routing_key) for o in sink.observations()}
                return ("publish", "busdoc_notifications.info") in keys and any(
                    k == ("deliver", "calc") for k in keys
                )

            assert wait_until(seen, 30)
        finally:
            server.stop()
            server.wait()
            transport.cleanup()
            ntransport.cleanup()
        stop.set()
        runner.join()

        publishes = sink.observations("publish")
        (call,) = [o for o in publishes if o.exchange == EXCHANGE and o.routing_key == "calc"]
        request = oslo_message(call.body)
        assert request["method"] == "add" and request["args"] == {"a": 2, "b": 3}
        reply_key = request["_reply_q"]
        replies = [o for o in publishes if o.exchange == "" and o.routing_key == reply_key]
        assert replies, "the reply through the default exchange was not captured"
        results = [oslo_message(r.body).get("result") for r in replies]
        assert 5 in results
        (note,) = [o for o in publishes if o.routing_key == "busdoc_notifications.info"]
        notification = oslo_message(note.body)
        assert notification["event_type"] == "calc.added"
        assert notification["payload"] == {"sum": 5}
