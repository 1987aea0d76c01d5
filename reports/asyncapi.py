"""AsyncAPI 3.0 document of the observed interface, from a client's point of view.

A client *sends* calls, casts and fanouts and *receives* notifications and other observed
messages. Channels are (exchange, routing key) pairs with AMQP channel bindings (0.3.0:
exchange name and type); a call's operation has a ``reply`` whose address is read from the
request's ``_reply_q`` (``$message.payload#/_reply_q``) on a dynamic ``reply_<uuid>`` channel.

Message payloads are the *decoded* ``oslo.message`` (method, args, version, ``_msg_id``…):
that is what a client builds. On the wire it is wrapped in the oslo envelope, documented
once as ``components.schemas.OsloEnvelope`` and in every message's description. Payload
schemas are the generator-friendly ones of the ``jsonschema`` format, moved under
``components.schemas`` (AsyncAPI's schema dialect is draft-07 based: no ``$defs``, and a
``$ref`` with siblings is wrapped in ``allOf``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from busdoc.reports import wire
from busdoc.reports.generator import (
    clean_schema,
    def_title,
    enum_titles,
    pascal,
    retitle_enums,
    version_suffix,
)

BINDING_VERSION = "0.3.0"
Entry = Mapping[str, Any]


def _id(text: str) -> str:
    """A component/channel/operation key (``^[a-zA-Z0-9.\\-_]+$`` in the spec)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def _schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _draft07(node: Any) -> Any:
    """Wrap ``$ref`` that has siblings in ``allOf`` (draft-07 ignores siblings of ``$ref``);
    drop 2020-12's ``contentSchema``."""
    if isinstance(node, list):
        return [_draft07(v) for v in node]
    if not isinstance(node, Mapping):
        return node
    out = {k: _draft07(v) for k, v in node.items() if k not in ("contentSchema", "$schema", "$id")}
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {**out, "allOf": [{"$ref": ref}]}
    return out


