"""The oslo.messaging wire contract over RabbitMQ: what a client sends besides the arguments.

This is the rabbit driver's fixed protocol (``oslo_messaging/_drivers/amqpdriver.py`` and
``impl_rabbit.py``), the same for every service, written once so every report format says
the same thing. Only the request context differs per service; the catalog infers it
(``contexts``) and ``request_schema`` merges it in as ``_context_<key>`` properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OSLO_VERSION = "2.0"

ENVELOPE_PROSE = (
    "Every RPC request, reply and notification body is a JSON object "
    '`{"oslo.version": "2.0", "oslo.message": "<JSON text>"}`: the message itself is '
    "serialised to a JSON string and carried in `oslo.message` (content type "
    "`application/json`, UTF-8)."
)

EXCHANGE_PROSE = [
    "**call** and **cast**: publish to the service's control exchange (type `topic`, "
    "named after the service, e.g. `nova`) with routing key `<topic>` (any server) "
    "or `<topic>.<server>` (one server).",
    "**fanout**: publish to exchange `<topic>_fanout` (type `fanout`); every server's "
    "`<topic>_fanout_<uuid>` queue gets a copy.",
    "**reply** (calls only): the caller declares its own queue `reply_<uuid4 hex>` and names "
    "it in `_reply_q`; the server publishes the reply to the default exchange (`\"\"`, "
    "direct) with that queue name as routing key, echoing `_msg_id`.",
    "**notifications**: publish to the control exchange with routing key "
    "`<topic>.<priority>` (e.g. `notifications.info`).",
]

REQUEST_KEYS: list[tuple[str, str, str]] = [
    ("method", "always", "Name of the method to run on the server."),
    ("args", "always", "Object of keyword arguments (schema per method below)."),
    ("version", "always", "Version of the method's API the caller speaks (`1.1`); the server "
                          "rejects versions it does not support."),
    ("namespace", "when set", "Endpoint namespace (omitted for the default one)."),
    ("_msg_id", "call", "uuid4 hex; the reply echoes it."),
    ("_reply_q", "call", "Name of the caller's reply queue, `reply_<uuid4 hex>`."),
    ("_timeout", "call", "Seconds the caller waits (null when it has no call monitor)."),
    ("_unique_id", "always", "uuid4 hex per message, for duplicate detection."),
    ("_context_<key>", "always", "The request context, one key per context field "
                                 "(schema per service below)."),
]

REPLY_KEYS: list[tuple[str, str]] = [
    ("result", "The method's return value (schema per method), null on failure."),
    ("failure", "null on success; else a JSON string "
                "`{\"class\", \"module\", \"message\", \"tb\", \"args\", \"kwargs\"}`."),
    ("ending", "true on the final reply message (older releases send the result with "
               "`ending: false`, then an empty final one)."),
    ("_msg_id", "The `_msg_id` of the call."),
    ("_unique_id", "uuid4 hex per message."),
]

NOTIFICATION_KEYS: list[tuple[str, str]] = [
    ("message_id", "uuid4 of the notification."),
    ("publisher_id", "Who sent it, e.g. `compute.host-a`."),
    ("event_type", "e.g. `compute.instance.update` (schema of `payload` per event below)."),
    ("priority", "`INFO`, `ERROR`, … (also the routing key suffix, lower case)."),
    ("payload", "The event's data."),
    ("timestamp", "`YYYY-MM-DD HH:MM:SS.ffffff`, UTC, no zone."),
    ("_context_<key>", "The request context (schema per service)."),
]


def _uuid_hex(description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": description}


def envelope_schema(message_ref: str, title: str) -> dict[str, Any]:
    """The ``oslo.version``/``oslo.message`` wrapper around the message at ``message_ref``."""
    return {
        "title": title,
        "description": ENVELOPE_PROSE,
        "type": "object",
        "properties": {
            "oslo.version": {"title": "OsloVersion", "const": OSLO_VERSION},
            "oslo.message": {
                "type": "string",
                "description": "The message, serialised as JSON text.",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": message_ref},
            },
        },
        "required": ["oslo.message", "oslo.version"],
    }


def _context_properties(context: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    if not context:
        return {}, []
    props = {f"_context_{k}": v for k, v in (context.get("properties") or {}).items()}
    required = [f"_context_{k}" for k in context.get("required") or ()]
    return props, required


def request_schema(title: str, context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The decoded ``oslo.message`` of a call/cast/fanout; ``context`` is a cleaned schema."""
    ctx_props, ctx_required = _context_properties(context)
    props: dict[str, Any] = {
        "method": {"type": "string", "description": REQUEST_KEYS[0][2]},
        "args": {"type": "object", "description": REQUEST_KEYS[1][2]},
        "version": {"type": "string", "description": REQUEST_KEYS[2][2]},
        "namespace": {"type": ["string", "null"], "description": REQUEST_KEYS[3][2]},
        "_msg_id": _uuid_hex("Calls only: " + REQUEST_KEYS[4][2]),
        "_reply_q": {"type": "string", "pattern": "^reply_[0-9a-f]{32}$",
                     "description": "Calls only: " + REQUEST_KEYS[5][2]},
        "_timeout": {"type": ["number", "null"],
                     "description": "Calls only: " + REQUEST_KEYS[6][2]},
        "_unique_id": _uuid_hex(REQUEST_KEYS[7][2]),
        **ctx_props,
    }
    return {
        "title": title,
        "description": "An RPC request as carried in `oslo.message`.",
        "type": "object",
        "properties": dict(sorted(props.items())),
        "required": sorted(["args", "method", "_unique_id", *ctx_required]),
    }


