"""Read the JSON log files of RabbitMQ's ``rabbitmq_tracing`` plugin into sniffer records.

A trace created with ``{"format": "json"}`` (``PUT /api/traces/<vhost>/<name>``) writes
one JSON object per line to ``/var/tmp/rabbitmq-tracing/<name>.log``
(``rabbit_tracing_consumer.erl``, measured on 3.10)::

    {"channel":1, "connection":"127.0.0.1:51492 -> 127.0.0.1:5672", "exchange":"nova",
     "node":"rabbit@localhost", "payload":"<base64>", "properties":{...},
     "queue":"none", "routed_queues":["q"], "routing_keys":["k"],
     "timestamp":"2026-11-25T21:46:42.240+00:00", "type":"published",
     "user":"guest", "vhost":"v"}

``type`` is ``published`` (the firehose's ``publish.<exchange>``) or ``received`` (a
``deliver.<queue>``: basic.deliver or basic.get-ok); ``queue`` is ``"none"`` for a
publish, ``routed_queues`` is ``"none"`` for a delivery. ``properties`` holds the set
basic properties with ``headers`` nested, as the firehose does. The plugin does not log
``redelivered``. Timestamps have millisecond resolution.

Like ``firehose``, this module is pure: lines in, records out; a line that is not a
trace becomes a ``Notice`` with its line number, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from busdoc.sniffer.firehose import PROPERTY_NAMES, traced_records
from busdoc.sniffer.records import Notice, Record

SOURCE = "tracing_log"



def _parse_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return _dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _bad(line_no: int, reason: str) -> Notice:
    return Notice(
        code="tracing_log_undecodable",
        message=f"line {line_no} skipped: {reason}",
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def line_to_records(
    line: bytes | str,
    *,
    line_no: int = 0,
    seen_connections: set[tuple[str, str | None, str | None, str | None]] | None = None,
) -> list[Record]:
    """Turn one log line into an ``Observation`` (after a ``ConnectionInfo`` when new)."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return [_bad(line_no, "not JSON")]
    if not isinstance(entry, Mapping):
        return [_bad(line_no, "not a JSON object")]
    kind_text = entry.get("type")
    if kind_text not in ("published", "received"):
        return [_bad(line_no, f"type is {kind_text!r}, not published or received")]
    when = _parse_time(entry.get("timestamp"))
    if when is None:
        return [_bad(line_no, "no ISO 8601 timestamp")]
    payload = entry.get("payload")
    if not isinstance(payload, str):
        return [_bad(line_no, "no base64 payload (was the trace created with format text?)")]
    try:
        body = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return [_bad(line_no, "payload is not base64")]
    original = entry.get("properties") or {}
    if not isinstance(original, Mapping):
        return [_bad(line_no, "properties is not an object")]
    app_headers = original.get("headers")
    if app_headers is not None and not isinstance(app_headers, Mapping):
        return [_bad(line_no, "properties.headers is not an object")]
    props = {name: original[name] for name in PROPERTY_NAMES if name in original}

    routing_keys = entry.get("routing_keys")
    routing_key = str(routing_keys[0]) if isinstance(routing_keys, list) and routing_keys else ""
    connection = str(entry.get("connection") or "")
    vhost, user, node = (_text(entry.get(k)) for k in ("vhost", "user", "node"))
    channel = entry.get("channel")
    is_deliver = kind_text == "received"
    queue = entry.get("queue")

    return traced_records(
        source=SOURCE,
        time=when,
        connection=connection,
        user=user,
        vhost=vhost,
        node=node,
        channel=channel,
        deliver=is_deliver,
        exchange=str(entry.get("exchange") or ""),
        routing_key=routing_key,
        properties=props,
        headers=app_headers,
        body=body,
        queue=str(queue) if is_deliver and isinstance(queue, str) else None,
        seen_connections=seen_connections,
    )


def read_tracing_log(lines: Iterable[bytes]) -> Iterator[Record]:
    """Records from the lines of one log file, in file order (blank lines skipped)."""
    seen: set[tuple[str, str | None, str | None, str | None]] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        yield from line_to_records(line, line_no=number, seen_connections=seen)


__all__ = ["SOURCE", "line_to_records", "read_tracing_log"]
