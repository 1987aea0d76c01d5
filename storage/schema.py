"""Tables of the store, and the migrations that carry an old store forward.

A fresh store is created at the latest version in one go. An existing one records its
version in ``meta`` (``schema_version``) and is upgraded one step at a time by the
functions in ``MIGRATIONS`` (``MIGRATIONS[n]`` takes version n to n + 1), each step in
its own transaction, so old capture databases keep opening. A store written by a newer
busdoc is refused rather than guessed at.

JSON columns (``properties``, ``headers``, ``client_properties``…) hold orjson bytes in
the encoding of ``busdoc.storage.codec``; they are plain text/blob columns rather than
the databases' JSON types, so SQLite and PostgreSQL store the same bytes and inserts pay
no per-row type processing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    bindparam,
    inspect,
    select,
    text,
)

from busdoc.errors import StoreError
from busdoc.storage.codec import decode_redactions, encode_redactions
from busdoc.storage.version import SCHEMA_VERSION

metadata = MetaData()

# SQLite gets INTEGER PRIMARY KEY (the rowid) from Integer; PostgreSQL a bigserial.
_Id = BigInteger().with_variant(Integer(), "sqlite")

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("content_hash", String(64), unique=True),
    Column("status", String(16), nullable=False),
    Column("started", Float, nullable=False),
    Column("finished", Float),
    Column("first_time", Float),
    Column("last_time", Float),
    Column("counts", LargeBinary),
    Column("stats", LargeBinary),
    Column("skipped", LargeBinary),
    sqlite_autoincrement=True,  # a deleted (killed) run's id is never handed out again
)

# Ids of messages and connections are handed out by the writer (see store.py); on
# PostgreSQL they come from these sequences, which SQLite does not have or need.
messages_id_seq = Sequence("messages_id_seq", metadata=metadata)
connections_id_seq = Sequence("connections_id_seq", metadata=metadata)

connections = Table(
    "connections",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=False),
    Column("run_id", _Id, nullable=False),
    Column("key", Text, nullable=False),
    Column("time", Float, nullable=False),
    Column("client_properties", LargeBinary),
    Column("user", Text),
    Column("vhost", Text),
    Column("node", Text),
    Column("connection_name", Text),
    Index("ix_connections_key", "key"),
    Index("ix_connections_run", "run_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=False),
    Column("run_id", _Id, nullable=False),
    Column("vhost", Text),
    Column("exchange", Text, nullable=False),
    Column("routing_key", Text, nullable=False),
    Column("properties", LargeBinary, nullable=False),
    Column("headers", LargeBinary),
    Column("body", LargeBinary, nullable=False),
    Column("body_size", BigInteger, nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("truncated", Boolean, nullable=False),
    Column("redactions", LargeBinary),
    Column("first_seen", Float, nullable=False),
    Index("ix_messages_run", "run_id"),
)

observations = Table(
    "observations",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("message_id", _Id, nullable=False),
    Column("run_id", _Id, nullable=False),
    Column("time", Float, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("connection", Text, nullable=False),
    Column("connection_id", _Id),
    Column("channel", Integer, nullable=False),
    Column("queue", Text),
    Column("redelivered", Boolean, nullable=False),
    Column("consumer_tag", Text),
    Column("delivery_tag", BigInteger),
    Column("reply_code", Integer),
    Column("reply_text", Text),
    Index("ix_observations_message", "message_id"),
    Index("ix_observations_run", "run_id"),
)

state = Table(
    "state",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

Migration = Callable[[Connection], None]

_MIGRATION_CHUNK = 1000


def _redactions_keep_length_classes(conn: Connection) -> None:
    """Version 1 → 2: a redaction keeps the class of the secret's length, not the length.

    Each ``[path, json_type, length]`` row becomes ``[path, json_type, null,
    length_class]`` (the format cannot be told any more: the value is gone). The
    persisted inference state (``catalog.*`` keys) is dropped too: it holds the exact
    lengths of redacted strings as observed bounds, and the next ``infer`` rebuilds it
    from the messages. SQLite overwrites the freed bytes (``secure_delete``); on
    PostgreSQL the old row versions stay in the table files until ``VACUUM``.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    m = messages
    rewrite = (
        m.update()
        .where(m.c.id == bindparam("row_id"))
        .values(redactions=bindparam("rewritten"))
    )
    last = 0
    while True:
        rows = conn.execute(
            select(m.c.id, m.c.redactions)
            .where(m.c.id > last, m.c.redactions.is_not(None))
            .order_by(m.c.id)
            .limit(_MIGRATION_CHUNK)
        ).all()
        if not rows:
            break
        rewritten = [
            {"row_id": row.id, "rewritten": encode_redactions(decode_redactions(row.redactions))}
            for row in rows
        ]
        conn.execute(rewrite, rewritten)
        last = rows[-1].id
    conn.execute(state.delete().where(state.c.key.like("catalog.%")))


MIGRATIONS: dict[int, Migration] = {1: _redactions_keep_length_classes}
"""``MIGRATIONS[n]`` upgrades a version-n store to n + 1."""


def read_version(conn: Connection) -> int | None:
    """The stored schema version, or None for an empty database."""
    if not inspect(conn).has_table("meta"):
        return None
    row = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).first()
    if row is None:
        return None
    try:
        return int(row[0])
    except ValueError as exc:
        raise StoreError(f"store has an unreadable schema version {row[0]!r}") from exc


def write_version(conn: Connection, version: int) -> None:
    conn.execute(meta.delete().where(meta.c.key == "schema_version"))
    conn.execute(meta.insert().values(key="schema_version", value=str(version)))


_SCHEMA_LOCK = 0x62757364  # "busd": one advisory lock id for schema changes


def _serialise_schema_changes(conn: Connection) -> None:
    """Several agents may open a new PostgreSQL store at once: one creates, the others wait.

    The lock is held to the end of the transaction. SQLite needs none: its writers are
    already serialised by the database file lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})


def ensure_schema(
    engine_connect: Callable[[], Connection],
    *,
    target: int | None = None,
    steps: dict[int, Migration] | None = None,
) -> int:
    """Create or upgrade the schema; returns the version the store is now at."""
    target = SCHEMA_VERSION if target is None else target
    steps = MIGRATIONS if steps is None else steps
    with engine_connect() as conn, conn.begin():
        _serialise_schema_changes(conn)
        version = read_version(conn)
        if version is None:
            if inspect(conn).has_table("messages"):
                raise StoreError("database has busdoc tables but no schema version; refusing it")
            metadata.create_all(conn)
            write_version(conn, target)
            return target
    if version > target:
        raise StoreError(
            f"store schema version {version} is newer than this busdoc understands "
            f"({target}); upgrade busdoc"
        )
    while version < target:
        step = steps.get(version)
        if step is None:
            raise StoreError(f"no migration from store schema version {version} to {version + 1}")
        with engine_connect() as conn, conn.begin():
            _serialise_schema_changes(conn)
            step(conn)
            version += 1
            write_version(conn, version)
    return version


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "connections",
    "ensure_schema",
    "messages",
    "meta",
    "metadata",
    "observations",
    "runs",
    "state",
]
