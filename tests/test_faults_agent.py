"""Faults of the firehose agent while it writes: kill -9, a full disk, a lost connection.

After a kill -9, what the agent had not flushed is lost with it (its trace queue is
exclusive and dies with the connection), but nothing half-written stays behind, and the
next agent run appends to the same store. A full disk stops the agent with one line; with
a kept queue (``--queue``) nothing it did not store is lost, and the next run stores it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
from test_faults_store import assert_one_line_error, counts, small_disk  # noqa: F401

from busdoc.errors import BrokerError
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


def _publish_bodies(vhost: str, bodies: list[bytes]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url_for(vhost)))
    ch = conn.channel()
    ch.confirm_delivery()
    for body in bodies:
        ch.basic_publish("amq.topic", "faults.disk", body)
    conn.close()


def _stored_bodies(db: Path) -> list[bytes]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [bytes(b) for (b,) in con.execute("SELECT body FROM messages ORDER BY id")]
    finally:
        con.close()


def _run_stats(db: Path, run_id: int) -> dict[str, Any]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (stats,) = con.execute("SELECT stats FROM runs WHERE id = ?", (run_id,)).fetchone()
    finally:
        con.close()
    return dict(json.loads(stats))


def _stored_count(db: Path) -> int:
    try:
        return len(_stored_bodies(db))
    except sqlite3.Error:  # not created yet
        return 0


@pytest.mark.timeout(300)
def test_disk_full_stops_the_agent_with_one_line_and_its_kept_queue_feeds_the_next_run(
    small_disk: Path, tmp_path: Path  # noqa: F811
) -> None:
    # 3,000 distinct bodies of about 1.4 KB: more than the 4 MiB disk holds.
    bodies = [b'{"n": %d, "pad": "%s"}' % (i, secrets.token_hex(700).encode())
              for i in range(3000)]
    queue = "busdoc.faults.kept"
    db = small_disk / "s.db"
    with temp_vhost("busdoc-diskfull") as vhost:
        agent = _agent(db, vhost, "--queue", queue)
        try:
            assert wait_until(lambda: queue in queue_counts(vhost) and tracing_on(vhost), 30)
            _publish_bodies(vhost, bodies[:100])
            assert wait_until(lambda: _stored_count(db) == 100, 30)
            _publish_bodies(vhost, bodies[100:])
            out, err = agent.communicate(timeout=120)
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
        assert_one_line_error(
            subprocess.CompletedProcess(agent.args, agent.returncode, out, err), "disk is full"
        )

        # What was committed is whole, in publish order, each message once.
        after = counts(db)
        assert after["integrity"] == "ok"
        assert after["orphans"] == after["short_bodies"] == after["duplicates"] == 0
        committed = after["messages"]
        assert isinstance(committed, int) and 100 <= committed < len(bodies)
        assert after["observations"] == committed
        assert _stored_bodies(db) == bodies[:committed]
        assert "disk is full" in _run_stats(db, 1)["error"]

        # Nothing it did not commit was acked: all of it waits in the kept queue, and
        # tracing stays on for that queue.
        rest = len(bodies) - committed
        assert wait_until(lambda: queue_counts(vhost).get(queue) == (rest, 0), 30), (
            queue_counts(vhost), rest)
        assert tracing_on(vhost)

        # The store moves to a larger disk; the next run takes up the queue.
        bigger = tmp_path / "bigger"
        bigger.mkdir()
        for part in small_disk.glob("s.db*"):
            shutil.copy2(part, bigger / part.name)
        second = _agent(bigger / "s.db", vhost, "--queue", queue, "--max-messages", str(rest))
        try:
            out, err = second.communicate(timeout=120)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        assert second.returncode == 0, err
        assert f"{rest:,} trace messages" in out
        assert queue_counts(vhost).get(queue) == (0, 0)

    final = counts(bigger / "s.db")
    assert final["integrity"] == "ok"
    assert final["orphans"] == final["short_bodies"] == final["duplicates"] == 0
    assert final["messages"] == final["observations"] == len(bodies)
    assert _stored_bodies(bigger / "s.db") == bodies
    runs = final["runs"]
    assert isinstance(runs, list) and len(runs) == 2 and runs[1] == ("complete",)


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


def test_a_kept_queue_declared_with_another_bound_is_one_line_at_start() -> None:
    with temp_vhost("busdoc-kept-args") as vhost:
        first = FirehoseAgent([url_for(vhost)], [], Collector(), queue="busdoc.kept",
                              max_messages=0)
        first.run()
        assert "busdoc.kept" in queue_counts(vhost)
        other = FirehoseAgent([url_for(vhost)], [], Collector(), queue="busdoc.kept",
                              max_queue_bytes=1 << 20, max_messages=0)
        with pytest.raises(BrokerError) as caught:
            other.run()
    message = str(caught.value)
    assert "\n" not in message
    assert "PRECONDITION_FAILED" in message and "x-max-length-bytes" in message