def reply_schema(title: str) -> dict[str, Any]:
    """The decoded ``oslo.message`` of a reply (``result`` typed per method elsewhere)."""
    return {
        "title": title,
        "description": "A reply to a call, as carried in `oslo.message`; published to the "
                       "default exchange with the call's `_reply_q` as routing key.",
        "type": "object",
        "properties": {
            "result": {"description": REPLY_KEYS[0][1]},
            "failure": {"type": ["string", "null"], "description": REPLY_KEYS[1][1],
                        "contentMediaType": "application/json",
                        "contentSchema": failure_schema()},
            "ending": {"type": "boolean", "description": REPLY_KEYS[2][1]},
            "_msg_id": _uuid_hex(REPLY_KEYS[3][1]),
            "_unique_id": _uuid_hex(REPLY_KEYS[4][1]),
        },
        "required": ["_msg_id", "_unique_id", "ending", "failure", "result"],
    }


def failure_schema() -> dict[str, Any]:
    """``failure`` once decoded: oslo's ``serialize_remote_exception``."""
    return {
        "title": "OsloFailure",
        "type": "object",
        "properties": {
            "class": {"type": "string", "description": "Exception class name."},
            "module": {"type": "string", "description": "Python module of the class."},
            "message": {"type": "string"},
            "tb": {"type": "array", "items": {"type": "string"},
                   "description": "Server-side traceback lines."},
            "args": {"type": "array"},
            "kwargs": {"type": "object"},
        },
        "required": ["class", "message", "module"],
    }


def notification_schema(title: str, context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The decoded ``oslo.message`` of a notification (``payload`` typed per event)."""
    ctx_props, ctx_required = _context_properties(context)
    props: dict[str, Any] = {
        "message_id": {"type": "string", "format": "uuid",
                       "description": NOTIFICATION_KEYS[0][1]},
        "publisher_id": {"type": "string", "description": NOTIFICATION_KEYS[1][1]},
        "event_type": {"type": "string", "description": NOTIFICATION_KEYS[2][1]},
        "priority": {"type": "string", "description": NOTIFICATION_KEYS[3][1]},
        "payload": {"description": NOTIFICATION_KEYS[4][1]},
        "timestamp": {"type": "string", "description": NOTIFICATION_KEYS[5][1],
                      "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$"},
        **ctx_props,
    }
    return {
        "title": title,
        "description": "A notification as carried in `oslo.message`.",
        "type": "object",
        "properties": dict(sorted(props.items())),
        "required": sorted(["event_type", "message_id", "payload", "priority",
                            "publisher_id", "timestamp", *ctx_required]),
    }
