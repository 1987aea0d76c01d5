"""Typed records that leave the sniffer.

Every capture source (pcap file, live interface, firehose tracer) produces the same
records, so storage and inference never know where traffic came from.

* ``Observation``: one sighting of a message on the wire: a basic.publish from a
  client, a basic.deliver / basic.get-ok / basic.return from the server.
* ``ConnectionInfo``: who is talking on one AMQP connection (from connection.start-ok,
  connection.open), emitted when that is learned.
* ``Notice``: something the user should hear about once (TLS on a port, a gap in a TCP
  stream, bytes that could not be decoded), with a count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ObservationKind = Literal["publish", "deliver", "get_ok", "return"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """What the AMQP handshake (or the firehose headers) says about a connection."""

    connection: str
    """Stable key of the connection: ``"10.0.0.5:41234->10.0.0.9:5672"`` for captures,
    the firehose ``connection`` header (``"127.0.0.1:41234 -> 127.0.0.1:5672"``) otherwise."""
    time: float
    client_properties: Mapping[str, Any] = field(default_factory=dict)
    """From connection.start-ok: ``connection_name``, ``product``, ``platform``, ``version``…"""
    user: str | None = None
    vhost: str | None = None
    node: str | None = None
    """RabbitMQ node name, known for firehose traces."""


@dataclass(slots=True, kw_only=True)
class Observation:
    """One publish, delivery, get-ok or return of a message.

    Treat it as immutable (``dataclasses.replace`` makes a changed copy). It is not
    declared frozen because one is built per message: a frozen ``__init__`` sets each of
    the 18 fields through ``object.__setattr__``, which measured 12% of all the
    instructions the pcap decoder runs per message (callgrind, bench capture).
    """

    time: float
    """Seconds since the epoch (capture timestamp of the frame that completed the message)."""
    source: str
    """Where it was seen: ``"pcap"``, ``"iface"``, ``"firehose"``."""
    connection: str
    """Same key as ``ConnectionInfo.connection``."""
    channel: int
    kind: ObservationKind
    exchange: str
    """``""`` is the default exchange."""
    routing_key: str
    properties: Mapping[str, Any]
    """AMQP basic properties by their snake-case names (``content_type``, ``delivery_mode``,
    ``reply_to``, ``correlation_id``, ``timestamp`` as an int of seconds…), headers excluded."""
    headers: Mapping[str, Any] | None
    """The ``headers`` table, decoded (decimals as ``decimal.Decimal``, byte arrays as bytes)."""
    body: bytes
    vhost: str | None = None
    queue: str | None = None
    """For deliveries and get-ok: the queue consumed from, when known."""
    redelivered: bool = False
    consumer_tag: str | None = None
    delivery_tag: int | None = None
    reply_code: int | None = None
    """For basic.return."""
    reply_text: str | None = None
    body_size: int | None = None
    """The body size the content header announced; ``len(body)`` unless the source cut it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """A condition worth one line to the user, and a count for the capture run."""

    code: str
    """Short machine name: ``"tls"``, ``"tcp_gap"``, ``"garbage"``, ``"resync"``…"""
    message: str
    connection: str | None = None
    count: int = 1


Record = Observation | ConnectionInfo | Notice
