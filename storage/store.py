"""The store: capture runs, messages and their observations, in SQLite or PostgreSQL.

Writes go through a ``Writer`` that redacts, hashes and pairs each observation with its
message in memory (``busdoc.storage.identity``) and writes a whole batch with SQLAlchemy
Core executemany in ONE transaction (measured: ORM ``add_all`` 6.6k rows/s, per-row
commit 459, Core batched 20-31k). A live agent acks its broker deliveries after
``Writer.flush()`` returns, so a flush is the unit of durability.

Message ids are handed out by the writer inside the flush transaction (SQLite: after
``max(id)`` under ``BEGIN IMMEDIATE``, which holds the write lock; PostgreSQL: from the
``messages_id_seq`` sequence), so several agents can write one PostgreSQL store and a
delivery in a later batch can still point at the publish it matched.

SQLite is tuned for one bulk writer: WAL, ``synchronous=NORMAL`` (a power cut may lose
the last transactions, never corrupt), 64 KiB pages (59k vs 33k rows/s measured) and a
16 MiB page cache: inserts append at the right edge of every index, so a bigger cache
only made peak RSS grow with the store (64 MiB: 84 → 260 MB from 20k to 200k
observations). The file is created owner-only (0600) before SQLite opens it, and its
``-wal``/``-shm`` follow (SQLite copies the database file's mode; the umask is tightened
while connecting as well).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    select,
    text,
    true,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from busdoc.errors import StoreError
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation
from busdoc.storage import schema
from busdoc.storage.codec import (
    decode_redactions,
    decode_table,
    encode_redactions,
    encode_table,
)
from busdoc.storage.identity import Matcher, MessageRef
from busdoc.storage.records import Redaction, StoredMessage, StoredObservation
from busdoc.storage.redact import Redactor

DEFAULT_PATH = "busdoc.db"
SQLITE_BUSY_TIMEOUT = 10.0
"""Seconds a SQLite writer waits for another process's lock before giving up."""
_READ_CHUNK = 256
_FLUSH_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class Run:
    """A capture run being written (the handle ``begin_run`` returns)."""

    id: int
    kind: str
    name: str
    content_hash: str | None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A capture run as stored."""

    id: int
    kind: str
    name: str
    content_hash: str | None
    status: str
    """``running`` (or killed before it finished) or ``complete``."""
    started: float
    finished: float | None
    first_time: float | None
    last_time: float | None
    counts: dict[str, int]
    """What the store gained: messages, observations, publishes, deliveries, get_oks,
    returns, connections, truncated."""
    stats: dict[str, Any]
    """What the importer reported to ``finish_run``."""
    skipped: dict[str, int]
    """Notices by code (``tcp_gap``, ``garbage``…) with their counts."""


def _error_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def open_store(target: str | None = None, *, create: bool = True) -> Store:
    """Open (and create, unless ``create`` is false) the store ``target`` names.

    None means ``$BUSDOC_DB`` or ``./busdoc.db``; a value containing ``://`` is a
    SQLAlchemy URL (``postgresql://`` is rewritten to use psycopg 3); anything else is
    a SQLite file path.
    """
    if target is None:
        target = os.environ.get("BUSDOC_DB") or DEFAULT_PATH
    if "://" in target:
        return Store(_url_engine(target), display=_mask(target), create=create)
    path = os.path.abspath(os.path.expanduser(target))
    return Store(_sqlite_engine(path, create), display=target, create=create)


def _mask(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        # Not parseable: still never echo what could be a password.
        head, sep, tail = url.partition("://")
        return f"{head}{sep}{tail.rsplit('@', 1)[-1]}" if "@" in tail else url


def _url_engine(url: str) -> Engine:
    display = _mask(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise StoreError(f"not a database URL: {display}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            return _sqlite_engine(os.path.abspath(database), True)
    try:
        return create_engine(parsed)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use database URL {display}: {_error_line(exc)}") from exc


def _sqlite_engine(path: str, create: bool) -> Engine:
    if os.path.isdir(path):
        raise StoreError(f"{path}: is a directory, not a store file")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        raise StoreError(f"{path}: directory {parent} does not exist")
    if not os.path.exists(path):
        if not create:
            raise StoreError(f"{path}: no store here (capture something first)")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot create store {path}: {exc.strerror}") from exc
    elif not os.access(path, os.R_OK):
        raise StoreError(f"{path}: permission denied")

    _adapt_as_is()
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Driver-level autocommit, so the "begin" hook below decides how a
        # transaction starts (pysqlite's own BEGIN would be DEFERRED).
        dbapi_conn.isolation_level = None
        old = os.umask(0o077)
        try:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA page_size=65536")  # only takes on an empty file
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-16384")
            cur.close()
        finally:
            os.umask(old)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the lock up front: max(id) and the inserts are then atomic
        # against another busdoc process writing the same file.
        immediate = conn.get_execution_options().get("busdoc_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_AS_IS: tuple[tuple[type, Any], ...] = ((bytes, bytes), (bool, int), (type(None), {}.get))
"""Adapters that hand pysqlite the very value it would bind anyway: ``bytes(b)`` is ``b``,
``int(True)`` is what a bool binds as, and an empty dict's ``get`` returns None."""


def _adapt_as_is() -> None:
    """Register ``_AS_IS`` with pysqlite, never over an adapter already registered for
    those types.

    pysqlite binds only exact int, float, str and bytearray without adapting them. For
    any other parameter (bytes bodies and tables, None, bools: about 15 per observation)
    Python 3.11 looks ``__adapt__`` up on its ``PrepareProtocol`` type, and that failing
    lookup raises and formats an AttributeError every time. An adapter in the registry
    is found first: measured with callgrind, a 5,000-message pcap import runs 1.7% fewer
    instructions in all (2.6% of the per-message cost). The registry is keyed by exact
    type, so a subclass of these types binds as before.
    """
    for kind, same in _AS_IS:
        if (kind, sqlite3.PrepareProtocol) not in sqlite3.adapters:
            sqlite3.register_adapter(kind, same)


def _quote(column: str) -> str:
    return f'"{column}"'


class Store:
    """One busdoc store. Not thread-safe: one writer per ``Store`` object."""

    def __init__(
        self, engine: Engine, *, display: str, create: bool = True, match_limit: int = 50_000
    ) -> None:
        self.engine = engine
        self.url_for_display = display
        self.dialect = engine.dialect.name
        self._matcher = Matcher(match_limit)
        self._conn_ids: dict[str, MessageRef] = {}
        self._insert_cache: dict[str, str] = {}
        try:
            if not create:
                with engine.connect() as conn:
                    if schema.read_version(conn) is None:
                        raise StoreError(f"{display}: not a busdoc store (no schema)")
            self.schema_version = schema.ensure_schema(engine.connect)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StoreError(f"cannot open store {display}: {_error_line(exc)}") from exc
        except StoreError:
            engine.dispose()
            raise

    # -- plumbing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(busdoc_write=True) as conn:
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot {action} in {self.url_for_display}: {_error_line(exc)}"
            ) from exc

    @contextlib.contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot {action} in {self.url_for_display}: {_error_line(exc)}"
            ) from exc

    def _allocate(self, conn: Connection, table: str, n: int) -> list[int]:
        """``n`` fresh ids for ``table`` (messages or connections), inside the write lock."""
        if n == 0:
            return []
        if self.dialect == "postgresql":
            rows = conn.execute(
                text(f"SELECT nextval('{table}_id_seq') FROM generate_series(1, :n)"), {"n": n}
            )
            return [r[0] for r in rows]
        # max(id) alone would hand a deleted (killed) run's ids out again, and readers
        # that remember "messages up to id N" would miss the new ones: keep a high-water
        # mark in meta as well.
        tbl = schema.metadata.tables[table]
        meta = schema.meta
        mark = f"{table}_high_water"
        top = conn.execute(select(func.coalesce(func.max(tbl.c.id), 0))).scalar_one()
        seen = conn.execute(select(meta.c.value).where(meta.c.key == mark)).scalar()
        if seen is not None:
            top = max(top, int(seen))
            conn.execute(meta.update().where(meta.c.key == mark).values(value=str(top + n)))
        else:
            conn.execute(meta.insert().values(key=mark, value=str(top + n)))
        return list(range(top + 1, top + 1 + n))

    def _insert_sql(self, table: str) -> str:
        """A driver-level INSERT for the hot tables: executemany with plain tuples skips
        SQLAlchemy's per-row parameter processing (measured 87 → see bench/bench_store.py)."""
        sql = self._insert_cache.get(table)
        if sql is None:
            cols = _INSERT_COLUMNS[table]
            mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            sql = (
                f"INSERT INTO {table} ({', '.join(_quote(c) for c in cols)}) "
                f"VALUES ({', '.join([mark] * len(cols))})"
            )
            self._insert_cache[table] = sql
        return sql

    # -- runs --------------------------------------------------------------------------

    def begin_run(self, *, kind: str, name: str, content_hash: str | None) -> Run | None:
        """Start a capture run; None when a run with this content hash completed before.

        A run with the same hash that never completed (an import that was killed) is
        deleted with everything it wrote, and the import starts over.
        """
        runs = schema.runs
        with self._write("start a capture run") as conn:
            if content_hash is not None:
                row = conn.execute(
                    select(runs.c.id, runs.c.status).where(runs.c.content_hash == content_hash)
                ).first()
                if row is not None:
                    if row.status == "complete":
                        return None
                    self._delete_run(conn, row.id)
            result = conn.execute(
                runs.insert().values(
                    kind=kind,
                    name=name,
                    content_hash=content_hash,
                    status="running",
                    started=time.time(),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            run_id = int(key[0])
        return Run(id=run_id, kind=kind, name=name, content_hash=content_hash)

    def _delete_run(self, conn: Connection, run_id: int) -> None:
        m, o = schema.messages, schema.observations
        conn.execute(
            o.delete().where(
                (o.c.run_id == run_id)
                | o.c.message_id.in_(select(m.c.id).where(m.c.run_id == run_id))
            )
        )
        conn.execute(m.delete().where(m.c.run_id == run_id))
        conn.execute(schema.connections.delete().where(schema.connections.c.run_id == run_id))
        conn.execute(schema.runs.delete().where(schema.runs.c.id == run_id))

    def finish_run(self, run: Run, *, stats: Mapping[str, Any]) -> None:
        """Mark ``run`` complete, with what it added and what the importer reports."""
        with self._write("finish a capture run") as conn:
            counts = self._counts(conn, run.id)
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == run.id)
                .values(
                    status="complete",
                    finished=time.time(),
                    counts=orjson.dumps(counts),
                    stats=orjson.dumps(dict(stats), default=str),
                )
            )

    def _counts(self, conn: Connection, run_id: int | None) -> dict[str, int]:
        m, o = schema.messages, schema.observations

        def where(table: Any) -> Any:
            return table.c.run_id == run_id if run_id is not None else true()

        # One pass over the messages for all three counts: the flags sit in the rows,
        # beside the bodies, so each extra pass reads every body page again.
        total, truncated, redacted = conn.execute(
            select(
                func.count(),
                func.count().filter(m.c.truncated.is_(True)),
                func.count().filter(m.c.redactions.is_not(None)),
            ).where(where(m))
        ).one()
        counts = {
            "messages": total,
            "observations": 0,
            "publishes": 0,
            "deliveries": 0,
            "get_oks": 0,
            "returns": 0,
        }
        names = {
            "publish": "publishes",
            "deliver": "deliveries",
            "get_ok": "get_oks",
            "return": "returns",
        }
        # One pass with a filtered count per kind: a GROUP BY on the unindexed kind
        # column sorts every row first, and that sorter held ~25 MB at 1M observations.
        row = conn.execute(
            select(
                func.count(), *(func.count().filter(o.c.kind == kind) for kind in names)
            ).where(where(o))
        ).one()
        counts["observations"] = row[0]
        for name, n in zip(names.values(), row[1:], strict=True):
            counts[name] = n
        c = schema.connections
        counts["connections"] = conn.execute(
            select(func.count()).select_from(c).where(where(c))
        ).scalar_one()
        counts["truncated"] = truncated
        counts["redacted_messages"] = redacted
        return counts

    def runs(self) -> list[RunInfo]:
        """Every capture run, oldest first."""
        r = schema.runs
        with self._read("list capture runs") as conn:
            rows = conn.execute(select(r).order_by(r.c.id)).all()
        return [
            RunInfo(
                id=row.id,
                kind=row.kind,
                name=row.name,
                content_hash=row.content_hash,
                status=row.status,
                started=row.started,
                finished=row.finished,
                first_time=row.first_time,
                last_time=row.last_time,
                counts=orjson.loads(row.counts) if row.counts else {},
                stats=orjson.loads(row.stats) if row.stats else {},
                skipped=orjson.loads(row.skipped) if row.skipped else {},
            )
            for row in rows
        ]

    # -- writing -----------------------------------------------------------------------

    def writer(
        self,
        run: Run,
        *,
        redactor: Redactor,
        max_body: int = 16 << 20,
        batch_size: int = 5000,
    ) -> Writer:
        """A batched writer for ``run``; use it as a context manager (exit flushes)."""
        return Writer(self, run, redactor=redactor, max_body=max_body, batch_size=batch_size)

    # -- reading -----------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counts over the whole store."""
        with self._read("count messages") as conn:
            counts = self._counts(conn, None)
            counts["runs"] = conn.execute(
                select(func.count()).select_from(schema.runs)
            ).scalar_one()
        return counts

    def iter_messages(self, *, after_id: int = 0) -> Iterator[StoredMessage]:
        """Every message with id > ``after_id``, in id order, with its observations.

        Streams in chunks of a few hundred messages (one short read transaction each), so
        memory stays flat for any store size. Observations a later import attaches to an
        already-read message (a delivery of it) are seen by the next full read.
        """
        m, o, c = schema.messages, schema.observations, schema.connections
        last = after_id
        while True:
            with self._read("read messages") as conn:
                rows = conn.execute(
                    select(m).where(m.c.id > last).order_by(m.c.id).limit(_READ_CHUNK)
                ).all()
                if not rows:
                    return
                lo, hi = rows[0].id, rows[-1].id
                obs_rows = conn.execute(
                    select(
                        o.c.message_id,
                        o.c.time,
                        o.c.kind,
                        o.c.connection,
                        o.c.channel,
                        o.c.queue,
                        o.c.redelivered,
                        c.c.connection_name,
                    )
                    .select_from(o.outerjoin(c, o.c.connection_id == c.c.id))
                    .where(o.c.message_id.between(lo, hi))
                    .order_by(o.c.message_id, o.c.time, o.c.id)
                ).all()
            by_message: dict[int, list[StoredObservation]] = {}
            for ob in obs_rows:
                by_message.setdefault(ob.message_id, []).append(
                    StoredObservation(
                        time=ob.time,
                        kind=ob.kind,
                        connection=ob.connection,
                        channel=ob.channel,
                        queue=ob.queue,
                        redelivered=bool(ob.redelivered),
                        connection_name=ob.connection_name,
                    )
                )
            for row in rows:
                yield StoredMessage(
                    id=row.id,
                    vhost=row.vhost,
                    exchange=row.exchange,
                    routing_key=row.routing_key,
                    properties=decode_table(row.properties) or {},
                    headers=decode_table(row.headers),
                    body=bytes(row.body),
                    body_size=row.body_size,
                    body_sha256=row.body_sha256,
                    truncated=bool(row.truncated),
                    redactions=decode_redactions(row.redactions),
                    observations=tuple(by_message.get(row.id, ())),
                    first_seen=row.first_seen,
                )
            last = hi

    # -- persisted state ---------------------------------------------------------------

    def get_state(self, key: str) -> bytes | None:
        """A value ``put_state`` stored (the catalog, inference progress), or None."""
        s = schema.state
        with self._read("read state") as conn:
            value = conn.execute(select(s.c.value).where(s.c.key == key)).scalar()
        return None if value is None else bytes(value)

    def put_state(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``, replacing what was there."""
        s = schema.state
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        stmt = upsert(s).values(key=key, value=value)
        stmt = stmt.on_conflict_do_update(index_elements=[s.c.key], set_={"value": value})
        with self._write("save state") as conn:
            conn.execute(stmt)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(slots=True)
class _PendingConnection:
    ref: MessageRef
    row: dict[str, Any]
    new: bool


@dataclass(slots=True)
class _Batch:
    messages: list[tuple[MessageRef, tuple[Any, ...]]] = field(default_factory=list)
    observations: list[tuple[MessageRef, tuple[Any, ...]]] = field(default_factory=list)
    connections: dict[str, _PendingConnection] = field(default_factory=dict)
    bytes: int = 0

    def __len__(self) -> int:
        return len(self.messages) + len(self.observations) + len(self.connections)


_KIND_QUEUE_RETURN = ("return",)
_EMPTY_TABLE = b"{}"
"""What ``encode_table`` makes of any empty mapping."""
_PROPS_CACHE = 256
_DIGEST_CACHE = 512
_DIGEST_CACHE_BODY = 64 << 10
_QUEUE_CACHE = 4096


class Writer:
    """Adds records to one run; ``flush()`` writes all added so far in one transaction."""

    def __init__(
        self, store: Store, run: Run, *, redactor: Redactor, max_body: int, batch_size: int
    ) -> None:
        self.store = store
        self.run = run
        self.redactor = redactor
        self.max_body = max_body
        self.batch_size = batch_size
        self._batch = _Batch()
        self._first: float | None = None
        self._last: float | None = None
        self.notices: Counter[str] = Counter()
        self.truncated = 0
        self.redacted = 0
        self.added = 0
        self.messages = 0
        """New messages stored (a delivery of a message already stored adds none)."""
        # Encoded properties by (items, value types): oslo sends a handful of distinct
        # property sets across a whole capture.
        self._encoded_props: dict[Any, bytes] = {}
        self._encoded_redactions: dict[tuple[Redaction, ...], bytes] = {}
        # sha256 by body: a delivery carries its publish's body, hashed once. Two
        # generations, as in the redactor's body cache.
        self._digests: dict[bytes, str] = {}
        self._digests_old = self._digests
        self._queues: dict[Any, Any] = {}

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.flush()
            return
        # Keep what was decoded before the failure; the original error wins.
        with contextlib.suppress(Exception):
            self.flush()

    def add(self, record: Observation | ConnectionInfo | Notice) -> None:
        """Queue one record; flushes by itself every ``batch_size`` records."""
        if isinstance(record, Observation):
            self.add_observation(record)
            return
        if isinstance(record, ConnectionInfo):
            self._add_connection(record)
            if self._batch_full():
                self.flush()
        elif isinstance(record, Notice):
            self.notices[record.code] += record.count
        else:
            raise TypeError(f"cannot store a {type(record).__name__}")

    def _batch_full(self) -> bool:
        batch = self._batch
        return (
            len(batch.observations) + len(batch.connections) >= self.batch_size
            or batch.bytes >= _FLUSH_BYTES
        )

    def _add_connection(self, info: ConnectionInfo) -> None:
        props = dict(info.client_properties or {})
        name = props.get("connection_name") or props.get("product")
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        row = {
            "time": info.time,
            "client_properties": encode_table(props) if props else None,
            "user": info.user,
            "vhost": info.vhost,
            "node": info.node,
            "connection_name": None if name is None else str(name),
        }
        pending = self._batch.connections.get(info.connection)
        if pending is not None:
            # A second announcement (start-ok, then open) adds to the first.
            pending.row.update({k: v for k, v in row.items() if v is not None and k != "time"})
            return
        known = self.store._conn_ids.get(info.connection)
        if known is not None and known.id is not None:
            row = {k: v for k, v in row.items() if v is not None and k != "time"}
            self._batch.connections[info.connection] = _PendingConnection(known, row, new=False)
            return
        ref = MessageRef()
        row.update(run_id=self.run.id, key=info.connection)
        self.store._conn_ids[info.connection] = ref
        self._batch.connections[info.connection] = _PendingConnection(ref, row, new=True)

    def add_observation(self, obs: Observation) -> None:
        """``add`` for an observation, for a caller that already knows it has one."""
        self.added += 1
        t = obs.time
        if self._first is None or t < self._first:
            self._first = t
        if self._last is None or t > self._last:
            self._last = t
        parts = self.redactor.redact(obs)
        body = parts.body
        cut_by_source = obs.body_size is not None and obs.body_size > len(obs.body)
        size = obs.body_size + len(body) - len(obs.body) if cut_by_source else len(body)  # type: ignore[operator]
        digests = self._digests
        sha = digests.get(body) or self._digests_old.get(body)
        if sha is None:
            sha = hashlib.sha256(body).hexdigest()
            if len(body) <= _DIGEST_CACHE_BODY:
                if len(digests) >= _DIGEST_CACHE:
                    self._digests_old = digests
                    self._digests = digests = {}
                digests[body] = sha
        properties = parts.properties
        try:
            # Types too: 1, 1.0 and True are equal dict keys but encode differently. One
            # flat tuple (names, values, types): its length fixes where each part starts,
            # and it is built without a tuple per item.
            values = properties.values()
            pkey: Any = (*properties, *values, *map(type, values))
            props = self._encoded_props.get(pkey)
        except (TypeError, AttributeError):  # an unhashable value, or no mapping at all
            pkey = props = None
        if props is None:
            props = encode_table(properties) or b"{}"
            if pkey is not None:
                if len(self._encoded_props) >= _PROPS_CACHE:
                    self._encoded_props.clear()
                self._encoded_props[pkey] = props
        headers = parts.headers
        if headers is not None:
            # oslo.messaging sends an empty table with every message.
            headers = encode_table(headers) if headers else _EMPTY_TABLE
        # The identity key as one 64-bit int (the matcher holds up to match_limit of
        # them): Python's own hash of the parts, valid for this process, which is all the
        # matcher lives for. Two different messages would have to collide within the
        # window: about 1e-10 per capture at 50k remembered and 100k matched.
        key = hash((obs.exchange, obs.routing_key, props, headers, sha))
        matcher = self.store._matcher
        kind = obs.kind
        ref: MessageRef | None = None
        queue: Any = None
        if kind == "deliver" or kind == "get_ok":
            queue = (
                (obs.vhost, obs.queue)
                if obs.queue is not None
                else ("?", obs.connection, obs.consumer_tag or obs.channel)
            )
            # One tuple per queue, not per delivery: the matcher keeps it per message.
            queues = self._queues
            queue = queues.get(queue) or _intern(queues, queue)
            ref = matcher.take(key, queue, redelivered=obs.redelivered)
        elif kind == "return":
            queue = _KIND_QUEUE_RETURN
            ref = matcher.take(key, queue)
        batch = self._batch
        if ref is None:
            ref = MessageRef()
            if kind == "publish":
                matcher.publish(key, ref)
            else:
                matcher.orphan(key, queue, ref)
            stored = body
            truncated = cut_by_source
            if len(body) > self.max_body:
                stored = body[: self.max_body]
                truncated = True
            self.messages += 1
            if truncated:
                self.truncated += 1
            redactions = None
            if parts.redactions:
                self.redacted += 1
                # The redactor hands out one Redaction per path and shape, so an oslo
                # service's calls repeat the same few tuples: encoded once each.
                redactions = self._encoded_redactions.get(parts.redactions)
                if redactions is None:
                    redactions = encode_redactions(parts.redactions)
                    if len(self._encoded_redactions) >= _PROPS_CACHE:
                        self._encoded_redactions.clear()
                    self._encoded_redactions[parts.redactions] = redactions
            # Column order of _MESSAGE_COLUMNS after the id.
            batch.messages.append(
                (
                    ref,
                    (
                        self.run.id,
                        obs.vhost,
                        obs.exchange,
                        obs.routing_key,
                        props,
                        headers,
                        stored,
                        size,
                        sha,
                        truncated,
                        redactions,
                        t,
                    ),
                )
            )
            batch.bytes += len(stored)
        # Column order of _OBSERVATION_COLUMNS after message_id and connection_id
        # (index 3 is the connection key, resolved to its id at flush).
        batch.observations.append(
            (
                ref,
                (
                    self.run.id,
                    t,
                    kind,
                    obs.connection,
                    obs.channel,
                    obs.queue,
                    obs.redelivered,
                    obs.consumer_tag,
                    obs.delivery_tag,
                    obs.reply_code,
                    obs.reply_text,
                ),
            )
        )
        # _batch_full(), written out: this runs for every observation.
        if (
            len(batch.observations) + len(batch.connections) >= self.batch_size
            or batch.bytes >= _FLUSH_BYTES
        ):
            self.flush()

    def flush(self) -> None:
        """Write everything added so far in one transaction (then it is durable)."""
        batch = self._batch
        if not len(batch) and not self.notices:
            return
        store = self.store
        new_conns = [p for p in batch.connections.values() if p.new]
        assigned: list[MessageRef] = []
        try:
            with store._write("write messages") as conn:
                for pending, cid in zip(
                    new_conns, store._allocate(conn, "connections", len(new_conns)), strict=True
                ):
                    pending.ref.id = cid
                    pending.row["id"] = cid
                    assigned.append(pending.ref)
                if new_conns:
                    conn.execute(schema.connections.insert(), [p.row for p in new_conns])
                for p in batch.connections.values():
                    if not p.new and p.row:
                        conn.execute(
                            schema.connections.update()
                            .where(schema.connections.c.id == p.ref.id)
                            .values(**p.row)
                        )
                ids = store._allocate(conn, "messages", len(batch.messages))
                refs = [ref for ref, _ in batch.messages]
                assigned.extend(refs)
                for ref, mid in zip(refs, ids, strict=True):
                    ref.id = mid
                rows = [(mid, *row) for (_, row), mid in zip(batch.messages, ids, strict=True)]
                if rows:
                    conn.exec_driver_sql(store._insert_sql("messages"), rows)
                # Resolved now, so a ConnectionInfo later in the batch still counts: one
                # lookup per connection, not per observation.
                conn_ids = store._conn_ids
                cids: dict[str, int | None] = {}
                for key in {row[3] for _, row in batch.observations}:
                    cref = conn_ids.get(key)
                    cids[key] = None if cref is None else cref.id
                obs_rows = [(ref.id, cids[row[3]], *row) for ref, row in batch.observations]
                if obs_rows:
                    conn.exec_driver_sql(store._insert_sql("observations"), obs_rows)
                conn.execute(
                    schema.runs.update()
                    .where(schema.runs.c.id == self.run.id)
                    .values(
                        first_time=self._first,
                        last_time=self._last,
                        skipped=orjson.dumps(dict(self.notices)) if self.notices else None,
                    )
                )
        except BaseException:
            for ref in assigned:
                ref.id = None
            raise
        self._batch = _Batch()


def _intern(table: dict[Any, Any], value: Any) -> Any:
    if len(table) >= _QUEUE_CACHE:
        table.clear()
    table[value] = value
    return value


_MESSAGE_COLUMNS = (
    "id",
    "run_id",
    "vhost",
    "exchange",
    "routing_key",
    "properties",
    "headers",
    "body",
    "body_size",
    "body_sha256",
    "truncated",
    "redactions",
    "first_seen",
)
_OBSERVATION_COLUMNS = (
    "message_id",
    "connection_id",
    "run_id",
    "time",
    "kind",
    "connection",
    "channel",
    "queue",
    "redelivered",
    "consumer_tag",
    "delivery_tag",
    "reply_code",
    "reply_text",
)
_INSERT_COLUMNS = {"messages": _MESSAGE_COLUMNS, "observations": _OBSERVATION_COLUMNS}
