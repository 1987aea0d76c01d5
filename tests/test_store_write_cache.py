"""The writer's caches (encoded properties, body digests) never change what is stored."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from busdoc.sniffer.records import Observation
from busdoc.storage.redact import Redactor
from busdoc.storage.store import open_store


def sighting(body: bytes, properties: dict[str, Any], kind: str = "publish") -> Observation:
    return Observation(
        time=1.0,
        source="pcap",
        connection="10.0.0.5:40000->10.0.0.9:5672",
        channel=1,
        kind=kind,  # type: ignore[arg-type]
        exchange="nova",
        routing_key="compute",
        properties=properties,
        headers=None,
        body=body,
        queue="compute" if kind == "deliver" else None,
    )


def test_equal_but_differently_typed_properties_are_stored_as_given(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    run = store.begin_run(kind="pcap", name="t", content_hash=None)
    assert run is not None
    sent = [
        (b'{"n": 1}', {"priority": 1}),
        (b'{"n": 2}', {"priority": True}),
        (b'{"n": 3}', {"priority": 1.0}),
        (b'{"n": 4}', {"priority": 1}),
        (b'{"n": 5}', {}),
    ]
    with store.writer(run, redactor=Redactor()) as writer:
        for body, props in sent:
            writer.add(sighting(body, props))
    stored = {m.body: m.properties for m in store.iter_messages()}
    store.close()
    for body, props in sent:
        assert stored[body] == props
        assert [type(v) for v in stored[body].values()] == [type(v) for v in props.values()]


def test_delivery_of_a_hashed_body_matches_its_publish(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    run = store.begin_run(kind="pcap", name="t", content_hash=None)
    assert run is not None
    props = {"content_type": "application/json"}
    bodies = [b'{"m": "a"}', b'{"m": "b"}', b'{"m": "c", "token": "secret-1"}']
    with store.writer(run, redactor=Redactor()) as writer:
        for body in bodies:
            writer.add(sighting(body, dict(props)))
        for body in bodies:
            writer.add(sighting(bytes(bytearray(body)), dict(props), "deliver"))
    messages = list(store.iter_messages())
    store.close()
    assert len(messages) == len(bodies)
    for m in messages:
        assert m.body_sha256 == hashlib.sha256(m.body).hexdigest()
        assert [o.kind for o in m.observations] == ["publish", "deliver"]


def test_empty_header_tables_are_stored_as_encode_table_writes_them(tmp_path: Path) -> None:
    from types import MappingProxyType

    from busdoc.storage.codec import encode_table
    from busdoc.storage.store import _EMPTY_TABLE

    assert encode_table({}) == _EMPTY_TABLE
    assert encode_table(MappingProxyType({})) == _EMPTY_TABLE
    store = open_store(str(tmp_path / "s.db"))
    run = store.begin_run(kind="pcap", name="t", content_hash=None)
    assert run is not None
    sent = {b"1": None, b"2": {}, b"3": MappingProxyType({}), b"4": {"x-retry": 1}}
    with store.writer(run, redactor=Redactor()) as writer:
        for body, headers in sent.items():
            writer.add(dataclasses.replace(sighting(body, {}), headers=headers))
    stored = {m.body: m.headers for m in store.iter_messages()}
    store.close()
    assert stored == {b"1": None, b"2": {}, b"3": {}, b"4": {"x-retry": 1}}


def test_bytes_none_and_bools_bind_as_sqlite_would_bind_them(tmp_path: Path) -> None:
    """The writer's as-is adapters (``store._AS_IS``) change no stored type or value."""
    import sqlite3

    from busdoc.storage.store import _AS_IS

    for kind, same in _AS_IS:
        for value in {bytes: [b"", b"\x00b"], bool: [True, False], type(None): [None]}[kind]:
            assert same(value) == value
            assert type(same(value)) is (int if kind is bool else kind)
    store = open_store(str(tmp_path / "s.db"))
    run = store.begin_run(kind="pcap", name="t", content_hash=None)
    assert run is not None
    with store.writer(run, redactor=Redactor()) as writer:
        writer.add(dataclasses.replace(sighting(b"\x00body", {}, "deliver"), redelivered=True))
    store.close()
    db = sqlite3.connect(tmp_path / "s.db")
    row = db.execute(
        "SELECT typeof(m.body), m.body, typeof(m.headers), typeof(m.truncated), m.truncated,"
        " typeof(o.redelivered), o.redelivered, typeof(o.reply_code)"
        " FROM messages m JOIN observations o ON o.message_id = m.id"
    ).fetchone()
    db.close()
    assert row == ("blob", b"\x00body", "null", "integer", 0, "integer", 1, "null")
