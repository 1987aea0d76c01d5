"""Two agents (one per "node", here one per vhost) write one PostgreSQL store at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pika
import pytest
from brokerutil import connect, temp_postgres_db, temp_vhost, url_for

from busdoc.storage.store import open_store

pytestmark = [
    pytest.mark.broker, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180),
]

N = 300


def oslo_call(method: str, i: int) -> bytes:
    inner = {"method": method, "args": {"n": i, "host": f"node-{i % 7}"},
             "_msg_id": f"{method}-{i}", "version": "5.0"}
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


def start_agent(url: str, db: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "busdoc", "capture", "firehose", "--url", url, "--db", db,
         "--max-messages", str(2 * N), "--duration", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_capturing(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "capturing; tracing" in line:
            return
    raise AssertionError("agent ended before capturing")


def traffic(vhost: str, method: str) -> None:
    """N RPC casts to a topic exchange, each delivered to one consumer queue."""
    conn = connect(vhost, f"{method}-service")
    ch = conn.channel()
    ch.confirm_delivery()
    ch.exchange_declare("nova", "topic")
    ch.queue_declare("compute")
    ch.queue_bind("compute", "nova", "compute")
    for i in range(N):
        ch.basic_publish("nova", "compute", oslo_call(method, i),
                         pika.BasicProperties(content_type="application/json"))
    got = 0
    for _method, _props, _body in ch.consume("compute", auto_ack=True, inactivity_timeout=10):
        if _method is None:
            break
        got += 1
        if got == N:
            break
    ch.cancel()
    conn.close()
    assert got == N


def test_two_agents_into_one_postgresql_no_conflict_no_duplicates() -> None:
    with temp_postgres_db() as db, temp_vhost() as va, temp_vhost() as vb:
        # A new, empty database: both agents create the schema at the same instant.
        agents = [start_agent(url_for(va), db), start_agent(url_for(vb), db)]
        for proc in agents:
            wait_capturing(proc)
        threads = [threading.Thread(target=traffic, args=(va, "resize")),
                   threading.Thread(target=traffic, args=(vb, "reboot"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        results = [proc.communicate(timeout=90) for proc in agents]
        codes = [proc.returncode for proc in agents]

        store = open_store(db)
        try:
            messages = list(store.iter_messages())
            runs = store.runs()
        finally:
            store.close()
        infer = subprocess.run(
            [sys.executable, "-m", "busdoc", "infer", "--db", db, "--format", "json"],
            capture_output=True, text=True, timeout=120, env=dict(os.environ), check=False,
        )

    assert codes == [0, 0], results
    assert len(runs) == 2 and {r.status for r in runs} == {"complete"}
    assert len(messages) == 2 * N
    assert len({m.id for m in messages}) == 2 * N
    by_vhost = {va: [], vb: []}  # type: dict[str, list[bytes]]
    for m in messages:
        by_vhost[m.vhost].append(m.body)  # type: ignore[index]
        assert sorted(o.kind for o in m.observations) == ["deliver", "publish"]
    assert sorted(by_vhost[va]) == sorted(oslo_call("resize", i) for i in range(N))
    assert sorted(by_vhost[vb]) == sorted(oslo_call("reboot", i) for i in range(N))
    assert infer.returncode == 0, infer.stderr
    assert '"resize"' in infer.stdout and '"reboot"' in infer.stdout
