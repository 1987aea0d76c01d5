"""Pruning old messages keeps the new ones whole (SQLite and the real PostgreSQL)."""

from __future__ import annotations

import pytest
from brokerutil import temp_postgres_db

from busdoc.errors import InputError
from busdoc.sniffer.records import Observation
from busdoc.storage.prune import count_older, parse_age, prune
from busdoc.storage.redact import Redactor
from busdoc.storage.store import Store, open_store

DAY = 86400.0
NOW = 1_800_000_000.0


def obs(kind: str, t: float, body: bytes) -> Observation:
    return Observation(
        time=t, source="test", connection="c", channel=1, kind=kind,  # type: ignore[arg-type]
        exchange="nova", routing_key="compute", properties={}, headers=None, body=body,
        vhost="/", queue="compute" if kind == "deliver" else None,
    )


def fill(store: Store) -> None:
    run = store.begin_run(kind="test", name="t", content_hash=None)
    assert run is not None
    with store.writer(run, redactor=Redactor()) as w:
        for age_days, body in [(10, b"old1"), (8, b"old2"), (6, b"new1"), (0.5, b"new2")]:
            t = NOW - age_days * DAY
            w.add(obs("publish", t, body))
            w.add(obs("deliver", t + 1, body))
    store.finish_run(run, stats={})


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 7 * DAY), ("12h", 43200), ("30m", 1800), ("2w", 14 * DAY),
                          ("90s", 90), ("1.5d", 1.5 * DAY)],
)
def test_parse_age_reads_number_and_unit(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["7", "d", "-1d", "7y", ""])
def test_parse_age_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(InputError, match="cannot read age"):
        parse_age(text)


def test_prune_deletes_old_messages_with_their_observations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(str(tmp_path / "p.db"))
    fill(store)

    assert count_older(store, older_than=7 * DAY, now=NOW) == 2
    result = prune(store, older_than=7 * DAY, now=NOW)

    assert (result.messages, result.observations) == (2, 4)
    kept = list(store.iter_messages())
    assert [m.body for m in kept] == [b"new1", b"new2"]
    assert all(len(m.observations) == 2 for m in kept)
    assert store.stats()["observations"] == 4
    assert prune(store, older_than=7 * DAY, now=NOW).messages == 0


def test_ids_are_not_reused_after_pruning_the_newest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(str(tmp_path / "p.db"))
    fill(store)
    top = max(m.id for m in store.iter_messages())
    prune(store, older_than=0, now=NOW + DAY)
    fill(store)

    assert min(m.id for m in store.iter_messages()) > top


@pytest.mark.postgres
def test_prune_on_postgresql() -> None:
    with temp_postgres_db() as url:
        store = open_store(url)
        try:
            fill(store)
            result = prune(store, older_than=7 * DAY, now=NOW)
            assert (result.messages, result.observations) == (2, 4)
            assert [m.body for m in store.iter_messages()] == [b"new1", b"new2"]
        finally:
            store.close()
