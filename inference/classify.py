"""What a stored message is: decoding its body and naming the interface it belongs to.

oslo.messaging over RabbitMQ (``oslo_messaging/_drivers/impl_rabbit.py``, ``amqpdriver.py``):

* rpc **call**: topic exchange = control exchange (``nova``, ``openstack``), routing key
  ``topic`` or ``topic.server``, body with ``method``, ``args``, ``_msg_id`` and ``_reply_q``.
* rpc **cast**: the same without ``_msg_id``; **fanout**: exchange ``<topic>_fanout`` (the
  control exchange is not on the wire).
* **reply**: published to ``reply_<uuid>`` (the default exchange, or a direct exchange of
  that name in older releases) with ``_msg_id``, ``result``, ``failure``, ``ending``;
  ``failure`` is a JSON string (``class``, ``module``, ``message``, ``tb``).
* **notification**: ``event_type``, ``payload``, ``priority``, ``publisher_id``, routing key
  ``<topic>.<priority>``.
* Messages may sit in the 2.0 envelope ``{"oslo.version": "2.0", "oslo.message": "<JSON>"}``;
  the request context is flattened into ``_context_<key>`` entries.

Anything else is **other**: Celery task messages (``task`` header, or a protocol 1 body
with ``task`` and ``id``), plain JSON (or msgpack / YAML, read with the safe loader), or
an opaque body described by its content type. Python pickles
(``application/x-python-serialize``) are never unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from busdoc.errors import InputError
from busdoc.inference.schema import Redacted, is_data_key
from busdoc.sniffer import body as body_codec
from busdoc.storage.records import Redaction, StoredMessage

Kind = Literal["call", "cast", "fanout", "reply", "notification", "celery", "json", "opaque"]

NOTIFICATION_PRIORITIES = frozenset(
    {"audit", "debug", "info", "warn", "warning", "error", "critical", "sample"}
)
CONTEXT_PREFIX = "_context_"
_ENVELOPE_KEYS = frozenset({"method", "args", "version", "namespace", "_msg_id", "_reply_q",
                            "_unique_id", "_timeout"})
_OPAQUE_TYPES = ("application/x-python-serialize", "application/python-pickle")


class Opaque:
    """Marker for a body busdoc does not (or must not) parse."""

    __slots__ = ()


OPAQUE = Opaque()


@dataclass(slots=True)
class Decoded:
    """A body as inference sees it."""

    value: Any
    """The parsed body (oslo envelope unwrapped), or ``OPAQUE``."""
    status: Literal["ok", "opaque", "undecodable", "truncated"]
    enveloped: bool = False


def _looks_json(content_type: str | None, body: bytes) -> bool:
    if content_type:
        ct = content_type.lower()
        if "json" in ct:
            return True
        if not ct.startswith("text/"):
            return False
    head = body[:1]
    return head in (b"{", b"[", b'"')


_MSGPACK_TYPES = ("application/x-msgpack", "application/msgpack", "application/vnd.msgpack")
_YAML_TYPES = ("application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml")


def _decode_other(content_type: str | None, raw: bytes) -> tuple[Any, bool] | None:
    """msgpack and YAML bodies (kombu serializers), as JSON-like values.

    None when the content type is neither (or the library is missing); ``(None, False)``
    when the body does not parse. YAML uses the safe loader only: a YAML body must never
    construct Python objects.
    """
    ct = (content_type or "").lower()
    try:
        if ct in _MSGPACK_TYPES:
            import msgpack

            value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        elif ct in _YAML_TYPES:
            import yaml

            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            value = yaml.load(raw, Loader=loader)  # noqa: S506 - a safe loader
        else:
            return None
    except ImportError:
        return None
    except Exception:  # noqa: BLE001 - any parser failure means "not decodable"
        return (None, False)
    try:
        return (_json_like(value, 0), True)
    except ValueError:
        return (None, False)


def _json_like(v: Any, depth: int) -> Any:
    """Keys as strings, bytes and dates as strings; refuse nesting past the JSON limit."""
    if depth > body_codec.LIMITS.max_depth:
        raise ValueError("nested too deep")
    if isinstance(v, dict):
        return {str(k): _json_like(x, depth + 1) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [_json_like(x, depth + 1) for x in v]
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


_PLAIN_ENCODINGS = frozenset({"", "utf-8", "UTF-8", "utf8", "identity", "binary"})
"""``content_encoding`` values that never mean a compression (``compression_of``)."""


_NESTED = (dict, list)


def _too_deep(raw: bytes | str) -> bool:
    """Whether a JSON text orjson parsed is nested past the limit ``body_codec.parse_json``
    enforces. Counting ``[`` and ``{`` bounds the depth at C speed; only a text with
    more openers than the limit is parsed again to be measured."""
    if isinstance(raw, str):
        openers = raw.count("[") + raw.count("{")
    else:
        openers = raw.count(b"[") + raw.count(b"{")
    if openers <= body_codec.LIMITS.max_depth:
        return False
    try:
        body_codec.parse_json(raw)
    except InputError:
        return True
    return False


def decode_body(message: StoredMessage) -> Decoded:
    """Parse a stored body: content encoding, JSON, oslo 2.0 envelope, redaction markers.

    Decompression and parsing go through ``busdoc.sniffer.body``, which bounds the output
    of a decompression (zip bombs) and the nesting depth (the accumulators recurse).
    """
    if message.truncated:
        return Decoded(OPAQUE, "truncated")
    props = message.properties
    content_type = props.get("content_type")
    if content_type and content_type.lower() in _OPAQUE_TYPES:
        return Decoded(OPAQUE, "opaque")
    encoding = props.get("content_encoding")
    if encoding is None or encoding in _PLAIN_ENCODINGS:
        raw = message.body
    else:
        try:
            raw = body_codec.decode_content(message.body, encoding)
        except InputError:
            return Decoded(OPAQUE, "opaque")
    if not _looks_json(content_type, raw):
        other = _decode_other(content_type, raw)
        if other is None:
            return Decoded(OPAQUE, "opaque")
        return Decoded(other[0], "ok") if other[1] else Decoded(OPAQUE, "undecodable")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Decoded(OPAQUE, "undecodable")
    enveloped = False
    if type(value) is dict:
        inner = value.get(body_codec.OSLO_MESSAGE_KEY)
        if type(inner) is str and body_codec.OSLO_VERSION_KEY in value:
            # an envelope of two scalars is one level deep: no need to count its openers
            if not (len(value) == 2 and type(value[body_codec.OSLO_VERSION_KEY]) not in _NESTED
                    ) and _too_deep(raw):
                return Decoded(OPAQUE, "undecodable")
            try:
                value = orjson.loads(inner)
            except orjson.JSONDecodeError:
                return Decoded(OPAQUE, "undecodable")
            if _too_deep(inner):
                return Decoded(OPAQUE, "undecodable")
            enveloped = True
    if not enveloped and _too_deep(raw):
        return Decoded(OPAQUE, "undecodable")
    if message.redactions:
        value = apply_redactions(value, message.redactions, enveloped)
    return Decoded(value, "ok", enveloped)


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def apply_redactions(value: Any, redactions: Sequence[Redaction], enveloped: bool) -> Any:
    """Put a ``Redacted`` marker where the store replaced a secret, so the field keeps
    its original type and shape hint in the schema (not the ``"<redacted>"`` string)."""
    for r in redactions:
        if not r.path.startswith("/"):
            continue  # headers/… and properties/… are not in the body
        parts = _pointer(r.path)
        if enveloped:
            if not parts or parts[0] != "oslo.message":
                continue
            parts = parts[1:]
        if not parts:
            continue
        node = value
        for p in parts[:-1]:
            if type(node) is dict:
                node = node.get(p)
            elif type(node) is list and p.isdigit() and int(p) < len(node):
                node = node[int(p)]
            else:
                node = None
                break
        last = parts[-1]
        marker = Redacted(r.json_type, r.format, r.length_class)
        if type(node) is dict and last in node:
            node[last] = marker
        elif type(node) is list and last.isdigit() and int(last) < len(node):
            node[int(last)] = marker
    return value


@dataclass(slots=True)
class Classified:
    """One message, named: its kind and the identity of its interface."""

    kind: Kind
    body: Any = None
    exchange: str | None = None
    topic: str | None = None
    server: str | None = None
    method: str | None = None
    namespace: str | None = None
    version: str | None = None
    msg_id: str | None = None
    event_type: str | None = None
    priority: str | None = None
    publisher_id: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, str | None] = field(default_factory=dict)


_UNSEEN: Any = object()
_context_names: dict[str, str | None] = {}
"""Body key → context name (None for other keys). Bodies of one deployment use a few
dozen keys, so a lookup replaces a prefix test and a slice per key; bounded."""
_MAX_CONTEXT_NAMES = 4096


def split_context(body: dict[str, Any]) -> dict[str, Any]:
    """The flattened oslo request context, ``_context_`` prefix stripped."""
    names = _context_names
    out: dict[str, Any] = {}
    for k, v in body.items():
        name = names.get(k, _UNSEEN)
        if name is _UNSEEN:
            name = k[9:] if k.startswith(CONTEXT_PREFIX) else None
            if len(names) < _MAX_CONTEXT_NAMES:
                names[k] = name
        if name is not None:
            out[name] = v
    return out


def split_topic(routing_key: str) -> tuple[str, str | None]:
    """``compute.host1.example.org`` → (``compute``, ``host1.example.org``): oslo joins
    topic and server with the first dot."""
    topic, dot, server = routing_key.partition(".")
    return topic, (server if dot else None)


def routing_pattern(routing_key: str) -> str:
    """Routing key with data-like segments (uuids, numbers, hosts) replaced by ``*``."""
    return ".".join("*" if is_data_key(p) else p for p in routing_key.split("."))


def _str_or_none(v: Any) -> str | None:
    return v if type(v) is str else (None if v is None else str(v))


def classify(message: StoredMessage, decoded: Decoded) -> Classified:
    """Name the interface a message belongs to (module docstring)."""
    body = decoded.value
    exchange = message.exchange
    rk = message.routing_key
    if type(body) is dict:
        method = body.get("method")
        if type(method) is str and ("args" in body or decoded.enveloped):
            if exchange.endswith("_fanout"):
                kind: Kind = "fanout"
                topic, server = exchange[:-7], None
                ex: str | None = None
            else:
                kind = "call" if "_msg_id" in body else "cast"
                topic, dot, server_ = rk.partition(".")  # split_topic, inline
                server = server_ if dot else None
                ex = exchange
            namespace = body.get("namespace")
            version = body.get("version")
            msg_id = body.get("_msg_id")
            return Classified(
                kind, body, ex, topic, server, method,
                namespace if namespace is None or type(namespace) is str else str(namespace),
                version if version is None or type(version) is str else str(version),
                msg_id if msg_id is None or type(msg_id) is str else str(msg_id),
                context=split_context(body),
            )
        if "_msg_id" in body and ("result" in body or "failure" in body or "ending" in body):
            return Classified("reply", body, exchange=exchange, msg_id=str(body["_msg_id"]))
        if "event_type" in body and "payload" in body and (
            "priority" in body or "publisher_id" in body
        ):
            topic, _, suffix = rk.rpartition(".")
            if not topic or suffix.lower() not in NOTIFICATION_PRIORITIES:
                topic = rk
            return Classified(
                "notification", body, exchange=exchange, topic=topic,
                event_type=str(body["event_type"]),
                priority=_str_or_none(body.get("priority")),
                publisher_id=_str_or_none(body.get("publisher_id")),
                context=split_context(body),
            )
        if "task" in body and "id" in body and type(body.get("task")) is str:
            return Classified("celery", body, identity={"task": body["task"]})
    task = (message.headers or {}).get("task")
    if isinstance(task, str | bytes):
        name = task.decode("utf-8", "replace") if isinstance(task, bytes) else task
        return Classified("celery", None if body is OPAQUE else body, identity={"task": name})
    type_prop = _str_or_none(message.properties.get("type"))
    identity: dict[str, str | None] = {
        "exchange": exchange,
        "routing_key": routing_pattern(rk),
        "type": type_prop,
    }
    if body is OPAQUE:
        identity["content_type"] = _str_or_none(message.properties.get("content_type"))
        return Classified("opaque", None, identity=identity)
    return Classified("json", body, identity=identity)


def is_envelope_key(key: str) -> bool:
    """Keys of the oslo rpc envelope itself (not arguments, not context)."""
    return key in _ENVELOPE_KEYS


def parse_failure(failure: Any) -> tuple[str, str | None, str | None]:
    """(exception class, module, message) of an oslo failure reply.

    oslo's ``serialize_remote_exception`` sends a JSON string with ``class``, ``module``,
    ``message``, ``tb``, ``args``, ``kwargs``.
    """
    data: Any = failure
    if type(failure) is str:
        try:
            data = orjson.loads(failure)
        except orjson.JSONDecodeError:
            return ("?", None, failure[:200])
    if isinstance(data, Mapping):
        message = data.get("message")
        return (
            str(data.get("class") or "?"),
            _str_or_none(data.get("module")),
            None if message is None else str(message)[:200],
        )
    return ("?", None, str(data)[:200])
