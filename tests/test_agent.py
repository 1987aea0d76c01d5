"""The firehose agent against the real broker, with real pika publishers and consumers.

Each test runs in its own vhost. The agent runs on a thread (so no signal handlers) and
stops by ``max_messages`` or ``stop()``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pytest
from brokerutil import (
    AgentThread,
    Collector,
    close_connections_named,
    connect,
    queue_counts,
    rabbitmqctl,
    temp_vhost,
    tracing_on,
    url_for,
    wait_until,
)

from busdoc.errors import BrokerError
from busdoc.sniffer.agent import GAP_REASONS, AgentStatus, FirehoseAgent
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def sample_messages(n: int) -> list[tuple[bytes, pika.BasicProperties]]:
    """Bodies and properties a real application might send, binary bytes included."""
    out = []
    for i in range(n):
        body = b'{"method": "ping", "args": {"i": %d}}' % i if i % 2 else bytes(range(256)) * 3
        props = pika.BasicProperties(
            content_type="application/json" if i % 2 else "application/octet-stream",
            delivery_mode=2 if i % 3 else 1,
            correlation_id=f"corr-{i}",
            message_id=str(uuid.uuid4()),
            timestamp=1_700_000_000 + i,
            headers={"seq": i, "tag": "t" * (i % 5), "nested": {"ok": bool(i % 2)}},
        )
        out.append((body, props))
    return out


def comparable(props: pika.BasicProperties) -> dict[str, object]:
    return {k: v for k, v in vars(props).items() if v is not None}


def test_agent_is_passive_and_captures_publish_and_deliver_exactly() -> None:
    with temp_vhost() as vhost:
        setup = connect(vhost)
        ch = setup.channel()
        ch.exchange_declare("app.events", "fanout")
        for q in ("consumed", "kept"):
            ch.queue_declare(q)
            ch.queue_bind(q, "app.events")
        setup.close()

        sink = Collector()
        n = 20
        agent = FirehoseAgent([url_for(vhost)], [vhost], sink, max_messages=2 * n)
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)

        received: list[tuple[bytes, dict[str, object], bool]] = []
        consumer_conn = connect(vhost, "app-consumer")
        cch = consumer_conn.channel()

        def on_message(channel, method, props, body):  # type: ignore[no-untyped-def]
            received.append((body, comparable(props), method.redelivered))
            channel.basic_ack(method.delivery_tag)

        cch.basic_consume("consumed", on_message)
        messages = sample_messages(n)
        publisher = connect(vhost, "app-publisher")
        pch = publisher.channel()
        pch.confirm_delivery()
        for body, props in messages:
            pch.basic_publish("app.events", "any.key", body, props)
        deadline = time.monotonic() + 20
        while len(received) < n and time.monotonic() < deadline:
            consumer_conn.process_data_events(time_limit=0.1)
        runner.join()
        counts = queue_counts(vhost)
        consumer_conn.close()
        publisher.close()

        # The application saw exactly what was sent, and the unconsumed queue kept all.
        assert [(b, p) for b, p, _ in received] == [(b, comparable(p)) for b, p in messages]
        assert not any(r for _, _, r in received)
        assert counts["kept"] == (n, 0)
        assert counts["consumed"] == (0, 0)
        assert not any(name.startswith("busdoc.firehose.") for name in counts)

        publishes = sink.observations("publish")
        delivers = sink.observations("deliver")
        assert len(publishes) == n and len(delivers) == n
        for obs, (body, props) in zip(publishes, messages, strict=True):
            assert obs.source == "firehose"
            assert obs.exchange == "app.events" and obs.routing_key == "any.key"
            assert obs.body == body
            assert obs.vhost == vhost
            assert obs.headers == props.headers
            expected = comparable(props)
            del expected["headers"]
            assert obs.properties == expected
        assert [d.body for d in delivers] == [b for b, _ in messages]
        assert {d.queue for d in delivers} == {"consumed"}
        infos = [r for r in sink.records if isinstance(r, ConnectionInfo)]
        assert {i.user for i in infos} == {"guest"}
        assert {i.connection for i in infos} == {o.connection for o in publishes + delivers}
        assert len({o.connection for o in publishes} | {o.connection for o in delivers}) == 2


def test_rpc_reply_through_default_exchange_is_captured() -> None:
    with temp_vhost() as vhost:
        sink = Collector()
        agent = FirehoseAgent([url_for(vhost)], [vhost], sink, max_messages=4)
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)

        server = connect(vhost, "rpc-server")
        sch = server.channel()
        sch.queue_declare("compute")

        def serve(channel, method, props, body):  # type: ignore[no-untyped-def]
            channel.basic_publish(
                "", props.reply_to, b'{"result": 42}',
                pika.BasicProperties(correlation_id=props.correlation_id),
            )
            channel.basic_ack(method.delivery_tag)

        sch.basic_consume("compute", serve)
        client = connect(vhost, "rpc-client")
        cch = client.channel()
        reply_queue = cch.queue_declare("", exclusive=True).method.queue
        replies: list[bytes] = []
        cch.basic_consume(reply_queue, lambda c, m, p, b: replies.append(b), auto_ack=True)
        cch.basic_publish(
            "", "compute", b'{"method": "add"}',
            pika.BasicProperties(reply_to=reply_queue, correlation_id="c-1"),
        )
        deadline = time.monotonic() + 20
        while not replies and time.monotonic() < deadline:
            server.process_data_events(time_limit=0.05)
            client.process_data_events(time_limit=0.05)
        runner.join()
        server.close()
        client.close()

        assert replies == [b'{"result": 42}']
        by_key = {(o.kind, o.routing_key): o for o in sink.observations()}
        reply = by_key[("publish", reply_queue)]
        assert reply.exchange == ""
        assert reply.properties == {"correlation_id": "c-1"}
        assert reply.body == b'{"result": 42}'
        assert by_key[("deliver", reply_queue)].queue == reply_queue
        call = by_key[("publish", "compute")]
        assert call.properties == {"reply_to": reply_queue, "correlation_id": "c-1"}


def test_sink_failure_acks_nothing_and_propagates() -> None:
    with temp_vhost() as vhost:
        seen_in_queue: list[tuple[int, int]] = []
        batch_sizes: list[int] = []

        class StoreDown(Exception):
            pass

        def failing_sink(records: list[object]) -> None:
            batch_sizes.append(sum(isinstance(r, Observation) for r in records))
            (own,) = [v for k, v in queue_counts(vhost).items() if k in agent.queue_names]
            seen_in_queue.append(own)
            raise StoreDown("disk full")

        agent = FirehoseAgent(
            [url_for(vhost)], [vhost], failing_sink, batch_size=5, batch_seconds=30
        )
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)
        conn = connect(vhost)
        ch = conn.channel()
        ch.queue_declare("q")
        for i in range(5):
            ch.basic_publish("", "q", b"m%d" % i)

        with pytest.raises(StoreDown):
            runner.join()
        conn.close()

        # Five publish traces were delivered to the agent and none of them was acked.
        assert batch_sizes == [5]
        ready, unacked = seen_in_queue[0]
        assert unacked == 5
        assert agent.total == 0
        assert not tracing_on(vhost)


@pytest.mark.parametrize("was_on", [False, True])
def test_tracing_is_restored_after_exit(was_on: bool) -> None:
    with temp_vhost() as vhost:
        if was_on:
            rabbitmqctl("trace_on", "-p", vhost)
        stop = threading.Event()
        agent = FirehoseAgent([url_for(vhost)], [vhost], Collector(), stop_event=stop)
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)

        stop.set()
        runner.join()

        assert tracing_on(vhost) is was_on


def test_two_agents_in_two_vhosts_capture_only_their_own_traffic() -> None:
    with temp_vhost() as first, temp_vhost() as second:
        sinks = {first: Collector(), second: Collector()}
        runners = {
            v: AgentThread(FirehoseAgent([url_for(v)], [v], sinks[v], max_messages=3)).start()
            for v in (first, second)
        }
        for v, runner in runners.items():
            runner.wait_capturing(v)
        for v in (first, second):
            conn = connect(v)
            ch = conn.channel()
            for i in range(3):
                ch.basic_publish("amq.topic", f"{v}.{i}", v.encode())
            conn.close()
        for runner in runners.values():
            runner.join()

        for v in (first, second):
            bodies = {o.body for o in sinks[v].observations()}
            assert bodies == {v.encode()}
            assert len(sinks[v].observations("publish")) == 3
            assert not tracing_on(v)


def test_one_agent_with_two_connections_covers_both_vhosts() -> None:
    # The cluster code path: one connection per URL (here both point at the local node).
    with temp_vhost() as first, temp_vhost() as second:
        sink = Collector()
        statuses: list[AgentStatus] = []
        agent = FirehoseAgent(
            [url_for(first), url_for(second)], [], sink, max_messages=4,
            status=statuses.append, status_interval=0.1,
        )
        assert len(agent.queue_names) == 2
        runner = AgentThread(agent).start()
        runner.wait_capturing(first)
        runner.wait_capturing(second)
        for v in (first, second):
            conn = connect(v)
            ch = conn.channel()
            for _ in range(2):
                ch.basic_publish("amq.topic", "k", v.encode())
            conn.close()
        final = runner.join()

        assert sorted(o.vhost for o in sink.observations()) == sorted([first] * 2 + [second] * 2)
        assert final.total == 4 and final.taps == 2
        assert statuses and statuses[-1].connected == 2
        assert not tracing_on(first) and not tracing_on(second)


def test_full_trace_queue_is_recorded_as_a_gap() -> None:
    with temp_vhost() as vhost:
        sink = Collector()
        slow_calls: list[int] = []

        def slow_sink(records: list[object]) -> None:
            slow_calls.append(len(records))
            time.sleep(0.3)
            sink(records)

        stop = threading.Event()
        agent = FirehoseAgent(
            [url_for(vhost)], [vhost], slow_sink, stop_event=stop,
            max_queue_bytes=20_000, prefetch=10, batch_size=10, depth_interval=0.05,
        )
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)
        conn = connect(vhost)
        ch = conn.channel()
        body = os.urandom(1000)
        for _ in range(400):
            ch.basic_publish("amq.topic", "flood", body)
        conn.close()
        assert wait_until(lambda: agent.status().gaps > 0, 30)
        stop.set()
        runner.join()

        gap = next(g for g in agent.gaps if g.reason == "queue_full")
        assert gap.vhost == vhost and gap.end is not None and gap.end >= gap.start
        assert len(sink.observations()) < 400
        notices = [r for r in sink.records if isinstance(r, Notice)]
        assert any(n.code == "firehose_gap_queue_full" for n in notices)


def test_wrong_password_is_a_broker_error_without_the_password() -> None:
    with temp_vhost() as vhost:
        agent = FirehoseAgent([url_for(vhost, password="Sup3rS3cret")], [vhost], Collector())

        with pytest.raises(BrokerError) as caught:
            agent.run()

        message = str(caught.value)
        assert "Sup3rS3cret" not in message
        assert "refused the credentials" in message and "'guest'" in message
        assert "\n" not in message
        assert not tracing_on(vhost)


def test_missing_vhost_is_a_broker_error() -> None:
    agent = FirehoseAgent([url_for("/", password="guest")], ["busdoc-no-such-vhost"], Collector())

    with pytest.raises(BrokerError, match="busdoc-no-such-vhost"):
        agent.run()


def test_broker_down_is_a_broker_error() -> None:
    agent = FirehoseAgent(["amqp://guest:pw0rd@127.0.0.1:1/%2F"], [], Collector())

    with pytest.raises(BrokerError, match="cannot reach RabbitMQ") as caught:
        agent.run()
    assert "pw0rd" not in str(caught.value)


def test_user_without_permission_is_a_broker_error() -> None:
    with temp_vhost() as vhost:
        user = f"busdoc-limited-{uuid.uuid4().hex[:6]}"
        rabbitmqctl("add_user", user, "limitedpw")
        try:
            rabbitmqctl("set_permissions", "-p", vhost, user, "^$", "^$", "^$")
            agent = FirehoseAgent(
                [url_for(vhost, user=user, password="limitedpw")], [vhost], Collector(),
                tracing="assume",
            )
            with pytest.raises(BrokerError) as caught:
                agent.run()
        finally:
            rabbitmqctl("delete_user", user)

        message = str(caught.value)
        assert "ACCESS_REFUSED" in message and user in message
        assert "limitedpw" not in message


def capturing_agent(
    vhost: str, check_every: float
) -> tuple[FirehoseAgent, AgentThread, Collector, threading.Event]:
    """An agent on ``vhost`` that reads tracing back every ``check_every`` seconds,
    started and capturing, with its sink and the event that stops it."""
    sink = Collector()
    stop = threading.Event()
    agent = FirehoseAgent([url_for(vhost)], [vhost], sink, stop_event=stop,
                          trace_check_interval=check_every)
    runner = AgentThread(agent).start()
    runner.wait_capturing(vhost)
    return agent, runner, sink, stop


def drop_connection_and_tracing(vhost: str, agent: FirehoseAgent, runner: AgentThread) -> None:
    """What a node restart does: tracing forgotten, connections dropped."""
    rabbitmqctl("trace_off", "-p", vhost)
    assert close_connections_named(vhost, "busdoc firehose agent") == 1
    assert wait_until(lambda: any(g.reason == "disconnected" for g in agent.gaps))
    runner.wait_capturing(vhost)


def switch_tracing_off(vhost: str, agent: FirehoseAgent, runner: AgentThread) -> None:
    """What another client's switch can do to ours (the broker does not serialise them)."""
    rabbitmqctl("trace_off", "-p", vhost)
    assert wait_until(lambda: any(g.reason == "tracing_off" for g in agent.gaps))


