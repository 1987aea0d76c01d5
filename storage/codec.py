"""JSON-safe encoding of AMQP properties and header tables, for the store's JSON columns.

AMQP field tables hold values JSON has no type for. They are stored as one-key tagged
objects, so reading them back gives the very values the decoder produced:

====================  ===========================================
Python value          stored as
====================  ===========================================
``decimal.Decimal``   ``{"$decimal": "12.50"}``
``bytes``             ``{"$bytes": "<base64>"}``
``datetime``          ``{"$datetime": "2024-05-01T12:00:00+00:00"}``
a dict that happens   ``{"$dict": {...}}`` (escaped, so it is not
to look like a tag    read back as one)
====================  ===========================================

Keys are sorted, so equal tables encode to equal bytes (the message identity compares
them as bytes).

The ``redactions`` column holds ``[[path, json_type, format, length_class], ...]``
(``encode_redactions``); stores of schema version 1 held ``[path, json_type, length]``,
read back with the length turned into its class.
"""

from __future__ import annotations

import base64
import datetime
import decimal
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from busdoc.storage.records import Redaction, length_class

_TAGS = frozenset({"$decimal", "$bytes", "$datetime", "$dict"})
_OPTS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime | datetime.date):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Mapping):
        return _escape(dict(value))
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a JSON column")


def _escape(value: dict[Any, Any]) -> Any:
    if len(value) == 1 and next(iter(value)) in _TAGS:
        return {"$dict": value}
    return value


def _needs_escape(value: Any) -> bool:
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in _TAGS:
            return True
        return any(_needs_escape(v) for v in value.values())
    if isinstance(value, list):
        return any(_needs_escape(v) for v in value)
    return False


def _escaped(value: Any) -> Any:
    if isinstance(value, dict):
        inner = {k: _escaped(v) for k, v in value.items()}
        return _escape(inner)
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def encode_table(value: Mapping[str, Any] | None) -> bytes | None:
    """Encode a properties mapping or header table; None stays None."""
    if value is None:
        return None
    raw = orjson.dumps(value, default=_default, option=_OPTS)
    # Only a table that mentions "$ can hold a dict needing escape: check only then
    # (``find``: ``in`` on bytes first tries its operand as an integer, at a cost).
    if raw.find(b'"$') >= 0 and _needs_escape(value):
        raw = orjson.dumps(_escaped(dict(value)), default=_default, option=_OPTS)
    return compact(raw)


def compact(raw: bytes) -> bytes:
    """A tight copy of an orjson result that will be kept (rows in a batch, match keys).

    orjson hands back its whole output buffer, many times the JSON's length (measured with
    tracemalloc, orjson 3.13: 4 KiB behind a 108-byte result, 65 KiB behind 5 KB, 16 MiB
    behind 2 MB). A batch of redacted bodies held that way cost more memory than the
    bodies themselves; the copy costs one ``memcpy``.
    """
    return bytes(memoryview(raw))


def decode_table(raw: bytes | str | None) -> Any:
    """Read back what ``encode_table`` wrote."""
    if raw is None:
        return None
    doc = orjson.loads(raw)
    if _has_tag(raw):
        return _untag(doc)
    return doc


def _has_tag(raw: bytes | str) -> bool:
    probe = raw.encode() if isinstance(raw, str) else raw
    return b'"$' in probe


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$bytes":
                return base64.b64decode(inner)
            if key == "$decimal":
                return decimal.Decimal(inner)
            if key == "$datetime":
                return datetime.datetime.fromisoformat(inner)
            if key == "$dict":
                return {k: _untag(v) for k, v in inner.items()}
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


def encode_redactions(redactions: Iterable[Redaction]) -> bytes:
    """The ``redactions`` column: ``[[path, json_type, format, length_class], ...]``."""
    return compact(
        orjson.dumps([(r.path, r.json_type, r.format, r.length_class) for r in redactions])
    )


def decode_redactions(raw: bytes | str | None) -> tuple[Redaction, ...]:
    """Read back ``encode_redactions``, and the ``[path, json_type, length]`` rows of
    schema version 1, whose exact length is turned into its class on the way."""
    if not raw:
        return ()
    out = []
    for row in orjson.loads(raw):
        if len(row) == 3:
            path, json_type, length = row
            fmt = None
            cls = length_class(length) if isinstance(length, int) else None
        else:
            path, json_type, fmt, cls = row
        out.append(Redaction(path=path, json_type=json_type, format=fmt, length_class=cls))
    return tuple(out)
