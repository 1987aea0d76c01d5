"""The store on SQLite and the real PostgreSQL: identity, runs, truncation, errors."""

from __future__ import annotations

import datetime
import decimal
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy import select

from busdoc.errors import StoreError
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation
from busdoc.storage import SCHEMA_VERSION, Store, open_store
from busdoc.storage import schema as schema_module
from busdoc.storage.redact import Redactor

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for this test run, dropped after."""
    name = f"busdoc_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "busdoc.db")
        return
    url = request.getfixturevalue("pg_server")
    yield url
    # Each test starts from an empty database.
    with psycopg.connect(url.replace("postgresql://", "postgresql://", 1)) as conn:
        conn.execute(
            "DROP TABLE IF EXISTS meta, runs, connections, messages, observations, state CASCADE"
        )
        conn.execute("DROP SEQUENCE IF EXISTS messages_id_seq, connections_id_seq")


@pytest.fixture
def store(target: str) -> Iterator[Store]:
    s = open_store(target)
    yield s
    s.close()


def ob(kind: str = "publish", body: bytes = b'{"m": 1}', **kw: Any) -> Observation:
    fields: dict[str, Any] = {
        "time": 100.0,
        "source": "pcap",
        "connection": "10.0.0.5:41234->10.0.0.9:5672",
        "channel": 1,
        "kind": kind,
        "exchange": "nova",
        "routing_key": "compute.host1",
        "properties": {"content_type": "application/json", "delivery_mode": 2},
        "headers": None,
        "body": body,
        "vhost": "/",
    }
    fields.update(kw)
    return Observation(**fields)


def write(store: Store, records: list[Any], **writer_kw: Any) -> None:
    run = store.begin_run(kind="test", name="t", content_hash=None)
    assert run is not None
    with store.writer(run, redactor=Redactor(), **writer_kw) as w:
        for r in records:
            w.add(r)
    store.finish_run(run, stats={})


def kinds(store: Store) -> list[list[tuple[str, str | None]]]:
    return [[(o.kind, o.queue) for o in m.observations] for m in store.iter_messages()]


# -- message identity --------------------------------------------------------------------


def test_publish_routed_to_three_queues_is_one_message_with_three_deliveries(store: Store) -> None:
    write(store, [ob()] + [ob("deliver", queue=q, time=101.0) for q in ("a", "b", "c")])
    assert kinds(store) == [
        [("publish", None), ("deliver", "a"), ("deliver", "b"), ("deliver", "c")]
    ]
    assert store.stats()["messages"] == 1


def test_identical_publishes_are_separate_messages_each_taking_one_delivery(store: Store) -> None:
    write(store, [ob(), ob(), ob("deliver", queue="q"), ob("deliver", queue="q")])
    assert kinds(store) == [[("publish", None), ("deliver", "q")]] * 2


def test_delivery_takes_the_earliest_publish_not_yet_delivered_from_its_queue(store: Store) -> None:
    write(
        store,
        [
            ob(time=1),
            ob(time=2),
            ob("deliver", queue="a"),
            ob("deliver", queue="b"),
            ob("deliver", queue="a"),
        ],
    )
    assert kinds(store) == [
        [("publish", None), ("deliver", "a"), ("deliver", "b")],
        [("publish", None), ("deliver", "a")],
    ]


def test_redelivery_attaches_to_the_message_already_delivered_from_that_queue(store: Store) -> None:
    write(
        store,
        [ob(), ob(), ob("deliver", queue="q"), ob("deliver", queue="q", redelivered=True)],
    )
    messages = list(store.iter_messages())
    assert [(o.kind, o.redelivered) for o in messages[0].observations] == [
        ("publish", False),
        ("deliver", False),
        ("deliver", True),
    ]
    assert [o.kind for o in messages[1].observations] == ["publish"]


def test_get_ok_matches_like_a_delivery(store: Store) -> None:
    write(store, [ob(), ob("get_ok", queue="q")])
    assert kinds(store) == [[("publish", None), ("get_ok", "q")]]


def test_return_attaches_to_the_matching_publish(store: Store) -> None:
    write(store, [ob(), ob("return", reply_code=312, reply_text="NO_ROUTE")])
    assert kinds(store) == [[("publish", None), ("return", None)]]


def test_delivery_without_publish_is_its_own_message_and_collects_other_queues(
    store: Store,
) -> None:
    write(store, [ob("deliver", queue="a"), ob("deliver", queue="b"), ob("deliver", queue="a")])
    assert kinds(store) == [[("deliver", "a"), ("deliver", "b")], [("deliver", "a")]]


def test_different_body_properties_or_headers_do_not_match(store: Store) -> None:
    write(
        store,
        [
            ob(),
            ob("deliver", queue="q", body=b'{"m": 2}'),
            ob("deliver", queue="q", properties={"content_type": "text/plain"}),
            ob("deliver", queue="q", headers={"x": 1}),
            ob("deliver", queue="q", routing_key="other"),
        ],
    )
    assert [len(m) for m in kinds(store)] == [1, 1, 1, 1, 1]


def test_delivery_in_a_later_batch_and_a_later_run_finds_its_publish(store: Store) -> None:
    write(store, [ob(), *[ob(body=b"%d" % i) for i in range(5)]], batch_size=2)
    write(store, [ob("deliver", queue="q")])
    assert kinds(store)[0] == [("publish", None), ("deliver", "q")]


def test_matching_state_is_bounded_and_forgets_the_oldest(tmp_path: Path) -> None:
    s = open_store(str(tmp_path / "b.db"))
    s._matcher.limit = 3
    write(s, [ob(body=b"%d" % i) for i in range(5)] + [ob("deliver", queue="q", body=b"0")])
    assert s.stats()["messages"] == 6  # the publish of b"0" was forgotten
    s.close()


# -- what a message holds ------------------------------------------------------------------


def test_message_round_trips_properties_headers_and_connection_name(store: Store) -> None:
    headers = {
        "x-bytes": b"\x00\xff",
        "x-decimal": decimal.Decimal("12.50"),
        "x-time": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
        "x-table": {"$bytes": "looks like a tag"},
        "x-list": [1, "a", None],
    }
    write(
        store,
        [
            ConnectionInfo(
                connection="10.0.0.5:41234->10.0.0.9:5672",
                time=99.0,
                client_properties={"connection_name": "nova-compute:123", "product": "py-amqp"},
                user="nova",
            ),
            ConnectionInfo(connection="10.0.0.5:41234->10.0.0.9:5672", time=99.1, vhost="/"),
            ob(headers=headers),
        ],
    )
    (m,) = store.iter_messages()
    assert m.headers == headers
    assert m.properties == {"content_type": "application/json", "delivery_mode": 2}
    assert m.body == b'{"m": 1}'
    assert m.vhost == "/"
    assert m.observations[0].connection_name == "nova-compute:123"
    assert store.stats()["connections"] == 1


def test_connection_announced_after_its_first_message_still_names_it(store: Store) -> None:
    info = ConnectionInfo(
        connection="10.0.0.5:41234->10.0.0.9:5672",
        time=101.0,
        client_properties={"product": "py-amqp"},
    )
    write(store, [ob(), info])
    (m,) = store.iter_messages()
    assert m.observations[0].connection_name == "py-amqp"


def test_body_over_the_limit_is_stored_cut_with_full_size_and_hash(store: Store) -> None:
    import hashlib

    body = b"x" * 1000
    write(store, [ob(body=body), ob(body=b"small")], max_body=100)
    big, small = store.iter_messages()
    assert big.truncated and big.body == body[:100] and big.body_size == 1000
    assert big.body_sha256 == hashlib.sha256(body).hexdigest()
    assert not small.truncated and small.body == b"small"
    assert store.stats()["truncated"] == 1


def test_body_cut_by_the_source_is_marked_truncated(store: Store) -> None:
    write(store, [ob(body=b"abc", body_size=70000)])
    (m,) = store.iter_messages()
    assert m.truncated and m.body_size == 70000


def test_redaction_is_stored_with_the_message(store: Store) -> None:
    write(store, [ob(body=b'{"password": "hunter2"}')])
    (m,) = store.iter_messages()
    assert orjson.loads(m.body) == {"password": "<redacted>"}
    assert [(r.path, r.json_type, r.format, r.length_class) for r in m.redactions] == [
        ("/password", "string", None, "1-7")
    ]
    assert store.stats()["redacted_messages"] == 1


def test_iter_messages_streams_in_id_order_after_an_id(store: Store) -> None:
    write(store, [ob(body=b"%d" % i) for i in range(600)])
    ids = [m.id for m in store.iter_messages()]
    assert ids == sorted(ids) and len(ids) == 600
    assert [m.body for m in store.iter_messages(after_id=ids[597])] == [b"598", b"599"]


def test_notices_are_counted_on_the_run(store: Store) -> None:
    write(
        store, [Notice(code="tcp_gap", message="gap", count=2), Notice(code="tcp_gap", message="g")]
    )
    (run,) = store.runs()
    assert run.skipped == {"tcp_gap": 3}


# -- runs ----------------------------------------------------------------------------------


def test_reimport_of_a_completed_content_hash_adds_nothing(store: Store) -> None:
    run = store.begin_run(kind="pcap", name="a.pcap", content_hash="h" * 64)
    assert run is not None
    with store.writer(run, redactor=Redactor()) as w:
        w.add(ob())
    store.finish_run(run, stats={"bytes": 10})
    assert store.begin_run(kind="pcap", name="a.pcap", content_hash="h" * 64) is None
    (info,) = store.runs()
    assert info.status == "complete"
    assert info.counts["messages"] == 1 and info.counts["publishes"] == 1
    assert info.stats == {"bytes": 10}
    assert info.first_time == info.last_time == 100.0


def test_killed_import_is_deleted_and_started_again(store: Store) -> None:
    run = store.begin_run(kind="pcap", name="a.pcap", content_hash="k" * 64)
    assert run is not None
    with store.writer(run, redactor=Redactor()) as w:
        w.add(ob())
        w.add(ob())
    # No finish_run: the process died here.
    again = store.begin_run(kind="pcap", name="a.pcap", content_hash="k" * 64)
    assert again is not None and again.id != run.id
    assert store.stats()["messages"] == 0 and store.stats()["observations"] == 0
    assert [r.id for r in store.runs()] == [again.id]


def test_flush_makes_rows_visible_to_another_store_object(store: Store, target: str) -> None:
    run = store.begin_run(kind="firehose", name="live", content_hash=None)
    assert run is not None
    w = store.writer(run, redactor=Redactor())
    w.add(ob())
    w.flush()
    other = open_store(target)
    try:
        assert other.stats()["messages"] == 1
    finally:
        other.close()


def test_state_is_stored_and_replaced(store: Store) -> None:
    assert store.get_state("catalog") is None
    store.put_state("catalog", b"\x00one")
    store.put_state("catalog", b"two")
    assert store.get_state("catalog") == b"two"


# -- files, schema and errors ----------------------------------------------------------------


def test_sqlite_file_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "busdoc.db"
    s = open_store(str(path))
    write(s, [ob()])
    for name in ("busdoc.db", "busdoc.db-wal", "busdoc.db-shm"):
        f = tmp_path / name
        if f.exists():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, name
    assert (tmp_path / "busdoc.db-wal").exists()
    s.close()


def test_secrets_never_reach_the_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "busdoc.db"
    s = open_store(str(path))
    inner = orjson.dumps(
        {"_context_auth_token": "TOKEN-7f3a9", "args": {"u": "amqp://a:PW-55c1@h/"}}
    )
    body = orjson.dumps({"oslo.version": "2.0", "oslo.message": inner.decode()})
    write(
        s, [ob(body=body, headers={"x-api-key": "HDR-9d2e"}), ob("deliver", body=body, queue="q")]
    )
    s.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (b"TOKEN-7f3a9", b"PW-55c1", b"HDR-9d2e"):
        assert secret not in raw
    assert b"<redacted>" in raw


def test_default_target_is_busdoc_db_env_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BUSDOC_DB", raising=False)
    open_store().close()
    assert (tmp_path / "busdoc.db").exists()
    monkeypatch.setenv("BUSDOC_DB", str(tmp_path / "env.db"))
    open_store().close()
    assert (tmp_path / "env.db").exists()


def test_newer_schema_version_is_refused(target: str) -> None:
    s = open_store(target)
    with s.engine.begin() as conn:
        schema_module.write_version(conn, SCHEMA_VERSION + 5)
    s.close()
    with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 5} is newer"):
        open_store(target)


def test_older_schema_is_migrated_step_by_step_keeping_data(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = open_store(target)
    write(s, [ob()])
    s.close()
    ran: list[int] = []

    def step(conn: Any) -> None:
        from sqlalchemy import text

        conn.execute(text("CREATE TABLE extra_v2 (x INTEGER)"))
        ran.append(1)

    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema_module.MIGRATIONS, SCHEMA_VERSION, step)
    s = open_store(target)
    try:
        assert s.schema_version == SCHEMA_VERSION + 1 and ran == [1]
        assert s.stats()["messages"] == 1
        from sqlalchemy import inspect

        assert inspect(s.engine).has_table("extra_v2")
    finally:
        with s.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE extra_v2")
        s.close()


def test_version_1_store_keeps_only_length_classes_after_migration(target: str) -> None:
    # A version-1 store: the same tables, redactions as [path, type, exact length].
    s = open_store(target)
    write(s, [ob(body=b'{"password": "Tr0ub4dor&3-busdoc-admin", "n": 1}'), ob(body=b"{}")])
    with s.engine.begin() as conn:
        conn.execute(
            schema_module.messages.update()
            .where(schema_module.messages.c.redactions.is_not(None))
            .values(redactions=orjson.dumps([["/password", "string", 24]]))
        )
        schema_module.write_version(conn, 1)
    s.put_state("catalog.state", b"bounds learnt from exact lengths")
    s.put_state("catalog.last_message_id", b"2")
    s.put_state("doctor.checked", b"1")
    s.close()

    s = open_store(target)
    try:
        assert s.schema_version == SCHEMA_VERSION == 2
        first, second = s.iter_messages()
        assert [(r.path, r.json_type, r.format, r.length_class) for r in first.redactions] == [
            ("/password", "string", None, "16-31")
        ]
        assert second.redactions == ()
        with s.engine.connect() as conn:
            m = schema_module.messages
            raw = conn.execute(select(m.c.redactions).order_by(m.c.id)).scalars().all()
        assert [orjson.loads(r) if r else None for r in raw] == [
            [["/password", "string", None, "16-31"]],
            None,
        ]
        # The inference state learnt exact lengths: gone, rebuilt by the next infer.
        assert s.get_state("catalog.state") is None
        assert s.get_state("catalog.last_message_id") is None
        assert s.get_state("doctor.checked") == b"1"
    finally:
        s.close()


def test_missing_migration_step_is_a_store_error(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(target).close()
    monkeypatch.setattr(schema_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match="no migration"):
        open_store(target)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/nonexistent-dir-zz/busdoc.db", "does not exist"),
        ("/", "is a directory"),
        ("postgresql://u:hunter2@127.0.0.1:1/x", "cannot open store"),
        ("nosuchdb://x/y", "cannot use database URL"),
    ],
)
def test_unusable_targets_are_one_line_store_errors_without_password(
    target: str, message: str
) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(target)
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_url_for_display_masks_the_password() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql://u:hunter2@127.0.0.1:1/x")
    assert "***" in str(info.value)


def test_unwritable_sqlite_file_is_a_store_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes read-only files")
    path = tmp_path / "ro.db"
    open_store(str(path)).close()
    path.chmod(0o400)
    with pytest.raises(StoreError):
        s = open_store(str(path))
        write(s, [ob()])


def test_locked_sqlite_store_is_a_store_error_and_keeps_committed_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from busdoc.storage import store as store_module

    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT", 0.2)
    path = tmp_path / "l.db"
    s = open_store(str(path))
    write(s, [ob()])
    blocker = sqlite3.connect(str(path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="database is locked"):
            write(s, [ob()])
    finally:
        blocker.rollback()
        blocker.close()
    assert s.stats()["messages"] == 1
    s.close()


def test_open_without_create_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store here"):
        open_store(str(tmp_path / "missing.db"), create=False)
    assert not (tmp_path / "missing.db").exists()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcap"
    path.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 200)
    with pytest.raises(StoreError, match="not a database"):
        open_store(str(path))


def test_two_writers_on_one_store_get_distinct_ids(target: str) -> None:
    # Two agents (one per RabbitMQ node) writing one store, flushes interleaved.
    a, b = open_store(target), open_store(target)
    try:
        run_a = a.begin_run(kind="firehose", name="node-a", content_hash=None)
        run_b = b.begin_run(kind="firehose", name="node-b", content_hash=None)
        assert run_a is not None and run_b is not None
        wa = a.writer(run_a, redactor=Redactor())
        wb = b.writer(run_b, redactor=Redactor())
        for i in range(3):
            wa.add(ob(body=b"a%d" % i))
            wa.add(ob("deliver", body=b"a%d" % i, queue="q"))
            wb.add(ob(body=b"b%d" % i))
            wa.flush()
            wb.flush()
        messages = list(a.iter_messages())
        assert sorted(m.body for m in messages) == [b"a0", b"a1", b"a2", b"b0", b"b1", b"b2"]
        assert len({m.id for m in messages}) == 6
        assert all(len(m.observations) == 2 for m in messages if m.body.startswith(b"a"))
    finally:
        a.close()
        b.close()
