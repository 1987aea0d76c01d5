"""Helpers for tests that use the real local RabbitMQ (127.0.0.1:5672, guest/guest).

Each test gets its own vhost, created with rabbitmqctl and deleted after; tracing is
switched off before the vhost goes, because RabbitMQ remembers tracing per vhost *name*
even across delete and re-create.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika

HOST = "127.0.0.1"
PORT = 5672


def rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


MANAGEMENT = f"http://{HOST}:15672/api"


def _http(verb: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(MANAGEMENT + path, data=data, method=verb)
    request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def _management_up() -> bool:
    try:
        _http("GET", "/overview")
    except OSError:
        return False
    return True


USE_HTTP = _management_up()
"""The management API answers in milliseconds, rabbitmqctl in about a second."""


def url_for(vhost: str, user: str = "guest", password: str = "guest") -> str:
    return f"amqp://{user}:{password}@{HOST}:{PORT}/{urllib.parse.quote(vhost, safe='')}"


def connect(vhost: str, name: str = "test") -> pika.BlockingConnection:
    params = pika.URLParameters(url_for(vhost))
    params.client_properties = {"connection_name": name}
    return pika.BlockingConnection(params)


@contextmanager
def temp_vhost(prefix: str = "busdoc-test") -> Iterator[str]:
    vhost = f"{prefix}-{secrets.token_hex(4)}"
    quoted = urllib.parse.quote(vhost, safe="")
    if USE_HTTP:
        _http("PUT", f"/vhosts/{quoted}", {})
        _http("PUT", f"/permissions/{quoted}/guest",
              {"configure": ".*", "write": ".*", "read": ".*"})
    else:
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield vhost
    finally:
        if USE_HTTP:
            _http("PUT", f"/vhosts/{quoted}", {"tracing": False})
            _http("DELETE", f"/vhosts/{quoted}")
        else:
            rabbitmqctl("trace_off", "-p", vhost)
            rabbitmqctl("delete_vhost", vhost)


def tracing_on(vhost: str) -> bool:
    if USE_HTTP:
        return bool(_http("GET", f"/vhosts/{urllib.parse.quote(vhost, safe='')}")["tracing"])
    rows = json.loads(rabbitmqctl("list_vhosts", "name", "tracing", "--formatter", "json"))
    return any(r["name"] == vhost and r["tracing"] for r in rows)


def queue_counts(vhost: str) -> dict[str, tuple[int, int]]:
    """Queue name -> (ready, unacknowledged), straight from the queue processes."""
    out = rabbitmqctl(
        "list_queues", "-p", vhost, "name", "messages_ready", "messages_unacknowledged",
        "--formatter", "json",
    )
    rows = json.loads(out) if out.strip() else []
    return {r["name"]: (r["messages_ready"], r["messages_unacknowledged"]) for r in rows}


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@dataclass
class AgentThread:
    """Runs ``agent.run()`` on a thread and keeps its outcome."""

    agent: Any
    result: Any = None
    error: BaseException | None = None
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.result = self.agent.run()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            self.error = e

    def start(self) -> AgentThread:
        self.thread.start()
        return self

    def wait_capturing(self, vhost: str, timeout: float = 20.0) -> None:
        """Return once every tap is consuming (its queue bound, tracing on)."""
        ok = wait_until(
            lambda: self.error is not None
            or self.agent.status().connected == len(self.agent.taps),
            timeout,
        )
        if self.error is not None:
            raise self.error
        assert ok, "agent did not start capturing"

    def join(self, timeout: float = 30.0) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "agent did not stop"
        if self.error is not None:
            raise self.error
        return self.result


class Collector:
    """A sink that keeps every batch (thread-safe enough: one agent thread writes)."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def __call__(self, records: list[Any]) -> None:
        self.batches.append(list(records))

    @property
    def records(self) -> list[Any]:
        return [r for batch in self.batches for r in batch]

    def observations(self, kind: str | None = None) -> list[Any]:
        from busdoc.sniffer.records import Observation

        return [
            r for r in self.records
            if isinstance(r, Observation) and (kind is None or r.kind == kind)
        ]



def close_connections_named(vhost: str, name: str) -> int:
    """Force-close (as an operator would) the connections in ``vhost`` with that name."""
    out = rabbitmqctl("list_connections", "pid", "vhost", "client_properties")
    closed = 0
    for line in out.splitlines()[1:]:
        pid, conn_vhost, props = (line.split("\t", 2) + ["", ""])[:3]
        if conn_vhost == vhost and f'{{"connection_name","{name}"}}' in props:
            rabbitmqctl("close_connection", pid, "closed by the test")
            closed += 1
    return closed


PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


@contextmanager
def temp_postgres_db() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped after; yields its URL."""
    import psycopg

    name = f"busdoc_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def temp_user(
    vhost: str, password: str, *, tags: str = "", perms: tuple[str, str, str] = (".*", ".*", ".*")
) -> Iterator[str]:
    """A broker user with ``perms`` (configure, write, read) on ``vhost``, deleted after."""
    user = f"busdoc-user-{secrets.token_hex(3)}"
    if USE_HTTP:
        _http("PUT", f"/users/{user}", {"password": password, "tags": tags})
    else:
        rabbitmqctl("add_user", user, password)
    try:
        if USE_HTTP:
            configure, write, read = perms
            _http("PUT", f"/permissions/{urllib.parse.quote(vhost, safe='')}/{user}",
                  {"configure": configure, "write": write, "read": read})
        else:
            if tags:
                rabbitmqctl("set_user_tags", user, tags)
            rabbitmqctl("set_permissions", "-p", vhost, user, *perms)
        yield user
    finally:
        if USE_HTTP:
            _http("DELETE", f"/users/{user}")
        else:
            rabbitmqctl("delete_user", user)
