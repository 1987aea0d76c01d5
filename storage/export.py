"""One JSON object per stored message, for ``busdoc export --format jsonl``.

Plain JSON for other tools: AMQP property names in snake case with ``timestamp`` as ISO
8601 (UTC), decimals as strings, byte arrays as ``{"$bytes": "<base64>"}``, the body as
text when it is valid UTF-8 (``body``) or base64 otherwise (``body_b64``). Bodies are
exported as stored, that is redacted; ``redacted`` lists each replaced value's path and
shape hint (``type``, ``format``, ``length_class``), never its length.
"""

from __future__ import annotations

import base64
import datetime
import decimal
from collections.abc import Mapping
from typing import Any

import orjson

from busdoc.storage.records import StoredMessage


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).isoformat()


def message_to_dict(message: StoredMessage) -> dict[str, Any]:
    """The export shape of one message (see the module docstring)."""
    properties = {k: _plain(v) for k, v in message.properties.items() if k != "headers"}
    stamp = properties.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        properties["timestamp"] = _iso(stamp)
    out: dict[str, Any] = {
        "id": message.id,
        "vhost": message.vhost,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "properties": properties,
        "headers": _plain(message.headers) if message.headers is not None else None,
    }
    try:
        out["body"] = message.body.decode("utf-8")
    except UnicodeDecodeError:
        out["body_b64"] = base64.b64encode(message.body).decode("ascii")
    out["body_size"] = message.body_size
    out["body_sha256"] = message.body_sha256
    out["truncated"] = message.truncated
    out["redacted"] = [
        {"path": r.path, "type": r.json_type, "format": r.format, "length_class": r.length_class}
        for r in message.redactions
    ]
    out["observations"] = [
        {
            "kind": o.kind,
            "time": _iso(o.time),
            "connection": o.connection,
            "connection_name": o.connection_name,
            "channel": o.channel,
            "queue": o.queue,
            "redelivered": o.redelivered,
        }
        for o in message.observations
    ]
    return out


def message_to_json(message: StoredMessage) -> bytes:
    """``message_to_dict`` as one line of JSON bytes (no newline)."""
    return orjson.dumps(message_to_dict(message))