class _Builder:
    def __init__(self, catalog: Mapping[str, Any]) -> None:
        self.catalog = catalog
        self.schemas: dict[str, Any] = {}
        self.suffixes: dict[str, str] = {}
        self.messages: dict[str, Any] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, Any] = {}
        self.object_titles = {e["def_key"]: def_title(e["def_key"])
                              for e in catalog.get("entries", []) if e["kind"] == "object"}

    def ref(self, def_key: str) -> str:
        return f"#/components/schemas/{self.object_titles.get(def_key) or def_title(def_key)}"

    def add_schema(self, name: str, schema: Mapping[str, Any], suffix: str = "") -> str:
        self.schemas[name] = dict(schema)
        self.suffixes[name] = suffix
        return name

    def channel(self, key: str, address: str | None, exchange: str, kind: str,
                description: str) -> dict[str, Any]:
        if key not in self.channels:
            # kind "": the catalog does not know the exchange's type, so none is claimed
            exchange_binding = {"name": exchange, **({"type": kind} if kind else {})}
            binding: dict[str, Any] = {"is": "routingKey", "exchange": exchange_binding,
                                       "bindingVersion": BINDING_VERSION}
            self.channels[key] = {"address": address, "description": description,
                                  "messages": {}, "bindings": {"amqp": binding}}
        return self.channels[key]

    def message(self, channel_key: str, message_id: str, body: dict[str, Any]) -> dict[str, str]:
        self.messages[message_id] = body
        self.channels[channel_key]["messages"][message_id] = {
            "$ref": f"#/components/messages/{message_id}"}
        return {"$ref": f"#/channels/{channel_key}/messages/{message_id}"}

    # .. per service .........................................................

    def service(self, service: str, context: Mapping[str, Any] | None) -> None:
        base = pascal(service)
        ctx = clean_schema(context or {"type": "object"}, title=base + "Context", suffix="",
                           ref=self.ref)
        self.add_schema(base + "Context", ctx)
        keys = wire.request_schema(base + "ContextKeys", ctx)
        keys["properties"] = {k: v for k, v in keys["properties"].items()
                              if k.startswith("_context_")}
        keys["required"] = [k for k in keys["required"] if k.startswith("_context_")]
        keys["description"] = "The request context as sent: `_context_<key>` per field."
        self.add_schema(base + "ContextKeys", keys)

    def reply_channel(self, service: str) -> str:
        key = _id(f"{service}.reply")
        if key not in self.channels:
            self.channels[key] = {
                "address": None,
                "description": "The caller's own reply queue `reply_<uuid4 hex>` (named in "
                               "`_reply_q`), fed through the default exchange.",
                "messages": {},
                "bindings": {"amqp": {"is": "queue", "queue": {"name": "reply_<uuid4 hex>"},
                                      "bindingVersion": BINDING_VERSION}},
            }
        return key

    # .. entries ...............................................................

    def rpc(self, entry: Entry) -> None:
        service = entry.get("exchange") or "unknown"
        suffix = version_suffix(entry.get("version"))
        name = pascal(entry["method"])
        args_name = self.add_schema(name + "Args" + suffix, clean_schema(
            entry.get("schema") or {}, title=name + "Args", suffix=suffix, ref=self.ref,
            enum_owner=name), suffix)
        reply = entry.get("reply")
        styles = sorted(entry.get("style_counts") or {}) or ["cast"]
        topic = entry["topic"]
        servers = entry.get("servers") or []
        for style in styles:
            if style == "fanout":
                ckey = _id(f"{topic}_fanout")
                self.channel(ckey, None, f"{topic}_fanout", "fanout",
                             f"Fanout exchange of topic `{topic}`: every server gets a copy; "
                             "the routing key is ignored.")
            elif topic in entry.get("routing_keys", []) or not servers:
                ckey = _id(f"{service}.{topic}")
                self.channel(ckey, topic, service, "topic",
                             f"Topic `{topic}` on control exchange `{service}`: any one "
                             f"server takes the message (`{topic}.<server>` picks one).")
            else:
                ckey = _id(f"{service}.{topic}.server")
                ch = self.channel(ckey, topic + ".{server}", service, "topic",
                                  f"Topic `{topic}` of one server on exchange `{service}`.")
                ch["parameters"] = {"server": {"description": "Server name.",
                                               "examples": list(servers)}}
            call = style == "call"
            payload = self.request_payload(entry, args_name, service, call)
            msg_id = _id(f"{name}{'Call' if call else 'Cast'}{suffix}")
            message = self.message(ckey, msg_id, {
                "name": msg_id,
                "title": f"{entry['method']} {entry.get('version') or ''} ({style})".replace(
                    "  ", " "),
                "contentType": "application/json",
                "description": wire.ENVELOPE_PROSE + " The payload below is that "
                                                     "decoded message.",
                "payload": payload,
                "bindings": {"amqp": {"contentEncoding": "utf-8",
                                      "bindingVersion": BINDING_VERSION}},
            })
            op: dict[str, Any] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{ckey}"},
                "title": f"{style} {entry['method']}" + (
                    f" v{entry['version']}" if entry.get("version") else ""),
                "summary": f"Seen {entry['style_counts'].get(style, 0):,} times"
                           if entry.get("style_counts") else "Seen",
                "messages": [message],
            }
            if call:
                rkey = self.reply_channel(service)
                rname = _id(f"{name}Reply{suffix}")
                result: dict[str, Any] = {"description": "null on failure"}
                if reply and reply.get("schema"):
                    result = _schema_ref(self.add_schema(rname + "Result", clean_schema(
                        reply["schema"], title=name + "Reply", suffix=suffix, ref=self.ref,
                        enum_owner=name + "Reply"), suffix))
                reply_payload = wire.reply_schema(rname)
                reply_payload["properties"]["result"] = {
                    "anyOf": [result, {"type": "null"}]} if "$ref" in result else result
                reply_payload["properties"]["failure"].pop("contentSchema", None)
                reply_msg = self.message(rkey, rname, {
                    "name": rname, "title": f"reply to {entry['method']}",
                    "contentType": "application/json",
                    "description": wire.ENVELOPE_PROSE + " Published to the default exchange "
                                                         "with the call's `_reply_q` as "
                                                         "routing key.",
                    "payload": reply_payload,
                })
                op["reply"] = {"address": {"location": "$message.payload#/_reply_q",
                                           "description": "The queue named in `_reply_q`."},
                               "channel": {"$ref": f"#/channels/{rkey}"},
                               "messages": [reply_msg]}
            self.operations[_id(f"{service}.{topic}.{entry['method']}{suffix}.{style}")] = op

    def request_payload(self, entry: Entry, args_name: str, service: str,
                        call: bool) -> dict[str, Any]:
        base = wire.request_schema("", None)
        props: dict[str, Any] = {
            "method": {"const": entry["method"]},
            "args": _schema_ref(args_name),
            "_unique_id": base["properties"]["_unique_id"],
        }
        required = ["args", "method", "_unique_id"]
        if entry.get("version"):
            props["version"] = {"const": entry["version"]}
            required.append("version")
        if entry.get("namespace"):
            props["namespace"] = {"const": entry["namespace"]}
            required.append("namespace")
        if call:
            for key in ("_msg_id", "_reply_q", "_timeout"):
                props[key] = base["properties"][key]
            required += ["_msg_id", "_reply_q"]
        title = pascal(entry["method"]) + ("Call" if call else "Cast") + version_suffix(
            entry.get("version"))
        own = {"type": "object", "properties": props, "required": sorted(required)}
        if (self.catalog.get("contexts") or {}).get(service) is not None:
            return {"title": title, "allOf": [own, _schema_ref(pascal(service) + "ContextKeys")]}
        return {"title": title, **own}

    def notification(self, entry: Entry) -> None:
        service = entry["exchange"]
        name = pascal(entry["event_type"])
        payload_name = self.add_schema(name + "Payload", clean_schema(
            entry.get("schema") or {}, title=name + "Payload", suffix="", ref=self.ref,
            enum_owner=name))
        wire_schema = wire.notification_schema(name, None)
        wire_schema["properties"]["event_type"] = {"const": entry["event_type"]}
        wire_schema["properties"]["payload"] = _schema_ref(payload_name)
        prios = [p.lower() for p in entry.get("priorities", [])] or ["info"]
        for prio in prios:
            ckey = _id(f"{service}.{entry['topic']}.{prio}")
            self.channel(ckey, f"{entry['topic']}.{prio}", service, "topic",
                         f"Notifications of priority {prio.upper()} on exchange `{service}`.")
            msg = self.message(ckey, _id(name), {
                "name": _id(name), "title": entry["event_type"],
                "contentType": "application/json",
                "description": wire.ENVELOPE_PROSE + " The payload below is that decoded "
                                                     "message.",
                "payload": wire_schema,
            })
            self.operations[_id(f"{service}.{entry['topic']}.{entry['event_type']}.{prio}")] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{ckey}"},
                "title": f"notification {entry['event_type']}",
                "summary": f"Seen {entry['count']:,} times", "messages": [msg]}

    def object(self, entry: Entry, definition: Mapping[str, Any] | None) -> None:
        suffix = version_suffix(entry["version"])
        p = (entry.get("prefix") or entry["namespace"]) + "_object."
        source = definition or {"type": "object", "properties": {
            p + "name": {"const": entry["name"]}, p + "namespace": {"const": entry["namespace"]},
            p + "version": {"const": entry["version"]}, p + "data": entry.get("schema") or {}},
            "required": sorted([p + "data", p + "name", p + "version"])}
        schema = clean_schema(source, title=pascal(entry["name"]), suffix=suffix, ref=self.ref)
        schema["title"] = def_title(entry["def_key"])
        self.add_schema(def_title(entry["def_key"]), schema, suffix)

    def other(self, entry: Entry) -> None:
        ident = entry.get("identity") or {}
        exchange = ident.get("exchange") or ""
        rk = ident.get("routing_key") or ident.get("task") or ""
        ckey = _id(f"{exchange or 'default'}.{rk or 'any'}")
        self.channel(ckey, rk or None, exchange, "" if exchange else "direct",
                     f"Routing key `{rk}` on exchange `{exchange}`" if exchange
                     else f"Queue `{rk}` through the default exchange.")
        label = " ".join(str(v) for v in (entry["protocol"], ident.get("task"), exchange, rk,
                                          ident.get("type")) if v)
        name = _id(pascal(label))
        while name in self.messages:
            name += "_"
        body: dict[str, Any] = {"name": name, "title": entry["key"].split(":", 1)[1]}
        if entry.get("content_types"):
            body["contentType"] = entry["content_types"][0]
        if entry.get("schema"):
            body["payload"] = _schema_ref(self.add_schema(name + "Body", clean_schema(
                entry["schema"], title=name + "Body", suffix="", ref=self.ref)))
        msg = self.message(ckey, name, body)
        self.operations[_id(f"{ckey}.{name}.receive")] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{ckey}"},
            "title": f"{entry['protocol']} message", "summary": f"Seen {entry['count']:,} times",
            "messages": [msg]}

    def document(self) -> dict[str, Any]:
        entries = list(self.catalog.get("entries", []))
        definitions: dict[str, Mapping[str, Any]] = {}
        for e in entries:
            for s in (e.get("schema"), (e.get("reply") or {}).get("schema")):
                if isinstance(s, Mapping):
                    for k, d in (s.get("$defs") or {}).items():
                        definitions.setdefault(k, d)
        contexts = self.catalog.get("contexts") or {}
        for service in sorted(contexts):
            self.service(service, contexts[service])
        for e in entries:
            if e["kind"] == "object":
                self.object(e, definitions.get(e["def_key"]))
            else:
                getattr(self, e["kind"])(e)
        self.schemas["OsloEnvelope"] = wire.envelope_schema("#/components/schemas/OsloEnvelope",
                                                            "OsloEnvelope")
        self.schemas["OsloEnvelope"]["properties"]["oslo.message"].pop("contentSchema")
        self.schemas["OsloFailure"] = wire.failure_schema()
        found: dict[str, set[tuple[Any, ...]]] = {}
        enum_titles(list(self.schemas.values()), found)
        clashing = {t for t, sets in found.items() if len(sets) > 1}
        schemas = {k: _draft07(retitle_enums(v, clashing, self.suffixes.get(k, "")))
                   for k, v in sorted(self.schemas.items())}
        messages = {k: _draft07(v) for k, v in sorted(self.messages.items())}
        stats = self.catalog.get("stats") or {}
        return {
            "asyncapi": "3.0.0",
            "info": {
                "title": "Observed AMQP interface",
                "version": f"catalog-{self.catalog.get('catalog_version', 1)}",
                "description": "Inferred by busdoc from captured RabbitMQ traffic ("
                               + ", ".join(f"{v:,} {k.replace('_', ' ')}"
                                           for k, v in stats.items())
                               + "). " + wire.ENVELOPE_PROSE,
            },
            "defaultContentType": "application/json",
            "channels": dict(sorted(self.channels.items())),
            "operations": dict(sorted(self.operations.items())),
            "components": {"schemas": schemas, "messages": messages},
        }


def asyncapi_document(catalog: Mapping[str, Any]) -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a dict (deterministic)."""
    return _Builder(catalog).document()


def asyncapi_files(catalog: Mapping[str, Any]) -> dict[str, str]:
    """The ``asyncapi`` format: one JSON document (YAML 1.2 readers accept it too)."""
    return {"asyncapi.json": json.dumps(asyncapi_document(catalog), indent=2,
                                        ensure_ascii=False) + "\n"}