@pytest.mark.parametrize(
    ("disrupt", "reason", "check_every"),
    [
        # No tracing check in the window between trace_off and the dropped connection.
        (drop_connection_and_tracing, "disconnected", 3600.0),
        (switch_tracing_off, "tracing_off", 0.2),
    ],
)
def test_agent_recovers_turns_tracing_back_on_and_records_the_gap(
    disrupt: Callable[[str, FirehoseAgent, AgentThread], None], reason: str, check_every: float
) -> None:
    with temp_vhost() as vhost:
        agent, runner, sink, stop = capturing_agent(vhost, check_every)
        conn = connect(vhost)
        conn.channel().basic_publish("amq.topic", "before", b"before")
        assert wait_until(lambda: len(sink.observations()) == 1)

        disrupt(vhost, agent, runner)
        assert tracing_on(vhost)
        conn.channel().basic_publish("amq.topic", "after", b"after")
        assert wait_until(lambda: len(sink.observations()) == 2)
        conn.close()
        stop.set()
        runner.join()

        assert [o.body for o in sink.observations()] == [b"before", b"after"]
        (gap,) = agent.gaps
        assert gap.reason == reason and gap.end is not None and gap.end > gap.start
        (notice,) = [r for r in sink.records if isinstance(r, Notice)]
        assert notice.code == f"firehose_gap_{reason}"
        assert notice.message.startswith(
            f"{GAP_REASONS[reason]}, messages may be missing: vhost {vhost}"
        )
        assert not tracing_on(vhost)  # it was ours, so it goes off again


