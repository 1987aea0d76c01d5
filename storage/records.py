"""Typed records that leave the store (what inference and reports read)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Redaction:
    """One value replaced by ``"<redacted>"`` before the body was written."""

    path: str
    """JSON-pointer-like path inside the body (``/oslo.message/_context_auth_token``,
    with ``/oslo.message`` meaning "inside the JSON string of that key"), or
    ``headers/<name>`` / ``properties/<name>`` for AMQP metadata."""
    json_type: str
    """The original JSON type: ``string``, ``integer``, ``number``, ``boolean``, ``object``,
    ``array``, ``null``."""
    length: int | None
    """Length of the original value (characters for strings, items for arrays/objects)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredObservation:
    time: float
    kind: str
    """``publish``, ``deliver``, ``get_ok`` or ``return``."""
    connection: str
    channel: int
    queue: str | None
    redelivered: bool
    connection_name: str | None = None
    """``connection_name`` / product of the connection, when the handshake was seen."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredMessage:
    """One message: a publish and its deliveries, or a delivery whose publish was not seen."""

    id: int
    vhost: str | None
    exchange: str
    routing_key: str
    properties: Mapping[str, Any]
    headers: Mapping[str, Any] | None
    body: bytes
    """As stored: after redaction, and cut to the body limit when ``truncated``."""
    body_size: int
    """Full size of the (redacted) body before any cut."""
    body_sha256: str
    truncated: bool
    redactions: Sequence[Redaction]
    observations: Sequence[StoredObservation]
    first_seen: float
