"""The live commands end to end: real broker, real store, the real ``busdoc`` process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pika
import pytest
from brokerutil import (
    _http,
    connect,
    temp_postgres_db,
    temp_user,
    temp_vhost,
    tracing_on,
    url_for,
)
from conftest import CAPTURES

from busdoc.storage.store import open_store

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def run_in_process(*args: str) -> Any:
    """The CLI in this process (typer's runner): fast, for commands that need no signals."""
    from typer.testing import CliRunner

    from busdoc.cli import app

    return CliRunner().invoke(app, list(args))


def busdoc(*args: str, env: dict[str, str] | None = None,
           timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "busdoc", *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})}, check=False,
    )


class Agent:
    """``busdoc capture firehose`` as a child process; ``ready()`` waits until it captures."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "busdoc", "capture", "firehose", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
        )
        self.err_lines: list[str] = []

    def ready(self) -> None:
        assert self.proc.stderr is not None
        assert "--quiet" not in self.proc.args, "a quiet agent says nothing to wait for"
        for line in self.proc.stderr:
            self.err_lines.append(line)
            if "capturing; tracing" in line:
                return
        raise AssertionError("agent ended before capturing: " + "".join(self.err_lines))

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, "".join(self.err_lines) + err


def publish(vhost: str, items: list[tuple[str, str, bytes]]) -> None:
    conn = connect(vhost, "publisher")
    ch = conn.channel()
    ch.confirm_delivery()
    for exchange, key, body in items:
        ch.basic_publish(exchange, key, body, pika.BasicProperties(content_type="application/json"))
    conn.close()


def test_firehose_stores_messages_and_gaps_in_one_run_and_restores_tracing(tmp_path: Path) -> None:
    db = str(tmp_path / "fh.db")
    with temp_vhost() as vhost:
        agent = Agent("--url", url_for(vhost), "--db", db, "--max-messages", "3",
                      "--duration", "60")
        agent.ready()
        publish(vhost, [("amq.topic", f"k{i}", b'{"i": %d}' % i) for i in range(3)])
        code, out, err = agent.finish()
        assert not tracing_on(vhost)

    assert code == 0, err
    assert "3 trace messages into run" in out
    assert f"tracing {vhost}: management" in err or f"tracing {vhost}: rabbitmqctl" in err
    store = open_store(db)
    assert [m.body for m in store.iter_messages()] == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}']
    (run,) = store.runs()
    assert run.kind == "firehose" and run.status == "complete"
    assert run.stats["gaps"] == [] and run.stats["total"] == 3
    assert run.stats["tracing"][0]["method"] in ("management", "rabbitmqctl")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stores_what_was_received_and_exits_zero(tmp_path: Path, signum: int) -> None:
    db = str(tmp_path / "fh.db")
    with temp_vhost() as vhost:
        agent = Agent("--url", url_for(vhost), "--db", db, "--duration", "90")
        agent.ready()
        publish(vhost, [("amq.topic", "k", b"one"), ("amq.topic", "k", b"two")])
        store = open_store(db)
        from brokerutil import wait_until

        wait_until(lambda: store.stats()["messages"] == 2, 20)
        agent.proc.send_signal(signum)
        code, out, err = agent.finish()
        assert not tracing_on(vhost)

    assert code == 0, err
    assert [m.body for m in store.iter_messages()] == [b"one", b"two"]
    assert store.runs()[0].status == "complete"


@pytest.mark.slow
@pytest.mark.slow
def test_lost_connection_is_a_gap_saved_in_the_run(tmp_path: Path) -> None:
    from brokerutil import close_connections_named, queue_counts, wait_until

    db = str(tmp_path / "fh.db")
    with temp_vhost() as vhost:
        agent = Agent("--url", url_for(vhost), "--db", db, "--max-messages", "1",
                      "--duration", "90")
        agent.ready()
        assert close_connections_named(vhost, "busdoc firehose agent") == 1
        assert wait_until(
            lambda: any(q.endswith(".r1") for q in queue_counts(vhost)), 30
        ), "agent did not come back"
        publish(vhost, [("amq.topic", "k", b"after")])
        code, out, err = agent.finish()

    assert code == 0, err
    assert "1 gap" in out
    (run,) = open_store(db).runs()
    (gap,) = run.stats["gaps"]
    assert gap["reason"] == "disconnected" and gap["vhost"] == vhost
    assert gap["start"] <= gap["end"] and "guest:***@" in gap["url"]
    assert [m.body for m in open_store(db).iter_messages()] == [b"after"]


def test_password_never_reaches_output_logs_or_store(tmp_path: Path) -> None:
    secret = "Pw-" + os.urandom(6).hex()
    db = tmp_path / "fh.db"
    log = tmp_path / "agent.log"
    with temp_vhost() as vhost, temp_user(vhost, secret, tags="administrator") as user:
        url = url_for(vhost, user=user, password=secret)
        url_file = tmp_path / "urls"
        url_file.write_text(f"# the broker\n{url}\n")
        agent = Agent("--url-file", str(url_file), "--db", str(db), "--max-messages", "1",
                      "--duration", "60", "--log-file", str(log), "--log-level", "debug")
        agent.ready()
        publish(vhost, [("amq.topic", "k", b"{}")])
        code, out, err = agent.finish()
        bad = busdoc("capture", "firehose", "--url", url.replace(secret, secret + "x"),
                     "--db", str(db), "--duration", "1")
        doc = busdoc("doctor", "--url", url, "--vhost", vhost, "--db", str(db))

    assert code == 0, err
    assert bad.returncode == 2 and "refused the credentials" in bad.stderr
    texts = [out, err, log.read_text(), bad.stdout, bad.stderr, doc.stdout, doc.stderr]
    assert all(secret not in t for t in texts)
    assert f"{user}:***@" in log.read_text() or "capturing" in log.read_text()
    con = sqlite3.connect(db)
    dump = "\n".join(con.iterdump())
    assert secret not in dump and user in dump


def test_url_comes_from_the_environment(tmp_path: Path) -> None:
    with temp_vhost() as vhost:
        agent = Agent("--db", str(tmp_path / "fh.db"), "--max-messages", "1", "--duration", "60",
                      env={"BUSDOC_AMQP_URL": url_for(vhost)})
        agent.ready()
        publish(vhost, [("amq.topic", "k", b"env")])
        code, out, err = agent.finish()

    assert code == 0, err
    assert "1 trace messages" in out


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (url_for("/", password="wrong-pw"), "refused the credentials of user 'guest'"),
        ("amqp://guest:guest@127.0.0.1:1/%2F", "cannot reach RabbitMQ at amqp://guest:***@"),
        (url_for("busdoc-no-such-vhost"), "busdoc-no-such-vhost"),
    ],
    ids=["wrong-credentials", "broker-down", "missing-vhost"],
)
def test_firehose_failures_are_one_line_and_exit_2(tmp_path: Path, url: str, expected: str) -> None:
    done = busdoc("capture", "firehose", "--url", url, "--db", str(tmp_path / "x.db"),
                  "--duration", "5", "--quiet")

    assert done.returncode == 2
    lines = [x for x in done.stderr.splitlines() if x.startswith("busdoc: error")]
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr and "wrong-pw" not in done.stderr


@pytest.mark.slow
def test_user_who_may_not_switch_tracing_is_one_line(tmp_path: Path) -> None:
    with temp_vhost() as vhost, temp_user(vhost, "monitorpw", tags="monitoring") as user:
        done = busdoc("capture", "firehose", "--url", url_for(vhost, user, "monitorpw"),
                      "--tracing", "management", "--db", str(tmp_path / "x.db"),
                      "--duration", "5")
        assert not tracing_on(vhost)

    assert done.returncode == 2
    assert "cannot switch tracing" in done.stderr and "--tracing=assume" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.postgres
def test_unwritable_store_is_one_line_before_touching_the_broker() -> None:
    import psycopg

    role = f"busdoc_ro_{os.urandom(3).hex()}"
    with temp_postgres_db() as url:
        open_store(url).close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN")
            conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        try:
            with temp_vhost() as vhost:
                done = busdoc("capture", "firehose", "--url", url_for(vhost), "--db",
                              url.replace("postgres@", f"{role}@"), "--duration", "5")
                touched = tracing_on(vhost)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")

    assert done.returncode == 2, done.stderr
    assert "busdoc: error: cannot start a capture run" in done.stderr
    assert "permission denied" in done.stderr and "Traceback" not in done.stderr
    assert not touched and "capturing" not in done.stderr


def test_store_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = busdoc("capture", "firehose", "--db", str(tmp_path / "file" / "x.db"),
                  "--duration", "5")

    assert done.returncode == 2
    assert done.stderr.startswith("busdoc: error: ") and "does not exist" in done.stderr
    assert done.stderr.count("\n") == 1


def test_filters_and_sampling_keep_metadata_and_drop_bodies(tmp_path: Path) -> None:
    db = str(tmp_path / "fh.db")
    call = b'{"oslo.version": "2.0", "oslo.message": "{\\"method\\": \\"ping\\", \\"n\\": %d}"}'
    with temp_vhost() as vhost:
        agent = Agent("--url", url_for(vhost), "--db", db, "--max-messages", "5",
                      "--duration", "60", "--include-exchange", "amq.t*",
                      "--exclude-routing-key", "noise.*", "--sample", "2")
        agent.ready()
        publish(vhost, [
            ("amq.topic", "compute", call % 1),
            ("amq.topic", "noise.x", b"dropped"),
            ("amq.direct", "compute", b"other exchange"),
            ("amq.topic", "compute", call % 2),
            ("amq.topic", "compute", call % 3),
        ])
        code, out, err = agent.finish()

    assert code == 0, err
    assert "2 observations filtered out" in out and "1 bodies sampled out" in out
    messages = list(open_store(db).iter_messages())
    assert [m.routing_key for m in messages] == ["compute"] * 3
    assert [m.body for m in messages[:2]] == [call % 1, call % 2]
    third = messages[2]
    assert third.body == b"" and third.truncated and third.body_size == len(call % 3)


def test_tracing_log_import_is_idempotent(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    log = str(CAPTURES / "tracing_log_oslo.log")

    first = run_in_process("capture", "tracing-log", log, "--db", db)
    again = run_in_process("capture", "tracing-log", log, "--db", db)

    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "4 observations from 1 files"
    assert "already imported" in again.stdout
    assert open_store(db).stats()["messages"] == 2


def test_tracing_log_missing_file_is_one_line(tmp_path: Path) -> None:
    done = busdoc("capture", "tracing-log", str(tmp_path / "nope.log"), "--db",
                  str(tmp_path / "t.db"))

    assert done.returncode == 2 and "no such file" in done.stderr


@pytest.mark.slow
def test_doctor_reports_a_healthy_setup_and_fixes_tracing_left_on(tmp_path: Path) -> None:
    db = str(tmp_path / "d.db")
    with temp_vhost() as vhost:
        healthy = busdoc("doctor", "--url", url_for(vhost), "--vhost", vhost, "--db", db,
                         "--json")
        quoted = vhost  # left on by an agent killed with kill -9: nothing bound
        _http("PUT", f"/vhosts/{quoted}", {"tracing": True})
        found = busdoc("doctor", "--url", url_for(vhost), "--vhost", vhost, "--db", db)
        still_on = tracing_on(vhost)
        fixed = busdoc("doctor", "--url", url_for(vhost), "--vhost", vhost, "--db", db, "--fix")
        after = tracing_on(vhost)

    assert healthy.returncode == 0, healthy.stdout
    report = json.loads(healthy.stdout)
    names = {c["name"]: c["status"] for c in report["checks"]}
    assert names == {"broker": "ok", "tracing switch": "ok", f"vhost {vhost}": "ok",
                     f"trace queue in {vhost}": "ok", "store": "ok"}
    assert found.returncode == 0 and "WARN vhost" in found.stdout and "--fix" in found.stdout
    assert still_on and not after
    assert "turned off" in fixed.stdout


@pytest.mark.slow
def test_doctor_fails_on_wrong_credentials_and_bound_permissions(tmp_path: Path) -> None:
    with temp_vhost() as vhost, temp_user(vhost, "pw", perms=("^$", "^$", "^$")) as user:
        done = busdoc("doctor", "--url", url_for(vhost, user, "pw"), "--vhost", vhost,
                      "--tracing", "assume", "--db", str(tmp_path / "d.db"))
    wrong = busdoc("doctor", "--url", url_for("/", password="nope"), "--db",
                   str(tmp_path / "d.db"))

    assert done.returncode == 1
    assert f"FAIL trace queue in {vhost}" in done.stdout and "ACCESS_REFUSED" in done.stdout
    assert wrong.returncode == 1 and "refused the credentials" in wrong.stdout


def test_prune_cli_deletes_old_messages(tmp_path: Path) -> None:
    from busdoc.errors import InputError

    db = str(tmp_path / "t.db")
    run_in_process("capture", "tracing-log", str(CAPTURES / "tracing_log_oslo.log"), "--db", db)

    keep = run_in_process("prune", "--older-than", "3650d", "--db", db)
    gone = run_in_process("prune", "--older-than", "1s", "--db", db)
    bad = run_in_process("prune", "--older-than", "soon", "--db", db)

    assert keep.exit_code == 0 and keep.stdout.startswith("deleted 0 messages")
    assert gone.exit_code == 0 and gone.stdout.startswith("deleted 2 messages and 4 ")
    assert isinstance(bad.exception, InputError) and "cannot read age 'soon'" in str(bad.exception)


def test_iface_command_runs_for_a_duration_and_records_a_run(tmp_path: Path) -> None:
    db = str(tmp_path / "i.db")
    done = busdoc("capture", "iface", "lo", "--duration", "1", "--db", db)

    assert done.returncode == 0, done.stderr
    assert "capturing on lo (tcp port 5672)" in done.stderr
    (run,) = open_store(db).runs()
    assert run.kind == "iface" and run.status == "complete"


def test_live_commands_have_help() -> None:
    for args in (["capture", "firehose"], ["capture", "iface"], ["capture", "tracing-log"],
                 ["doctor"], ["prune"]):
        done = run_in_process(*args, "--help")
        assert done.exit_code == 0 and "Usage:" in done.stdout


# -- URL and TLS resolution (no broker needed) ------------------------------------------------


def test_urls_come_from_options_then_file_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from busdoc.commands.live import DEFAULT_AMQP_URL, resolve_urls

    f = tmp_path / "urls"
    f.write_text("# node 2\n\namqp://u:p@rabbit2/\n  amqp://u:p@rabbit3/  \n")
    monkeypatch.setenv("BUSDOC_AMQP_URL", "amqp://env@rabbit/")

    assert resolve_urls(["amqp://a@r1/"], f) == [
        "amqp://a@r1/", "amqp://u:p@rabbit2/", "amqp://u:p@rabbit3/"]
    assert resolve_urls(None, None) == ["amqp://env@rabbit/"]
    monkeypatch.delenv("BUSDOC_AMQP_URL")
    assert resolve_urls(None, None) == [DEFAULT_AMQP_URL]


def test_unreadable_or_empty_url_file_is_an_input_error(tmp_path: Path) -> None:
    from busdoc.commands.live import resolve_urls
    from busdoc.errors import InputError

    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(InputError, match="holds no URL"):
        resolve_urls(None, empty)
    with pytest.raises(InputError, match="cannot read --url-file"):
        resolve_urls(None, tmp_path / "missing")


def test_tls_options_for_amqps_urls(tmp_path: Path) -> None:
    import ssl

    from busdoc.commands.live import tls_options
    from busdoc.errors import InputError

    ca = Path(ssl.get_default_verify_paths().openssl_cafile)
    assert tls_options(["amqp://h/"], None, None, None) is None
    options = tls_options(["amqps://u:p@rabbit.example:5671/"], ca if ca.exists() else None,
                          None, None)
    assert options.server_hostname == "rabbit.example"
    assert options.context.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(InputError, match="need amqps://"):
        tls_options(["amqp://h/"], ca, None, None)
    with pytest.raises(InputError, match="--cert and --key go together"):
        tls_options(["amqps://h/"], None, tmp_path / "c.pem", None)
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(InputError, match="cannot load TLS files"):
        tls_options(["amqps://h/"], bogus, None, None)


def test_doctor_says_the_broker_is_down_and_exits_1(tmp_path: Path) -> None:
    done = run_in_process("doctor", "--url", "amqp://guest:s3cr3t@127.0.0.1:1/",
                          "--db", str(tmp_path / "d.db"), "--json")

    assert done.exit_code == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False
    broker, store = report["checks"]
    assert broker["status"] == "fail" and broker["detail"].endswith("Connection refused")
    assert store["status"] == "ok"
    assert "s3cr3t" not in done.stdout


def test_gap_lines_name_run_reason_vhost_and_span() -> None:
    from busdoc.commands.live import gap_lines

    class Run:
        id = 7
        stats = {"gaps": [{"url": "amqp://u:***@h/", "vhost": "nova", "reason": "queue_full",
                           "start": 1767225600.0, "end": 1767225660.0},
                          {"url": "amqp://u:***@h/", "vhost": "nova", "reason": "tracing_off",
                           "start": 1767225600.0, "end": None}]}

    class Other:
        id = 8
        stats: dict[str, Any] = {}

    assert gap_lines([Run(), Other()]) == [
        "run 7: gap (trace queue full) in vhost nova on amqp://u:***@h/ from "
        "2026-01-01 00:00:00Z to 2026-01-01 00:01:00Z: messages may be missing",
        "run 7: gap (tracing was off) in vhost nova on amqp://u:***@h/ from "
        "2026-01-01 00:00:00Z to ?: messages may be missing",
    ]


def test_least_privilege_user_captures_with_tracing_assume(tmp_path: Path) -> None:
    """The permissions docs/agent.md gives for a service user are enough, and no more."""
    db = str(tmp_path / "fh.db")
    perms = (r"^busdoc\.", r"^busdoc\.", r"^(busdoc\..*|amq\.rabbitmq\.trace)$")
    with temp_vhost() as vhost, temp_user(vhost, "leastpw", perms=perms) as user:
        _http("PUT", f"/vhosts/{vhost}", {"tracing": True})  # the operator's job
        agent = Agent("--url", url_for(vhost, user, "leastpw"), "--tracing", "assume",
                      "--db", db, "--max-messages", "1", "--duration", "60")
        agent.ready()
        publish(vhost, [("amq.topic", "k", b"least")])
        code, out, err = agent.finish()
        still_on = tracing_on(vhost)

    assert code == 0, err
    assert f"tracing {vhost}: assume" in err
    assert "0 gaps" in out  # the depth polls (passive declares) were allowed too
    assert still_on  # assume never switches tracing
    assert [m.body for m in open_store(db).iter_messages()] == [b"least"]
