"""Catalog schemas made generator-friendly: names, standard keywords, no evidence noise.

Code generators (quicktype, jsonschema2pojo, datamodel-code-generator) name a class after
the schema's ``title`` and otherwise invent one from the property name (``PurpleStatus``),
so every object and enum gets a title here: classes ``Instance_2_8``, their nested records
``InstanceData_2_8``, enums ``InstanceVmState``. They read only standard keywords, so the
observed evidence (``x-busdoc-*``) becomes ``description`` and ``examples``, and JSON
carried inside a string becomes ``contentMediaType``/``contentSchema`` (2020-12 §8.4).

``format: date-time`` promises RFC 3339 (a ``T`` and a zone); OpenStack also sends
``2026-11-24 20:10:06.218414``, which a generated ``OffsetDateTime`` would refuse to parse,
so only RFC 3339 layouts keep the format; the others stay strings with a ``pattern`` and the
layout in the description.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Schema = Mapping[str, Any]
RefTarget = Callable[[str], str]
"""Maps a catalog ``$defs`` key (``Instance@2.8``) to the ``$ref`` to write instead."""

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_RFC3339_ZONE = re.compile(r"(Z|z|\+HH:MM)$")


def pascal(text: str) -> str:
    """``vm_state`` → ``VmState``, ``compute.instance.update`` → ``ComputeInstanceUpdate``."""
    words = _WORD.findall(text)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    if not name or name[0].isdigit():
        name = "T" + name
    return name


def version_suffix(version: str | None) -> str:
    """``2.8`` → ``_2_8`` (empty for no version), the tail of a versioned class name."""
    if not version:
        return ""
    return "_" + re.sub(r"[^0-9A-Za-z]+", "_", version).strip("_")


def def_title(def_key: str) -> str:
    """The class name of a versioned object: ``Instance@2.8`` → ``Instance_2_8``."""
    name, _, version = def_key.partition("@")
    return re.sub(r"\W", "_", name) + version_suffix(version)


def is_rfc3339_layout(layout: str) -> bool:
    """Whether a layout from ``x-busdoc-layout`` is RFC 3339 (``T`` separator, a zone)."""
    return "T" in layout and _RFC3339_ZONE.search(layout) is not None


def layout_pattern(layouts: list[str]) -> str:
    """A regular expression matching every layout seen (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    alternatives = []
    for layout in layouts:
        out = ""
        for ch in layout:  # no identity escapes: ECMA-262 "u" mode refuses them
            out += r"\d" if ch in "YMDHSf" else {".": r"\.", "+": "[+-]"}.get(ch, ch)
        alternatives.append(out)
    body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
    return "^" + body + "$"


def clean_schema(
    schema: Schema,
    *,
    title: str,
    suffix: str,
    ref: RefTarget,
    enum_owner: str | None = None,
) -> dict[str, Any]:
    """A copy of ``schema`` for code generators.

    ``title`` names the root (``BuildInstanceArgs``) and, with ``suffix`` (``_1_1``),
    every nested record (``BuildInstanceArgsNetworks_1_1``); enums are named from
    ``enum_owner`` (defaults to ``title``) and the property (``InstanceVmState``).
    """
    return _clean(schema, title, suffix, ref, enum_owner or title, root=True)


def _clean(node: Schema, name: str, suffix: str, ref: RefTarget, enum_name: str,
           root: bool = False, title: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "$ref" in node:
        target = node["$ref"]
        if target.startswith("#/$defs/"):
            target = ref(target[len("#/$defs/"):].replace("~1", "/").replace("~0", "~"))
        out["$ref"] = target
    description = _description(node)
    for key, value in node.items():
        if key.startswith("x-busdoc-") or key in ("$schema", "$defs", "$ref", "description"):
            continue
        if key == "properties":
            out[key] = {prop: _clean_property(prop, sub, name, suffix, ref, enum_name)
                        for prop, sub in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _clean(value, name + "Item", suffix, ref, enum_name)
        elif key == "additionalProperties" and isinstance(value, Mapping):
            out[key] = _clean(value, name + "Value", suffix, ref, enum_name)
        elif key == "anyOf":
            out[key] = [_clean(alt, name, suffix, ref, enum_name) for alt in value]
        else:
            out[key] = value
    types = _types(node)
    if "string" in types and node.get("format") == "date-time":
        layouts = list(node.get("x-busdoc-layout") or [])
        if layouts and not all(is_rfc3339_layout(layout) for layout in layouts):
            del out["format"]
            out["pattern"] = layout_pattern(layouts)
            zone = ("with a zone" if all(_RFC3339_ZONE.search(x) for x in layouts)
                    else "no zone sent: UTC by OpenStack convention"
                    if not any(_RFC3339_ZONE.search(x) for x in layouts)
                    else "zone sometimes sent")
            description = _join(description, "Timestamp as " + " or ".join(
                f"`{x}`" for x in layouts) + f" ({zone}), not RFC 3339.")
    if "x-busdoc-content-schema" in node:
        out["contentMediaType"] = "application/json"
        out["contentSchema"] = _clean(node["x-busdoc-content-schema"], name + "Content",
                                      suffix, ref, enum_name + "Content")
    if "enum" in node or "const" in node:
        # generators turn a const into a one-value enum: name it, or 2.7 and 2.8 of an
        # object would share one NovaObjectVersion enum
        out["title"] = enum_name
    elif "object" in types and "properties" in node:
        out["title"] = (title or name) + suffix
    if root and "title" not in out and "$ref" not in out:
        out["title"] = (title or name) + suffix
    examples = node.get("x-busdoc-examples")
    if examples:
        out["examples"] = list(examples)
    if description:
        out["description"] = description
    return dict(sorted(out.items(), key=lambda kv: _KEY_ORDER.get(kv[0], 50)))


def _clean_property(prop: str, sub: Schema, name: str, suffix: str, ref: RefTarget,
                    enum_name: str) -> dict[str, Any]:
    if prop.endswith("_object.data"):
        # a versioned object's fields: Volume's status enum is VolumeStatus
        return _clean(sub, name, suffix, ref, enum_name, title=name + "Data")
    if "_object." in prop:  # nova_object.version of Volume: VolumeObjectVersion
        word = "Object" + pascal(prop.split("_object.", 1)[1])
        return _clean(sub, name + word, suffix, ref, enum_name + word)
    return _clean(sub, name + pascal(prop), suffix, ref, enum_name + pascal(prop))


_KEY_ORDER = {"$schema": 0, "$id": 1, "title": 2, "description": 3, "$ref": 4, "type": 5,
              "const": 6, "enum": 7, "format": 8, "pattern": 9}


def _types(node: Schema) -> list[str]:
    t = node.get("type")
    return list(t) if isinstance(t, list) else [t] if isinstance(t, str) else []


def _join(a: str, b: str) -> str:
    return f"{a} {b}" if a else b


def _description(node: Schema) -> str:
    text = node.get("description") or ""
    evidence = node.get("x-busdoc-evidence")
    if isinstance(evidence, str):
        text = _join(text, evidence[:1].upper() + evidence[1:] + " messages.")
    nulls = node.get("x-busdoc-null-count")
    if nulls:
        text = _join(text, f"Null {nulls} times.")
    if node.get("x-busdoc-redacted"):
        hint = redaction_hint(node)
        text = _join(text, "Redacted in the capture (a secret)" + (f": {hint}." if hint else "."))
    return str(text)


_FORMAT_WORDS = {
    "fernet": "fernet token",
    "jwt": "JWT",
    "pki": "PKI token",
    "pkiz": "PKIZ token",
    "pem": "PEM block",
    "ssh-public-key": "SSH public key",
    "url": "URL",
}
_CLASS_KEYWORDS = (
    ("x-busdoc-redacted-length", "chars"),
    ("x-busdoc-redacted-items", "items"),
    ("x-busdoc-redacted-properties", "keys"),
)


def redaction_hint(node: Schema) -> str:
    """What a redacted field's shape hints say, for readers: ``fernet token, 128-255 chars``
    (empty when there are none)."""
    parts = []
    for branch in (node, *(node.get("anyOf") or ())):
        fmt = branch.get("x-busdoc-redacted-format")
        if fmt:
            parts.append(_FORMAT_WORDS.get(fmt, fmt))
        for keyword, unit in _CLASS_KEYWORDS:
            label = branch.get(keyword)
            if label is not None:
                parts.append(f"{label} {unit}")
    return ", ".join(parts)


def enum_titles(schema: Any, found: dict[str, set[tuple[Any, ...]]]) -> None:
    """Collect, per enum (or const) title, every distinct value list using it (clashes)."""
    if isinstance(schema, Mapping):
        if "title" in schema and ("enum" in schema or "const" in schema):
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            found.setdefault(schema["title"], set()).add(tuple(map(repr, values)))
        for value in schema.values():
            enum_titles(value, found)
    elif isinstance(schema, list):
        for value in schema:
            enum_titles(value, found)


def retitle_enums(schema: Any, clashing: set[str], suffix: str) -> Any:
    """Give clashing enum titles the owner's version suffix (``InstanceVmState_2_8``)."""
    if isinstance(schema, Mapping):
        out = {k: retitle_enums(v, clashing, suffix) for k, v in schema.items()}
        if ("enum" in out or "const" in out) and out.get("title") in clashing and suffix:
            out["title"] = out["title"] + suffix
        return out
    if isinstance(schema, list):
        return [retitle_enums(v, clashing, suffix) for v in schema]
    return schema
