"""Passwords in database and AMQP URLs never reach output, logs, errors or the store.

Every case runs the real command line against the real PostgreSQL and RabbitMQ, with a
password that is easy to grep for, and reads everything the command left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest
from brokerutil import (
    queue_counts,
    rabbitmqctl,
    temp_postgres_db,
    temp_vhost,
    url_for,
    wait_until,
)

PG_PASSWORD = "PgS3cret-DoNotLeak"
AMQP_PASSWORD = "AmqpS3cret-DoNotLeak"


def busdoc(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BUSDOC_DB", "BUSDOC_AMQP_URL")}
    return subprocess.run(
        [sys.executable, "-m", "busdoc", *args],
        cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout,
    )


def assert_clean_one_line_error(result: subprocess.CompletedProcess[str], password: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert password not in result.stdout + result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:1/test",  # nothing listens
        f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:5432/busdoc_no_such_db",
        f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:notaport/test",
        f"postgresql+nosuchdriver://postgres:{PG_PASSWORD}@127.0.0.1/test",
    ],
    ids=["refused", "no-database", "bad-port", "unknown-driver"],
)
def test_database_url_password_is_masked_in_errors(url: str, tmp_path: Path) -> None:
    line = assert_clean_one_line_error(busdoc("stats", "--db", url, cwd=tmp_path), PG_PASSWORD)
    assert "postgres" in line  # says which store it could not open


def test_database_url_password_is_masked_in_stats_title(tmp_path: Path) -> None:
    """Trust auth on the test server accepts any password, so this one connects. The
    database is a fresh one: a shared one may hold a store of another schema version."""
    with temp_postgres_db() as url:
        with_password = url.replace("postgres@", f"postgres:{PG_PASSWORD}@", 1)
        result = busdoc("stats", "--db", with_password, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "postgres:***@" in result.stdout
    assert PG_PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "url",
    [f"amqp://guest:{AMQP_PASSWORD}@127.0.0.1:5672/",  # refused credentials
     f"amqp://guest:{AMQP_PASSWORD}@127.0.0.1:1/"],  # nothing listens
    ids=["bad-password", "unreachable"],
)
@pytest.mark.broker
def test_amqp_url_password_is_masked_in_agent_errors_and_logs(url: str, tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    result = busdoc("capture", "firehose", "-q", "--url", url, "--db", "s.db", "--duration", "2",
                    "--log-file", str(log), cwd=tmp_path)
    line = assert_clean_one_line_error(result, AMQP_PASSWORD)
    assert "guest:***@" in line
    if log.exists():
        assert AMQP_PASSWORD not in log.read_text()
    assert AMQP_PASSWORD.encode() not in (tmp_path / "s.db").read_bytes()


@pytest.mark.broker
def test_least_privilege_agent_captures_without_leaking_its_password(tmp_path: Path) -> None:
    """The set-up SECURITY.md recommends: a user allowed only its own queues and the
    trace exchange, tracing switched on by an operator, the agent in ``assume`` mode."""
    user = f"busdoc-agent-{uuid.uuid4().hex[:6]}"
    with temp_vhost("busdoc-sec") as vhost:
        rabbitmqctl("add_user", user, AMQP_PASSWORD)
        try:
            rabbitmqctl("set_permissions", "-p", vhost, user, r"^busdoc\.", r"^busdoc\.",
                        r"^(busdoc\..*|amq\.rabbitmq\.trace)$")
            rabbitmqctl("trace_on", "-p", vhost)
            url_file = tmp_path / "urls"
            url_file.write_text(f"# the agent's broker\n{url_for(vhost, user, AMQP_PASSWORD)}\n")
            url_file.chmod(0o600)
            log = tmp_path / "agent.log"
            env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
            agent = subprocess.Popen(
                [sys.executable, "-m", "busdoc", "capture", "firehose", "-q",
                 "--url-file", str(url_file), "--tracing", "assume", "--db", "s.db",
                 "--duration", "6", "--log-file", str(log), "--log-level", "debug"],
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            )
            try:
                assert wait_until(
                    lambda: any(q.startswith("busdoc.") for q in queue_counts(vhost)), 20)
                conn = pika.BlockingConnection(pika.URLParameters(url_for(vhost)))
                ch = conn.channel()
                ch.confirm_delivery()
                body = json.dumps({"user": "alice", "new_pass": "hunter2-DoNotLeak",
                                   "url": f"rabbit://nova:{AMQP_PASSWORD}@ctl:5672/"})
                for _ in range(3):
                    ch.basic_publish("amq.topic", "users.update", body.encode())
                conn.close()
                out, err = agent.communicate(timeout=60)
            finally:
                if agent.poll() is None:
                    agent.kill()
                    agent.wait()
        finally:
            rabbitmqctl("delete_user", user)

    assert agent.returncode == 0, err
    assert "3 trace messages" in out
    texts = out + err + (log.read_text() if log.exists() else "")
    assert AMQP_PASSWORD not in texts
    db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
    for secret in (AMQP_PASSWORD, "hunter2-DoNotLeak"):
        assert secret.encode() not in db_bytes
    exported = busdoc("export", "--db", "s.db", cwd=tmp_path)
    assert exported.stdout.count("\n") == 3
    assert "alice" in exported.stdout
    for secret in (AMQP_PASSWORD, "hunter2-DoNotLeak"):
        assert secret not in exported.stdout
    from busdoc.storage import open_store

    store = open_store(str(tmp_path / "s.db"), create=False)
    try:
        (run,) = store.runs()
    finally:
        store.close()
    assert f"{user}:***@" in run.name and AMQP_PASSWORD not in run.name

