"""The interface document as blocks, shared by the Markdown and HTML renderers.

Both formats must say the same thing, so the content is decided once here, as a list of
plain blocks (headings, paragraphs, tables, lists, code) whose text uses a tiny inline
subset: `code`, **bold** and [label](#anchor). Markdown prints the blocks as they are;
HTML escapes them and nests each heading's section in a collapsible element.

Per RPC method a client author gets: how to send it (style, exchange and its type, routing
key, reply queue, an example of the decoded ``oslo.message``), who sends and receives it,
the versions seen and what changed, the argument table with evidence, the reply schema,
failures and latency. The wire contract, the request context and the versioned objects are
written once and linked from where they are used.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from busdoc.reports import wire
from busdoc.reports.generator import redaction_hint
from busdoc.reports.json_schema import entry_files

Schema = Mapping[str, Any]
Entry = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str
    anchor: str | None = None
    search: str = ""
    """Extra words the HTML search matches for this section (keys, names)."""


@dataclass(frozen=True, slots=True)
class Para:
    text: str


@dataclass(frozen=True, slots=True)
class Table:
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Bullets:
    items: tuple[tuple[int, str], ...]
    """(depth, text) pairs, depth 0 for top-level items."""


@dataclass(frozen=True, slots=True)
class Code:
    lang: str
    text: str


@dataclass(frozen=True, slots=True)
class Diagram:
    """Who calls whom: (sender, receiver, label) edges, and the same graph in Mermaid."""

    edges: tuple[tuple[str, str, str], ...]
    mermaid: str


Block = Heading | Para | Table | Bullets | Code | Diagram


@dataclass
class _Index:
    """What links need: an anchor per object key and per method version."""

    objects: dict[str, str] = field(default_factory=dict)
    used_by: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    versions: dict[tuple[Any, ...], list[Entry]] = field(default_factory=lambda: defaultdict(list))


def anchor(entry: Entry) -> str:
    """A stable, GitHub-style anchor for an entry's heading."""
    return re.sub(r"[^a-z0-9-]+", "-", entry["key"].lower()).strip("-")


