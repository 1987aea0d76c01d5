"""Markdown interface document from a catalog (``docs/catalog.schema.json``).

A pure function of the catalog dict: the same catalog always gives the same text, so the
document diffs cleanly in git. Layout: a table of contents by control exchange (the
service) → topic → method, then one section per RPC method with how to send it and an
argument table, then notifications, versioned objects, the request context per service
and other messages.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

Schema = Mapping[str, Any]


def render_markdown(catalog: Mapping[str, Any]) -> str:
    """Render the whole catalog as one Markdown document."""
    entries = list(catalog.get("entries", []))
    by_kind: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_kind[entry["kind"]].append(entry)
    out: list[str] = ["# Observed AMQP interface", ""]
    stats = catalog.get("stats") or {}
    if stats:
        out.append(
            "Inferred from "
            + ", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in stats.items())
            + "."
        )
        out.append("")
    out += _toc(by_kind)
    if by_kind.get("rpc"):
        out += ["## RPC methods", ""]
        for entry in by_kind["rpc"]:
            out += _rpc_section(entry)
    if by_kind.get("notification"):
        out += ["## Notifications", ""]
        for entry in by_kind["notification"]:
            out += _notification_section(entry)
    if by_kind.get("object"):
        out += ["## Versioned objects", ""]
        for entry in by_kind["object"]:
            out += _object_section(entry)
    contexts = catalog.get("contexts") or {}
    if contexts:
        out += ["## Request context", ""]
        out.append(
            "oslo.messaging flattens the caller's request context into `_context_<key>` "
            "keys of every request; documented here once per service."
        )
        out.append("")
        for exchange in sorted(contexts):
            out += [f"### Context of `{exchange}`", "", *_field_table(contexts[exchange]), ""]
    if by_kind.get("other"):
        out += ["## Other messages", ""]
        for entry in by_kind["other"]:
            out += _other_section(entry)
    if not entries:
        out += ["No messages have been inferred yet: capture traffic first "
                "(`busdoc capture pcap FILE`), then run `busdoc infer`.", ""]
    return "\n".join(out).rstrip() + "\n"


def anchor(entry: Mapping[str, Any]) -> str:
    """A stable, GitHub-style anchor for an entry's heading."""
    return re.sub(r"[^a-z0-9-]+", "-", entry["key"].lower()).strip("-")


def _rpc_title(entry: Mapping[str, Any]) -> str:
    version = f" v{entry['version']}" if entry.get("version") else ""
    return f"{entry['topic']}.{entry['method']}{version}"


def _toc(by_kind: Mapping[str, list[Mapping[str, Any]]]) -> list[str]:
    out = ["## Contents", ""]
    services: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for entry in by_kind.get("rpc", []):
        services[entry.get("exchange") or "(unknown exchange)"][entry["topic"]].append(entry)
    for service in sorted(services):
        out.append(f"- service `{service}`")
        for topic in sorted(services[service]):
            out.append(f"  - topic `{topic}`")
            for entry in services[service][topic]:
                out.append(f"    - [{_rpc_title(entry)}](#{anchor(entry)}) ({entry['count']:,})")
    for kind, title in (("notification", "Notifications"), ("object", "Versioned objects"),
                        ("other", "Other messages")):
        if by_kind.get(kind):
            out.append(f"- {title}")
            for entry in by_kind[kind]:
                label = entry.get("event_type") or entry.get("def_key") or entry["key"]
                out.append(f"  - [{label}](#{anchor(entry)}) ({entry['count']:,})")
    out.append("")
    return out


def _names(values: Iterable[str]) -> str:
    values = list(values)
    return ", ".join(f"`{v}`" for v in values) if values else "—"


def _rpc_section(entry: Mapping[str, Any]) -> list[str]:
    out = [f'<a id="{anchor(entry)}"></a>', "", f"### {_rpc_title(entry)}", ""]
    styles = entry.get("style_counts") or {}
    style_text = ", ".join(f"{s} ({n:,})" for s, n in sorted(styles.items())) or "—"
    exchange = entry.get("exchange")
    exchange_text = f"`{exchange}`" if exchange else "unknown"
    if entry.get("exchange_guessed"):
        exchange_text += " (inferred from other messages of the topic)"
    out += [
        "| | |",
        "|---|---|",
        f"| sent as | {style_text} |",
        f"| exchange | {exchange_text} |",
        f"| routing keys | {_names(entry.get('routing_keys', []))} |",
        f"| namespace | {_names([entry['namespace']] if entry.get('namespace') else [])} |",
        f"| version | {entry.get('version') or '—'} |",
        f"| messages | {entry['count']:,} |",
        f"| senders | {_names(entry.get('senders', []))} |",
        f"| receivers | {_names(entry.get('receivers', []))} |",
        "",
    ]
    changes = entry.get("changes")
    if changes:
        parts = [f"{label} {', '.join(f'`{a}`' for a in changes[key])}"
                 for key, label in (("added", "added"), ("removed", "removed"),
                                    ("changed", "changed")) if changes.get(key)]
        if parts:
            out += [f"Since version {changes.get('from_version')}: " + "; ".join(parts) + ".", ""]
    out += ["**Arguments** (`args`):", "", *_field_table(entry.get("schema") or {}), ""]
    reply = entry.get("reply")
    if reply:
        out += [f"**Reply** ({reply['count']:,} replies):", ""]
        if reply.get("schema"):
            out += ["`result`: " + _type_text(reply["schema"]), ""]
            if reply["schema"].get("properties"):
                out += _field_table(reply["schema"]) + [""]
        latency = reply.get("latency") or {}
        if latency.get("count"):
            out += [f"Latency over {latency['count']:,} calls: p50 {_ms(latency.get('p50'))}, "
                    f"p95 {_ms(latency.get('p95'))}, max {_ms(latency.get('max'))}.", ""]
        if reply.get("pending"):
            out += [f"{reply['pending']:,} calls got no reply.", ""]
        failures = reply.get("failures") or []
        if failures:
            out += ["| failure | module | count | example |", "|---|---|---|---|"]
            for f in failures:
                example = (f.get("example") or "").replace("|", "\\|").replace("\n", " ")
                out.append(f"| `{f['exception']}` | {f.get('module') or '—'} | "
                           f"{f['count']:,} | {example} |")
            out.append("")
    return out


