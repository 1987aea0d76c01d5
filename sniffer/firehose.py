"""Decode RabbitMQ firehose trace messages into sniffer records.

With tracing on for a vhost, each node copies every publish and every delivery in that
vhost to the topic exchange ``amq.rabbitmq.trace`` (``rabbit_trace.erl``):

* routing key ``publish.<exchange>`` (``publish.`` for the default exchange) or
  ``deliver.<queue>``;
* the body is the original body, byte for byte;
* the trace's own properties carry only ``headers``: ``exchange_name``, ``routing_keys``
  (the routing key followed by any CC/BCC keys), ``properties`` (the original basic
  properties as a table, unset ones left out, the original headers nested under
  ``headers``), ``node``, ``vhost``, ``connection`` (``"ip:port -> ip:port"`` of the
  client), ``channel``, ``user``; publishes add ``routed_queues``, deliveries add
  ``redelivered`` (0 or 1).

This module is pure: it takes what pika hands a consumer and returns records, so the
agent, a replay of stored traces and the tests all share it. A basic.get and a
basic.deliver both trace as ``deliver.<queue>``, so both become ``deliver`` observations.
"""

from __future__ import annotations

import time as _time
from collections.abc import Mapping
from typing import Any

from busdoc.sniffer.records import ConnectionInfo, Notice, Observation, Record

TRACE_EXCHANGE = "amq.rabbitmq.trace"
SOURCE = "firehose"

_PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
    "cluster_id",
)
"""AMQP 0-9-1 basic properties other than ``headers`` (spec section 4.2.6.1 / P_basic)."""


def _text(value: Any) -> str:
    """pika decodes long strings as str when they are UTF-8, as bytes otherwise."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _undecodable(reason: str, routing_key: str) -> list[Record]:
    return [
        Notice(
            code="firehose_undecodable",
            message=f"trace message {routing_key!r} skipped: {reason}",
        )
    ]


def trace_to_records(
    method: Any,
    properties: Any,
    body: bytes,
    *,
    time: float | None = None,
    seen_connections: set[tuple[str, str | None, str | None, str | None]] | None = None,
) -> list[Record]:
    """Turn one trace message into an ``Observation`` (and a ``ConnectionInfo``).

    ``method`` is pika's ``Basic.Deliver``/``Basic.GetOk`` (only ``routing_key`` is read),
    ``properties`` its ``BasicProperties``. ``seen_connections`` is the caller's memory of
    (connection, user, vhost, node) already announced: a ``ConnectionInfo`` is emitted the
    first time one is seen (always, when it is ``None``). A message that is not a trace
    becomes a ``Notice``, never an exception: one odd message must not stop a capture.
    """
    when = _time.time() if time is None else time
    routing_key = _text(getattr(method, "routing_key", ""))
    action, dot, target = routing_key.partition(".")
    if not dot or action not in ("publish", "deliver"):
        return _undecodable("routing key is not publish.<exchange> or deliver.<queue>", routing_key)
    headers = getattr(properties, "headers", None)
    if not isinstance(headers, Mapping) or "exchange_name" not in headers:
        return _undecodable("no exchange_name header", routing_key)

    original = headers.get("properties") or {}
    if not isinstance(original, Mapping):
        return _undecodable("properties header is not a table", routing_key)
    props = {name: original[name] for name in _PROPERTY_NAMES if name in original}
    app_headers = original.get("headers")
    if app_headers is not None and not isinstance(app_headers, Mapping):
        return _undecodable("original headers are not a table", routing_key)

    routing_keys = headers.get("routing_keys") or []
    if isinstance(routing_keys, list | tuple) and routing_keys:
        original_key = _text(routing_keys[0])
    else:
        original_key = ""
    connection = _text(headers.get("connection", ""))
    vhost = _text(headers["vhost"]) if headers.get("vhost") is not None else None
    user = _text(headers["user"]) if headers.get("user") is not None else None
    node = _text(headers["node"]) if headers.get("node") is not None else None
    channel = headers.get("channel", 0)
    is_deliver = action == "deliver"

    records: list[Record] = []
    key = (connection, user, vhost, node)
    if seen_connections is None or key not in seen_connections:
        if seen_connections is not None:
            seen_connections.add(key)
        records.append(
            ConnectionInfo(connection=connection, time=when, user=user, vhost=vhost, node=node)
        )
    records.append(
        Observation(
            time=when,
            source=SOURCE,
            connection=connection,
            channel=channel if isinstance(channel, int) else 0,
            kind="deliver" if is_deliver else "publish",
            exchange=_text(headers["exchange_name"]),
            routing_key=original_key,
            properties=props,
            headers=dict(app_headers) if app_headers is not None else None,
            body=bytes(body),
            vhost=vhost,
            queue=target if is_deliver else None,
            redelivered=bool(headers.get("redelivered", 0)) if is_deliver else False,
            body_size=len(body),
        )
    )
    return records


__all__ = ["SOURCE", "TRACE_EXCHANGE", "trace_to_records"]