def service_anchor(service: str, what: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", f"{what}-{service}".lower()).strip("-")


def program(name: str) -> str:
    """oslo names connections ``<program>:<pid>:<uuid>``; a diagram wants the program."""
    m = re.fullmatch(r"(.+?):\d+(?::[0-9a-fA-F-]{8,})?", name)
    return m.group(1) if m else name


def rpc_title(entry: Entry) -> str:
    version = f" v{entry['version']}" if entry.get("version") else ""
    ns = f"{entry['namespace']}." if entry.get("namespace") else ""
    return f"{entry['topic']}.{ns}{entry['method']}{version}"


def build_document(catalog: Mapping[str, Any]) -> list[Block]:
    """The whole interface document, deterministic for a given catalog."""
    entries = list(catalog.get("entries", []))
    by_kind: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        by_kind[entry["kind"]].append(entry)
    index = _index(entries)
    contexts = catalog.get("contexts") or {}
    services = sorted({e.get("exchange") or "(unknown exchange)" for e in by_kind["rpc"]}
                      | {e["exchange"] for e in by_kind["notification"]} | set(contexts))
    out: list[Block] = [Heading(1, "Observed AMQP interface")]
    stats = catalog.get("stats") or {}
    if stats:
        out.append(Para("Inferred from " + ", ".join(
            f"{value:,} {name.replace('_', ' ')}" for name, value in stats.items()) + "."))
    if not entries:
        out.append(Para("No messages have been inferred yet: capture traffic first "
                        "(`busdoc capture pcap FILE`), then run `busdoc infer`."))
        return out
    out += _toc(by_kind, services, contexts)
    for service in services:
        out += _wire_section(service, by_kind, contexts)
    if by_kind["rpc"]:
        out.append(Heading(2, "RPC methods", "rpc-methods"))
        for entry in by_kind["rpc"]:
            out += _rpc_section(entry, index)
    if by_kind["notification"]:
        out.append(Heading(2, "Notifications", "notifications"))
        for entry in by_kind["notification"]:
            out += _notification_section(entry, index)
    if by_kind["object"]:
        out.append(Heading(2, "Versioned objects", "versioned-objects"))
        for entry in by_kind["object"]:
            out += _object_section(entry, index)
    if contexts:
        out.append(Heading(2, "Request context", "request-context"))
        out.append(Para("oslo.messaging flattens the caller's request context into "
                        "`_context_<key>` keys of every request and notification; "
                        "documented here once per service."))
        for service in sorted(contexts):
            out.append(Heading(3, f"Context of `{service}`", service_anchor(service, "context"),
                               search=f"context {service}"))
            out += _field_blocks(contexts[service], index)
    if by_kind["other"]:
        out.append(Heading(2, "Other messages", "other-messages"))
        diagram = _diagram(by_kind["other"], [])
        if diagram is not None:
            out.append(Para("**Who sends what to whom** (label: exchange/routing key):"))
            out.append(diagram)
        for entry in by_kind["other"]:
            out += _other_section(entry, index)
    return out


# .. index and contents ........................................................


def _refs(schema: Any, found: set[str]) -> None:
    if isinstance(schema, Mapping):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.add(ref[len("#/$defs/"):])
        for key, value in schema.items():
            if key != "$defs":
                _refs(value, found)
        for value in (schema.get("$defs") or {}).values():
            _refs(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _refs(value, found)


def _index(entries: list[Entry]) -> _Index:
    index = _Index()
    for entry in entries:
        if entry["kind"] == "object":
            index.objects[entry["def_key"]] = anchor(entry)
        if entry["kind"] == "rpc":
            index.versions[(entry.get("exchange"), entry["topic"], entry.get("namespace"),
                            entry["method"])].append(entry)
        found: set[str] = set()
        _refs(entry.get("schema"), found)
        _refs((entry.get("reply") or {}).get("schema"), found)
        for key in found:
            if entry["kind"] != "object" or key != entry.get("def_key"):
                index.used_by[key].add(entry["key"])
    return index


def _toc(by_kind: Mapping[str, list[Entry]], services: list[str],
         contexts: Mapping[str, Any]) -> list[Block]:
    items: list[tuple[int, str]] = []
    topics: dict[str, dict[str, list[Entry]]] = defaultdict(lambda: defaultdict(list))
    for entry in by_kind.get("rpc", []):
        topics[entry.get("exchange") or "(unknown exchange)"][entry["topic"]].append(entry)
    for service in services:
        items.append((0, f"service `{service}`: [wire contract]"
                         f"(#{service_anchor(service, 'wire')})"
                      + (f", [context](#{service_anchor(service, 'context')})"
                         if service in contexts else "")))
        for topic in sorted(topics.get(service, {})):
            items.append((1, f"topic `{topic}`"))
            for entry in topics[service][topic]:
                items.append((2, f"[{rpc_title(entry)}](#{anchor(entry)}) "
                                 f"({_styles_short(entry)}, {entry['count']:,})"))
    for kind, title in (("notification", "Notifications"), ("object", "Versioned objects"),
                        ("other", "Other messages")):
        if by_kind.get(kind):
            items.append((0, title))
            for entry in by_kind[kind]:
                label = entry.get("event_type") or entry.get("def_key") or entry["key"]
                items.append((1, f"[{label}](#{anchor(entry)}) ({entry['count']:,})"))
    return [Heading(2, "Contents", "contents"), Bullets(tuple(items))]


def _styles_short(entry: Entry) -> str:
    return "/".join(sorted(entry.get("style_counts") or {})) or "?"


def _names(values: Iterable[str]) -> str:
    values = list(values)
    return ", ".join(f"`{v}`" for v in values) if values else "—"


def _programs(values: Iterable[str]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for v in values:
        counts[program(v)] += 1
    if not counts:
        return "—"
    return ", ".join(f"`{p}`" + (f" ×{n}" if n > 1 else "") for p, n in sorted(counts.items()))


# .. wire contract and diagram ..................................................


def _wire_section(service: str, by_kind: Mapping[str, list[Entry]],
                  contexts: Mapping[str, Any]) -> list[Block]:
    rpcs = [e for e in by_kind.get("rpc", []) if (e.get("exchange") or "(unknown exchange)")
            == service]
    notes = [e for e in by_kind.get("notification", []) if e["exchange"] == service]
    out: list[Block] = [
        Heading(2, f"Wire contract of `{service}`", service_anchor(service, "wire"),
                search=f"wire envelope {service}"),
        Para(wire.ENVELOPE_PROSE),
        Bullets(tuple((0, line) for line in wire.EXCHANGE_PROSE)),
    ]
    rows: list[tuple[str, ...]] = []
    topics = sorted({e["topic"] for e in rpcs})
    for topic in topics:
        styles = sorted({s for e in rpcs if e["topic"] == topic for s in e.get("styles", [])})
        keys = sorted({k for e in rpcs if e["topic"] == topic
                       for k in e.get("routing_keys", []) if not k.endswith("_fanout")})
        servers = sorted({s for e in rpcs if e["topic"] == topic for s in e.get("servers", [])})
        if {"call", "cast"} & set(styles):
            rows.append((f"`{service}`", "topic", _names(keys or [topic]),
                         "call/cast" + (f"; servers {_names(servers)}" if servers else "")))
        if "fanout" in styles:
            rows.append((f"`{topic}_fanout`", "fanout", "(ignored)", "fanout"))
        if "call" in styles:
            rows.append(("`\"\"` (default)", "direct", "`reply_<uuid4 hex>`", "replies"))
    for topic in sorted({e["topic"] for e in notes}):
        prios = sorted({p.lower() for e in notes if e["topic"] == topic
                        for p in e.get("priorities", [])})
        rows.append((f"`{service}`", "topic",
                     _names(f"{topic}.{p}" for p in prios) if prios else f"`{topic}.<priority>`",
                     "notifications"))
    if rows:
        out.append(Para("Exchanges and routing keys seen:"))
        out.append(Table(("exchange", "type", "routing keys", "used for"), tuple(rows)))
    out.append(Para("**Request** (`oslo.message` of a call, cast or fanout):"))
    out.append(Table(("key", "sent", "meaning"), tuple(
        (f"`{k}`", sent, meaning) for k, sent, meaning in wire.REQUEST_KEYS)))
    if service in contexts:
        out.append(Para(f"The `_context_<key>` fields of `{service}`: "
                        f"[context](#{service_anchor(service, 'context')})."))
    out.append(Para("**Reply** (`oslo.message` sent to `_reply_q`):"))
    out.append(Table(("key", "meaning"), tuple((f"`{k}`", m) for k, m in wire.REPLY_KEYS)))
    if notes:
        out.append(Para("**Notification** (`oslo.message`):"))
        out.append(Table(("key", "meaning"),
                         tuple((f"`{k}`", m) for k, m in wire.NOTIFICATION_KEYS)))
    diagram = _diagram(rpcs, notes)
    if diagram is not None:
        out.append(Para(f"**Who calls whom** on `{service}` (connection names, program part):"))
        out.append(diagram)
    return out


def _node(name: str, ids: dict[str, str]) -> str:
    if name not in ids:
        ids[name] = f"n{len(ids)}"
    return ids[name]


def _diagram(rpcs: list[Entry], notes: list[Entry]) -> Diagram | None:
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for entry in [*rpcs, *notes]:
        label = entry.get("method") or entry.get("event_type") or _other_label(entry)
        senders = sorted({program(s) for s in entry.get("senders", [])}) or ["(unseen sender)"]
        where = entry.get("topic") or (entry.get("identity") or {}).get("exchange") or "?"
        receivers = sorted({program(r) for r in entry.get("receivers", [])}) or \
            [f"({where} consumers)"]
        for s in senders:
            for r in receivers:
                edges[(s, r)].add(label)
    if not edges:
        return None
    ids: dict[str, str] = {}
    lines = ["graph LR"]
    for name in sorted({n for edge in edges for n in edge}):
        lines.append(f'  {_node(name, ids)}["{_mermaid_text(name)}"]')
    labelled: list[tuple[str, str, str]] = []
    for (s, r), labels in sorted(edges.items()):
        text = ", ".join(sorted(labels))
        labelled.append((s, r, text))
        if len(text) > 80:  # an edge label, not a paragraph; the HTML table lists them all
            text = f"{len(labels)} kinds of message"
        lines.append(f'  {ids[s]} -->|"{_mermaid_text(text)}"| {ids[r]}')
    return Diagram(tuple(labelled), "\n".join(lines))


def _other_label(entry: Entry) -> str:
    ident = entry.get("identity") or {}
    if ident.get("task"):
        return str(ident["task"])
    return f"{ident.get('exchange') or '(default)'}/{ident.get('routing_key') or ''}"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


# .. entries ....................................................................


def _rpc_section(entry: Entry, index: _Index) -> list[Block]:
    out: list[Block] = [Heading(3, rpc_title(entry), anchor(entry),
                                search=f"{entry['method']} {entry['key']}")]
    styles = entry.get("style_counts") or {}
    exchange = entry.get("exchange")
    rows: list[tuple[str, str]] = [
        ("sent as", ", ".join(f"{s} ({n:,})" for s, n in sorted(styles.items())) or "—")]
    for style in sorted(styles):
        if style in ("call", "cast"):
            text = (f"exchange `{exchange}` (topic), routing key `{entry['topic']}` or "
                    f"`{entry['topic']}.<server>`" if exchange else "exchange unknown")
            if entry.get("exchange_guessed"):
                text += " (exchange inferred from other messages of the topic)"
            rows.append((f"to {style}", text))
        elif style == "fanout":
            rows.append(("to fanout", f"exchange `{entry['topic']}_fanout` (fanout), "
                                      "any routing key"))
    if "call" in styles:
        rows.append(("reply", "declare `reply_<uuid4 hex>`, send its name in `_reply_q` and a "
                              "fresh `_msg_id`; the reply arrives there via the default "
                              "exchange"))
    rows += [
        ("routing keys seen", _names(entry.get("routing_keys", []))),
        ("namespace", _names([entry["namespace"]] if entry.get("namespace") else [])),
        ("version", f"`{entry['version']}`" if entry.get("version") else "—"),
        ("messages", f"{entry['count']:,}"),
        ("senders", _programs(entry.get("senders", []))),
        ("receivers", _programs(entry.get("receivers", []))),
        ("queues", _names(entry.get("queues", []))),
        ("schema files", _names(entry_files(entry))),
    ]
    out.append(Table(("", ""), tuple(rows)))
    out += _versions(entry, index)
    out.append(Para("Example `oslo.message` (values from the capture):"))
    out.append(Code("json", _request_example(entry)))
    out.append(Para("**Arguments** (`args`):"))
    out += _field_blocks(entry.get("schema") or {}, index)
    reply = entry.get("reply")
    if reply:
        out += _reply_blocks(reply, index)
    elif "call" not in styles:
        out.append(Para("No reply: sent as " + "/".join(sorted(styles)) + " only."))
    return out


def _versions(entry: Entry, index: _Index) -> list[Block]:
    group = index.versions[(entry.get("exchange"), entry["topic"], entry.get("namespace"),
                            entry["method"])]
    out: list[Block] = []
    others = [e for e in group if e is not entry]
    if others:
        out.append(Para("Other versions: " + ", ".join(
            f"[{e.get('version') or '(none)'}](#{anchor(e)})" for e in others) + "."))
    changes = entry.get("changes")
    if changes:
        parts = [f"{label} {', '.join(f'`{a}`' for a in changes[key])}"
                 for key, label in (("added", "added"), ("removed", "removed"),
                                    ("changed", "changed")) if changes.get(key)]
        out.append(Para(f"Since version {changes.get('from_version')}: "
                        + ("; ".join(parts) if parts else "no argument changed") + "."))
    return out


def _reply_blocks(reply: Mapping[str, Any], index: _Index) -> list[Block]:
    out: list[Block] = [Para(f"**Reply** ({reply['count']:,} replies matched):")]
    schema = reply.get("schema")
    if schema:
        out.append(Para("`result`: " + _type_text(schema, index)))
        if _object_part(schema) is not None and (_object_part(schema) or {}).get("properties"):
            out += _field_blocks(schema, index)
    else:
        out.append(Para("`result`: never seen in a successful reply."))
    latency = reply.get("latency") or {}
    if latency.get("count"):
        out.append(Para(f"Latency over {latency['count']:,} calls: p50 {_ms(latency.get('p50'))}"
                        f", p95 {_ms(latency.get('p95'))}, max {_ms(latency.get('max'))}."))
    if reply.get("pending"):
        out.append(Para(f"{reply['pending']:,} calls got no reply."))
    if reply.get("multipart"):
        out.append(Para(f"{reply['multipart']:,} calls were answered in several messages "
                        "(`ending` false first)."))
    failures = reply.get("failures") or []
    if failures:
        out.append(Para("**Failures** (`failure` set, `result` null):"))
        out.append(Table(("exception", "module", "count", "example message"), tuple(
            (f"`{f['exception']}`", f"`{f['module']}`" if f.get("module") else "—",
             f"{f['count']:,}", (f.get("example") or "").replace("\n", " "))
            for f in failures)))
    return out


def _notification_section(entry: Entry, index: _Index) -> list[Block]:
    prios = [p.lower() for p in entry.get("priorities", [])]
    keys = [f"{entry['topic']}.{p}" for p in prios]
    return [
        Heading(3, entry["event_type"], anchor(entry), search=entry["key"]),
        Table(("", ""), (
            ("exchange", f"`{entry['exchange']}` (topic)"),
            ("routing keys", _names(keys) if keys else f"`{entry['topic']}.<priority>`"),
            ("priorities", _names(entry.get("priorities", []))),
            ("publisher ids", _names(entry.get("publisher_ids", []))),
            ("messages", f"{entry['count']:,}"),
            ("senders", _programs(entry.get("senders", []))),
            ("receivers", _programs(entry.get("receivers", []))),
            ("queues", _names(entry.get("queues", []))),
            ("schema files", _names(entry_files(entry))),
        )),
        Para("**Payload** (`payload`)" + (", a versioned object" if entry.get("versioned")
                                           else "") + ":"),
        *_field_blocks(entry.get("schema") or {}, index),
    ]


def _object_section(entry: Entry, index: _Index) -> list[Block]:
    p = (entry.get("prefix") or entry["namespace"]) + "_object."
    users = sorted(index.used_by.get(entry["def_key"], ()))
    used = ", ".join(f"[{u.split(':', 1)[1]}](#{_key_anchor(u)})" for u in users) or "—"
    return [
        Heading(3, entry["def_key"], anchor(entry), search=entry["key"]),
        Para(f"Sent as `{{\"{p}name\": \"{entry['name']}\", \"{p}namespace\": "
             f"\"{entry['namespace']}\", \"{p}version\": \"{entry['version']}\", "
             f"\"{p}data\": {{…}}}}` (plus `{p}changes`, the names of changed fields, when "
             f"the sender tracks them); seen {entry['count']:,} times. Used by {used}."),
        Para(f"Fields of `{p}data`:"),
        *_field_blocks(entry.get("schema") or {}, index),
    ]


def _other_section(entry: Entry, index: _Index) -> list[Block]:
    identity = ", ".join(f"{k} `{v}`" for k, v in sorted((entry.get("identity") or {}).items())
                         if v is not None)
    sizes = entry.get("sizes") or {}
    size = (f"; bodies {sizes['min']:,}–{sizes['max']:,} bytes"
            if sizes.get("min") is not None else "")
    out: list[Block] = [
        Heading(3, entry["key"].split(":", 1)[1], anchor(entry), search=entry["key"]),
        Para(f"{entry['protocol']} message ({identity}); content types "
             f"{_names(entry.get('content_types', []))}; {entry['count']:,} messages{size}. "
             f"Senders {_programs(entry.get('senders', []))}; receivers "
             f"{_programs(entry.get('receivers', []))}; queues "
             f"{_names(entry.get('queues', []))}."),
    ]
    if entry.get("schema"):
        out += _field_blocks(entry["schema"], index)
    return out


def _key_anchor(key: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


# .. examples ..................................................................


def _example_value(node: Schema, depth: int = 0) -> Any:
    if "$ref" in node:
        return {"…": node["$ref"].rsplit("/", 1)[-1]}
    if "const" in node:
        return node["const"]
    examples = node.get("x-busdoc-examples")
    if examples:
        return examples[0]
    if node.get("enum"):
        return next((v for v in node["enum"] if v is not None), None)
    if node.get("anyOf"):
        alts = [a for a in node["anyOf"] if a.get("type") != "null"]
        return _example_value(alts[0], depth) if alts else None
    types = [t for t in _types(node) if t != "null"]
    if "object" in types and depth < 3:
        props = node.get("properties")
        if props:
            return {k: _example_value(v, depth + 1) for k, v in props.items()}
        extra = node.get("additionalProperties")
        keys = (node.get("x-busdoc-map") or {}).get("key_examples") or ["key"]
        if isinstance(extra, Mapping) and extra:
            return {keys[0]: _example_value(extra, depth + 1)}
        return {}
    if "array" in types and depth < 3:
        items = node.get("items")
        return [_example_value(items, depth + 1)] if isinstance(items, Mapping) and items else []
    if "string" in types:
        return "<redacted>" if node.get("x-busdoc-redacted") else "…"
    if "integer" in types or "number" in types:
        return node.get("x-busdoc-minimum", 0)
    if "boolean" in types:
        return False
    return None


def _request_example(entry: Entry) -> str:
    message: dict[str, Any] = {"method": entry["method"],
                               "args": _example_value(entry.get("schema") or {})}
    if entry.get("version"):
        message["version"] = entry["version"]
    if entry.get("namespace"):
        message["namespace"] = entry["namespace"]
    if "call" in (entry.get("style_counts") or {}):
        message.update({"_msg_id": "<uuid4 hex>", "_reply_q": "reply_<uuid4 hex>",
                        "_timeout": None})
    message["_unique_id"] = "<uuid4 hex>"
    message["_context_…"] = "see the context of the service"
    return json.dumps(message, indent=2, ensure_ascii=False)


# .. field tables ..............................................................


def _field_blocks(schema: Schema, index: _Index) -> list[Block]:
    rows = list(_rows(schema, ""))
    if not rows:
        if schema.get("type") or schema.get("anyOf") or "$ref" in schema:
            return [Para("Not an object: " + _type_text(schema, index) + ".")]
        return [Para("_(no fields)_")]
    table = []
    for path, node, required, evidence in rows:
        req = ("yes" if required else "no") + (f" ({evidence})" if evidence else "")
        table.append((f"`{path}`", _type_text(node, index), req,
                      "yes" if _nullable(node) else "", _detail(node), _range(node),
                      _example(node)))
    return [Table(("field", "type", "required", "nullable", "format / values", "range seen",
                   "example"), tuple(table))]


def _rows(schema: Schema, prefix: str) -> Iterable[tuple[str, Schema, bool, str]]:
    props = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    for name in props:
        node = props[name]
        path = f"{prefix}{name}"
        yield path, node, name in required, _evidence(node)
        inner = _object_part(node)
        if inner is not None and inner.get("properties") and "$ref" not in node:
            yield from _rows(inner, path + ".")
        items = node.get("items")
        if isinstance(items, Mapping):
            inner = _object_part(items)
            if inner is not None and inner.get("properties"):
                yield from _rows(inner, path + "[].")


def _object_part(node: Schema) -> Schema | None:
    if "object" in _types(node):
        return node
    for alt in node.get("anyOf") or ():
        if alt.get("type") == "object":
            return alt
    return None


def _evidence(node: Schema) -> str:
    text = node.get("x-busdoc-evidence")
    return text if isinstance(text, str) else ""


def _types(node: Schema) -> list[str]:
    t = node.get("type")
    if isinstance(t, list):
        return list(t)
    if isinstance(t, str):
        return [t]
    return []


def _nullable(node: Schema) -> bool:
    return "null" in _types(node) or any(
        alt.get("type") == "null" for alt in node.get("anyOf") or ())


def _type_text(node: Schema, index: _Index) -> str:
    if "$ref" in node:
        target = node["$ref"].rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
        if target in index.objects:
            return f"object [{target}](#{index.objects[target]})"
        return f"object `{target}`"
    if "const" in node:
        return f"const `{json.dumps(node['const'])}`"
    if node.get("anyOf"):
        alts = [_type_text(alt, index) for alt in node["anyOf"] if alt.get("type") != "null"]
        return " or ".join(alts) or "null"
    names = [t for t in _types(node) if t != "null"] or (["null"] if _types(node) else ["any"])
    text = " or ".join(names)
    if "array" in names and isinstance(node.get("items"), Mapping) and node["items"]:
        text = text.replace("array", f"array of {_type_text(node['items'], index)}")
    extra = node.get("additionalProperties")
    if "object" in names and isinstance(extra, Mapping) and not node.get("properties"):
        text = text.replace("object", f"map of string → {_type_text(extra, index)}")
    if node.get("x-busdoc-encoded"):
        text += " (JSON text)"
    return text


def _detail(node: Schema) -> str:
    parts = []
    if node.get("format"):
        layout = node.get("x-busdoc-layout")
        text = str(node["format"])
        if isinstance(layout, list) and layout:
            text += " " + " or ".join(f"`{x}`" for x in layout)
        parts.append(text)
    if node.get("enum"):
        parts.append("one of " + " ".join(f"`{json.dumps(v)}`" for v in node["enum"]))
    if node.get("x-busdoc-redacted"):
        hint = redaction_hint(node)
        parts.append("redacted (secret)" + (f": {hint}" if hint else ""))
    mapping = node.get("x-busdoc-map")
    if isinstance(mapping, Mapping):
        parts.append(f"{mapping.get('distinct_keys')} distinct keys, e.g. "
                     + " ".join(f"`{k}`" for k in mapping.get("key_examples") or []))
    return "; ".join(parts)


def _range(node: Schema) -> str:
    for low, high, unit in (("x-busdoc-minimum", "x-busdoc-maximum", ""),
                            ("x-busdoc-min-length", "x-busdoc-max-length", " chars"),
                            ("x-busdoc-min-items", "x-busdoc-max-items", " items")):
        if low in node:
            a, b = node[low], node.get(high)
            return f"{a}{unit}" if a == b else f"{a}–{b}{unit}"
    return ""


def _example(node: Schema) -> str:
    examples = node.get("x-busdoc-examples") or node.get("examples") or []
    if not examples:
        return ""
    text = json.dumps(examples[0], sort_keys=True, ensure_ascii=False)
    if len(text) > 40:
        text = text[:37] + "..."
    return "`" + text.replace("`", "'") + "`"
