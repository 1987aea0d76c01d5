"""Faults of the firehose agent while it writes: kill -9, a full disk, a lost connection.

After a kill -9, what the agent had not flushed is lost with it (its trace queue is
exclusive and dies with the connection), but nothing half-written stays behind, and the
next agent run appends to the same store. With a kept queue (``--queue``), what a lost
connection left unstored is delivered again and stored once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest
from brokerutil import (
    AgentThread,
    Collector,
    close_connections_named,
    connect,
    queue_counts,
    temp_vhost,
    tracing_on,
    url_for,
    wait_until,
)
from test_faults_store import counts

from busdoc.sniffer.agent import FirehoseAgent

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _agent(db: Path, vhost: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    return subprocess.Popen(
        [sys.executable, "-m", "busdoc", "capture", "firehose", "-q", "--url", url_for(vhost),
         "--db", str(db), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _publish(vhost: str, n: int, tag: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url_for(vhost)))
    ch = conn.channel()
    ch.confirm_delivery()
    for i in range(n):
        ch.basic_publish("amq.topic", "faults.kill", b'{"n": %d, "tag": "%s"}' % (i, tag.encode()))
    conn.close()


def _own_queue_up(vhost: str) -> bool:
    return any(q.startswith("busdoc.") for q in queue_counts(vhost))


def test_kill_9_of_the_agent_leaves_a_whole_store_that_the_next_run_appends_to(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    with temp_vhost("busdoc-kill") as vhost:
        agent = _agent(db, vhost, "--duration", "120")
        try:
            assert wait_until(lambda: _own_queue_up(vhost), 30)
            stored = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not stored:
                _publish(vhost, 200, "first")
                try:
                    stored = counts(db)["messages"]  # type: ignore[assignment]
                except Exception:
                    stored = 0
            _publish(vhost, 200, "in-flight")  # still unflushed when the kill comes
            agent.send_signal(signal.SIGKILL)
        finally:
            agent.wait(timeout=30)
        assert agent.returncode == -signal.SIGKILL
        assert stored > 0

        after_kill = counts(db)
        assert after_kill["integrity"] == "ok"
        assert after_kill["runs"] == [("running",)]
        assert after_kill["orphans"] == 0 and after_kill["short_bodies"] == 0

        second = _agent(db, vhost, "--duration", "6")
        try:
            assert wait_until(lambda: len([q for q in queue_counts(vhost)
                                           if q.startswith("busdoc.")]) == 1, 30)
            _publish(vhost, 5, "second")
            _out, err = second.communicate(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        assert second.returncode == 0, err

    final = counts(db)
    assert final["integrity"] == "ok"
    assert final["orphans"] == final["short_bodies"] == final["duplicates"] == 0
    assert final["runs"] == [("running",), ("complete",)]
    assert final["messages"] == after_kill["messages"] + 5  # type: ignore[operator]


def test_a_connection_lost_right_after_a_commit_does_not_store_the_batch_twice() -> None:
    """The loss is noticed by the depth poll between the sink and the ack.

    The stored batch was then still in the tap's pending list, and went to the sink a
    second time as received-but-unstored orphans.
    """
    with temp_vhost("busdoc-lost-after-commit") as vhost:
        collector = Collector()
        closed: list[int] = []

        def sink(records: list[object]) -> None:
            collector(records)
            if collector.observations() and not closed:
                closed.append(close_connections_named(vhost, "busdoc firehose agent"))

        # depth_interval=0: the agent polls its queue right after every commit.
        agent = FirehoseAgent([url_for(vhost)], [], sink, depth_interval=0.0)
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)
        conn = connect(vhost)
        conn.channel().basic_publish("amq.topic", "one", b"one")
        assert wait_until(lambda: closed == [1] and agent.gaps != [], 30)
        runner.wait_capturing(vhost)
        conn.channel().basic_publish("amq.topic", "two", b"two")
        assert wait_until(lambda: len(collector.observations()) >= 2, 30)
        conn.close()
        agent.stop()
        runner.join()

    assert [o.body for o in collector.observations()] == [b"one", b"two"]
    assert [g.reason for g in agent.gaps] == ["disconnected"]


def test_a_kept_queue_takes_back_what_a_lost_connection_left_unstored() -> None:
    """Received but not yet stored when the connection goes: the broker requeues it in
    the kept queue and delivers it again, so it is stored once, not also as an orphan."""
    queue = "busdoc.faults.kept-lost"
    with temp_vhost("busdoc-kept-lost") as vhost:
        collector = Collector()
        # batch_seconds: what arrives stays unstored long enough to cut the connection.
        agent = FirehoseAgent([url_for(vhost)], [], collector, queue=queue,
                              batch_seconds=4.0, batch_size=1000)
        runner = AgentThread(agent).start()
        runner.wait_capturing(vhost)
        assert agent.queue_names == [queue]
        conn = connect(vhost)
        for body in (b"a", b"b", b"c"):
            conn.channel().basic_publish("amq.topic", "kept", body)
        assert wait_until(lambda: agent.status().pending == 3, 10)
        assert close_connections_named(vhost, "busdoc firehose agent") == 1
        assert wait_until(lambda: agent.gaps != [], 10)
        assert agent.total == 0
        runner.wait_capturing(vhost)
        assert wait_until(lambda: agent.total == 3, 30)
        conn.channel().basic_publish("amq.topic", "kept", b"d")
        assert wait_until(lambda: agent.total == 4, 30)
        conn.close()
        agent.stop()
        runner.join()

        assert agent.queue_names == [queue]
        assert queue_counts(vhost).get(queue) == (0, 0)  # kept after the agent, empty
        assert tracing_on(vhost)  # the kept queue still listens

    observations = collector.observations()
    assert [o.body for o in observations] == [b"a", b"b", b"c", b"d"]
    assert [o.redelivered for o in observations] == [False] * 4