def test_tracing_found_off_and_not_turned_on_at_once_stays_one_gap() -> None:
    """The first try to turn it on again turns it on but then fails (its read-back timed
    out): the gap stays open, and the next check, finding tracing on, ends it."""
    with temp_vhost() as vhost:
        agent, runner, sink, stop = capturing_agent(vhost, check_every=0.2)
        control = agent.taps[0].control
        turn_on = control.enable
        failed: list[str] = []

        def enable_failing_once(v: str) -> Any:
            state = turn_on(v)
            if not failed:
                failed.append(v)
                raise BrokerError("management API timed out")
            return state

        control.enable = enable_failing_once  # type: ignore[method-assign]
        rabbitmqctl("trace_off", "-p", vhost)
        off_at = time.time()  # off by now, and the last check that saw it on was earlier
        assert wait_until(lambda: any(g.reason == "tracing_off" for g in agent.gaps))
        assert tracing_on(vhost)
        stop.set()
        runner.join()

    assert failed == [vhost]
    (gap,) = agent.gaps
    assert gap.reason == "tracing_off" and gap.start <= off_at
    assert gap.end is not None and gap.end > off_at
    (notice,) = [r for r in sink.records if isinstance(r, Notice)]
    assert notice.code == "firehose_gap_tracing_off"


