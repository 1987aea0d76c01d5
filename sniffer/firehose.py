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

import fnmatch
import hashlib
import re
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from busdoc.errors import InputError
from busdoc.sniffer.body import parse_json, unwrap_oslo
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation, Record

TRACE_EXCHANGE = "amq.rabbitmq.trace"
SOURCE = "firehose"

PROPERTY_NAMES = (
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
    props = {name: original[name] for name in PROPERTY_NAMES if name in original}
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

    return traced_records(
        source=SOURCE,
        time=when,
        connection=connection,
        user=user,
        vhost=vhost,
        node=node,
        channel=channel,
        deliver=is_deliver,
        exchange=_text(headers["exchange_name"]),
        routing_key=original_key,
        properties=props,
        headers=app_headers,
        body=bytes(body),
        queue=target if is_deliver else None,
        redelivered=bool(headers.get("redelivered", 0)) if is_deliver else False,
        seen_connections=seen_connections,
    )


ConnectionKey = tuple[str, str | None, str | None, str | None]


def traced_records(
    *,
    source: str,
    time: float,
    connection: str,
    user: str | None,
    vhost: str | None,
    node: str | None,
    channel: Any,
    deliver: bool,
    exchange: str,
    routing_key: str,
    properties: Mapping[str, Any],
    headers: Mapping[str, Any] | None,
    body: bytes,
    queue: str | None,
    redelivered: bool = False,
    seen_connections: set[ConnectionKey] | None = None,
) -> list[Record]:
    """The observation of one traced message, after a ``ConnectionInfo`` the first time
    its connection (with user, vhost and node) is seen. Shared by the firehose and the
    rabbitmq_tracing log reader, which trace the same events in two formats."""
    records: list[Record] = []
    key = (connection, user, vhost, node)
    if seen_connections is None or key not in seen_connections:
        if seen_connections is not None:
            seen_connections.add(key)
        records.append(
            ConnectionInfo(connection=connection, time=time, user=user, vhost=vhost, node=node)
        )
    records.append(
        Observation(
            time=time,
            source=source,
            connection=connection,
            channel=channel if isinstance(channel, int) else 0,
            kind="deliver" if deliver else "publish",
            exchange=exchange,
            routing_key=routing_key,
            properties=properties,
            headers=dict(headers) if headers is not None else None,
            body=body,
            vhost=vhost,
            queue=queue,
            redelivered=redelivered,
            body_size=len(body),
        )
    )
    return records


class RecordFilter:
    """Which observations to keep (``--include-exchange``, ``--exclude-routing-key``…).

    Patterns are shell globs (``nova*``, ``compute.*``; ``""`` the default exchange),
    matched against the exchange the message was *published* to and its routing key, so
    a publish and its deliveries are kept or dropped together. An observation is kept
    when it matches some include (or none are given) and no exclude. Connection infos
    and notices always pass.
    """

    def __init__(
        self,
        *,
        include_exchanges: Sequence[str] = (),
        exclude_exchanges: Sequence[str] = (),
        include_routing_keys: Sequence[str] = (),
        exclude_routing_keys: Sequence[str] = (),
    ) -> None:
        self._inc_x = _globs(include_exchanges)
        self._exc_x = _globs(exclude_exchanges)
        self._inc_k = _globs(include_routing_keys)
        self._exc_k = _globs(exclude_routing_keys)
        self.dropped = 0

    @property
    def active(self) -> bool:
        return any(p is not None for p in (self._inc_x, self._exc_x, self._inc_k, self._exc_k))

    def keeps(self, obs: Observation) -> bool:
        x, k = obs.exchange, obs.routing_key
        if self._inc_x is not None and not self._inc_x.match(x):
            return False
        if self._inc_k is not None and not self._inc_k.match(k):
            return False
        if self._exc_x is not None and self._exc_x.match(x):
            return False
        return not (self._exc_k is not None and self._exc_k.match(k))

    def __call__(self, records: list[Record]) -> list[Record]:
        if not self.active:
            return records
        kept: list[Record] = []
        for r in records:
            if isinstance(r, Observation) and not self.keeps(r):
                self.dropped += 1
                continue
            kept.append(r)
        return kept


def _globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), re.DOTALL)


class BodySampler:
    """Keep the body of at most ``per_minute`` messages per method per minute.

    For a busy deployment that needs every message's metadata (who calls what, how
    often) but not every body to infer schemas. The *method* is the oslo.messaging
    ``method`` or ``event_type`` inside the body when there is one, else the exchange and
    routing key. A sampled-out observation keeps its metadata and ``body_size``, and its
    body becomes empty, so the store records it as a cut body (``truncated``, full size
    kept; the stored hash is that of the empty cut). The decision is made at the
    publish and remembered by body hash for this minute and the last, so a delivery
    keeps its body exactly when its publish did and the two still pair up as one
    message; a delivery whose publish was not seen keeps its body only if that body was
    kept for another publish.
    """

    def __init__(self, per_minute: int, *, clock: Any = None) -> None:
        if per_minute < 0:
            raise InputError("--sample must be 0 or more bodies per method per minute")
        self.per_minute = per_minute
        self._clock = clock or _time.time
        self._minute = -1
        self._counts: dict[str, int] = {}
        self._kept: set[bytes] = set()
        self._kept_before: set[bytes] = set()
        self.sampled_out = 0

    def _roll(self, minute: int) -> None:
        if minute != self._minute:
            self._kept_before = self._kept if minute == self._minute + 1 else set()
            self._kept = set()
            self._counts = {}
            self._minute = minute

    def __call__(self, records: list[Record]) -> list[Record]:
        out: list[Record] = []
        for r in records:
            if isinstance(r, Observation):
                r = self.sample(r)
            out.append(r)
        return out

    def sample(self, obs: Observation) -> Observation:
        self._roll(int(obs.time // 60))
        digest = hashlib.blake2b(obs.body, digest_size=16).digest()
        if obs.kind == "publish":
            method = method_of(obs)
            n = self._counts.get(method, 0)
            if n < self.per_minute or digest in self._kept:
                self._counts[method] = n + 1
                self._kept.add(digest)
                return obs
        elif digest in self._kept or digest in self._kept_before:
            return obs
        self.sampled_out += 1
        size = obs.body_size if obs.body_size is not None else len(obs.body)
        return replace(obs, body=b"", body_size=size)


def method_of(obs: Observation) -> str:
    """The RPC method or event type a message carries, for sampling (cheap, best effort)."""
    body = obs.body
    if body[:1] == b"{" and (b'"method"' in body or b'"event_type"' in body or b"oslo." in body):
        try:
            doc = unwrap_oslo(parse_json(body))
        except InputError:
            doc = None
        if isinstance(doc, dict):
            for key in ("method", "event_type"):
                value = doc.get(key)
                if isinstance(value, str):
                    return f"{obs.exchange}\0{value}"
    if obs.exchange == "" and obs.routing_key.startswith("reply_"):
        return "\0reply_*"  # one reply queue per caller: not a method each
    return f"{obs.exchange}\0{obs.routing_key}"


__all__ = [
    "SOURCE", "TRACE_EXCHANGE", "BodySampler", "RecordFilter", "method_of", "trace_to_records",
]