def _notification_section(entry: Mapping[str, Any]) -> list[str]:
    out = [f'<a id="{anchor(entry)}"></a>', "", f"### {entry['event_type']}", ""]
    out += [
        "| | |",
        "|---|---|",
        f"| exchange | `{entry['exchange']}` |",
        f"| topic | `{entry['topic']}` |",
        f"| priorities | {_names(entry.get('priorities', []))} |",
        f"| publisher ids | {_names(entry.get('publisher_ids', []))} |",
        f"| messages | {entry['count']:,} |",
        "",
        "**Payload**:",
        "",
        *_field_table(entry.get("schema") or {}),
        "",
    ]
    return out


def _object_section(entry: Mapping[str, Any]) -> list[str]:
    return [
        f'<a id="{anchor(entry)}"></a>',
        "",
        f"### {entry['def_key']}",
        "",
        f"Namespace `{entry['namespace']}`, version {entry['version']}, "
        f"seen {entry['count']:,} times. Fields of its `data`:",
        "",
        *_field_table(entry.get("schema") or {}),
        "",
    ]


def _other_section(entry: Mapping[str, Any]) -> list[str]:
    identity = ", ".join(f"{k} `{v}`" for k, v in sorted((entry.get("identity") or {}).items()))
    out = [f'<a id="{anchor(entry)}"></a>', "", f"### {entry['key']}", "",
           f"{entry['protocol']} message ({identity}); content types "
           f"{_names(entry.get('content_types', []))}; {entry['count']:,} messages.", ""]
    if entry.get("schema"):
        out += _field_table(entry["schema"]) + [""]
    return out


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f} ms"


def _field_table(schema: Schema) -> list[str]:
    rows = list(_rows(schema, ""))
    if not rows:
        return ["_(no fields)_"]
    out = ["| field | type | required | nullable | format / values | example |",
           "|---|---|---|---|---|---|"]
    for path, node, required, evidence in rows:
        req = ("yes" if required else "no") + (f" ({evidence})" if evidence else "")
        nullable = "yes" if _nullable(node) else ""
        detail = _detail(node)
        example = _example(node)
        out.append(f"| `{path}` | {_type_text(node)} | {req} | {nullable} | {detail} | {example} |")
    return out


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


def _object_part(node: Schema) -> Schema | None:
    if node.get("type") == "object" or (isinstance(node.get("type"), list)
                                        and "object" in node["type"]):
        return node
    for alt in node.get("anyOf") or ():
        if alt.get("type") == "object":
            return alt
    return None


def _evidence(node: Schema) -> str:
    text = node.get("x-busdoc-evidence")
    if isinstance(text, str):
        return text
    presence = node.get("x-busdoc-presence")
    if isinstance(presence, Mapping) and "seen" in presence and "of" in presence:
        return f"seen in {presence['seen']:,} of {presence['of']:,}"
    return ""


def _types(node: Schema) -> list[str]:
    t = node.get("type")
    if isinstance(t, list):
        return list(t)
    if isinstance(t, str):
        return [t]
    return []


def _nullable(node: Schema) -> bool:
    return "null" in _types(node) or any(
        alt.get("type") == "null" for alt in node.get("anyOf") or ()
    )


def _type_text(node: Schema) -> str:
    if "$ref" in node:
        target = node["$ref"].rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
        return f"object `{target}`"
    if "const" in node:
        return f"const `{json.dumps(node['const'])}`"
    if node.get("anyOf"):
        alts = [_type_text(alt) for alt in node["anyOf"] if alt.get("type") != "null"]
        return " or ".join(alts) or "null"
    names = [t for t in _types(node) if t != "null"] or (["null"] if _types(node) else ["any"])
    text = " or ".join(names)
    if "array" in names and isinstance(node.get("items"), Mapping) and node["items"]:
        text = text.replace("array", f"array of {_type_text(node['items'])}")
    extra = node.get("additionalProperties")
    if "object" in names and isinstance(extra, Mapping) and not node.get("properties"):
        text = text.replace("object", f"map of string → {_type_text(extra)}")
    return text


def _detail(node: Schema) -> str:
    parts = []
    if node.get("format"):
        layout = node.get("x-busdoc-layout")
        parts.append(f"{node['format']}" + (f" (`{layout}`)" if isinstance(layout, str) else ""))
    if node.get("enum"):
        parts.append(" ".join(f"`{json.dumps(v)}`" for v in node["enum"]))
    if node.get("x-busdoc-redacted"):
        parts.append("redacted in capture")
    return "; ".join(parts)


def _example(node: Schema) -> str:
    examples = node.get("x-busdoc-examples") or node.get("examples") or []
    if not examples:
        return ""
    text = json.dumps(examples[0], sort_keys=True)
    if len(text) > 40:
        text = text[:37] + "..."
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def markdown_files(catalog: Mapping[str, Any]) -> dict[str, str]:
    return {"interface.md": render_markdown(catalog)}