def test_a_gap_still_open_when_the_run_ends_reaches_the_sink() -> None:
    with temp_vhost() as vhost:
        agent, runner, sink, stop = capturing_agent(vhost, check_every=3600)
        rabbitmqctl("clear_permissions", "-p", vhost, "guest")  # no way back in
        assert close_connections_named(vhost, "busdoc firehose agent") == 1
        assert wait_until(lambda: agent.status().connected == 0)
        stop.set()
        runner.join()

    (gap,) = agent.gaps
    assert gap.reason == "disconnected" and gap.end is not None and gap.end >= gap.start
    (notice,) = [r for r in sink.records if isinstance(r, Notice)]
    assert notice.code == "firehose_gap_disconnected"


AGENT_SCRIPT = """
import json, sys
from busdoc.sniffer.agent import FirehoseAgent
from busdoc.sniffer.records import Observation

out = open(sys.argv[2], "a")

def sink(records):
    for r in records:
        if isinstance(r, Observation):
            out.write(json.dumps({"kind": r.kind, "body": r.body.decode()}) + "\\n")
    out.flush()

def status(s):
    print("connected", s.connected, "pending", s.pending, flush=True)

FirehoseAgent([sys.argv[1]], [], sink, status=status, status_interval=0.05,
              batch_seconds=30, batch_size=1000).run()
print("done", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_flushes_restores_tracing_and_exits_zero(signum: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with temp_vhost() as vhost:
        out = tmp_path / "records.jsonl"
        proc = subprocess.Popen(
            [sys.executable, "-c", AGENT_SCRIPT, url_for(vhost), str(out)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("connected 1"):
                    break
            conn = connect(vhost)
            ch = conn.channel()
            ch.confirm_delivery()
            for i in range(3):
                ch.basic_publish("amq.topic", "k", b"m%d" % i)
            conn.close()
            # batch_seconds=30: the records are still pending when the signal arrives.
            for line in proc.stdout:
                if line.strip().endswith("pending 3"):
                    break
            proc.send_signal(signum)
            rest = proc.stdout.read()
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()

        assert "done" in rest
        lines = out.read_text().splitlines()
        assert [json.loads(x)["body"] for x in lines] == ["m0", "m1", "m2"]
        assert not tracing_on(vhost)


@pytest.mark.broker_restart
def test_agent_survives_broker_restart_and_reenables_tracing() -> None:
    with temp_vhost() as vhost:
        sink = Collector()
        stop = threading.Event()
        agent = FirehoseAgent([url_for(vhost)], [vhost], sink, stop_event=stop)
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)
        conn = connect(vhost)
        conn.channel().basic_publish("amq.topic", "before", b"before")
        conn.close()
        assert wait_until(lambda: len(sink.observations()) == 1)

        rabbitmqctl("stop_app")
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        assert wait_until(lambda: tracing_on(vhost), 60)
        assert wait_until(lambda: bool(set(agent.queue_names) & set(queue_counts(vhost))), 60)
        conn = connect(vhost)
        conn.channel().basic_publish("amq.topic", "after", b"after")
        conn.close()
        assert wait_until(lambda: len(sink.observations()) == 2, 30)
        stop.set()
        runner.join()

        assert [o.body for o in sink.observations()] == [b"before", b"after"]
        assert any(g.reason == "disconnected" and g.end for g in agent.gaps)
        assert not tracing_on(vhost)


def test_bad_url_is_a_broker_error_without_the_password() -> None:
    with pytest.raises(BrokerError, match="bad AMQP URL") as caught:
        FirehoseAgent(["amqp://guest:Secr3t@127.0.0.1:notaport/%2F"], [], Collector())

    assert "Secr3t" not in str(caught.value)


def test_duration_ends_the_run_and_restores_tracing() -> None:
    with temp_vhost() as vhost:
        agent = FirehoseAgent([url_for(vhost)], [vhost], Collector(), duration=0.5)

        final = AgentThread(agent).start().join()

        assert final.total == 0 and final.connected == 0
        assert not tracing_on(vhost)
