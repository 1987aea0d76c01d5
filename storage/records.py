"""Typed records that leave the store (what inference and reports read)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LENGTH_CLASSES: tuple[tuple[int, int | None], ...] = (
    (0, 0),
    (1, 7),
    (8, 15),
    (16, 31),
    (32, 63),
    (64, 127),
    (128, 255),
    (256, None),
)
"""Length classes of a redacted value, as ``(lowest, highest)`` (``None``: no upper end).

Powers of two: a secret's exact length narrows a guess (a 9-character password is one
of far fewer strings than "8 to 15 characters"), while a class still tells a reader
what the field carries: a short password, a 32-character key, a 128-255 character
token. ``0`` stays apart because an empty secret is worth knowing about; everything
from 256 up (PKI tokens, PEM keys) is one class."""


def length_class(n: int) -> str:
    """The label of the class holding length ``n`` (``"0"``, ``"8-15"``, ``"256+"``)."""
    return _LABEL_OF[n] if n < len(_LABEL_OF) else _OPEN_LABEL


def class_label(low: int, high: int | None) -> str:
    """``"8-15"`` for a range, ``"0"`` for a single length, ``"256+"`` when open."""
    if high is None:
        return f"{low}+"
    return str(low) if low == high else f"{low}-{high}"


def class_bounds(label: str) -> tuple[int, int | None]:
    """The ``(lowest, highest)`` lengths of a label ``length_class`` or ``class_label``
    made; ``ValueError`` for anything else."""
    if label.endswith("+"):
        return int(label[:-1]), None
    low, dash, high = label.partition("-")
    return (int(low), int(high)) if dash else (int(low), int(low))


_OPEN_LABEL = class_label(*LENGTH_CLASSES[-1])
_LABEL_OF = tuple(
    class_label(low, high)
    for low, high in LENGTH_CLASSES[:-1]
    for _ in range(low, (high or 0) + 1)
)
"""The label of every length below the open class, looked up (redaction runs per message)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Redaction:
    """One value replaced by ``"<redacted>"`` before the body was written.

    Only a shape hint is kept: the JSON type, a format recognised in the value and the
    class of its length, never the length itself (see ``busdoc.storage.redact``).
    """

    path: str
    """JSON-pointer-like path inside the body (``/oslo.message/_context_auth_token``,
    with ``/oslo.message`` meaning "inside the JSON string of that key"), or
    ``headers/<name>`` / ``properties/<name>`` for AMQP metadata."""
    json_type: str
    """The original JSON type: ``string``, ``integer``, ``number``, ``boolean``, ``object``,
    ``array``, ``null``."""
    format: str | None = None
    """What the string looked like (``fernet``, ``jwt``, ``uuid``, ``url``…), or None."""
    length_class: str | None = None
    """``length_class()`` of the original length (characters for strings, items for
    arrays and objects); None for numbers."""


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
