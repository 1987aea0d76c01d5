"""One JSON Schema 2020-12 file per method, reply, event and versioned object.

Layout (``-o DIRECTORY``)::

    objects/Instance@2.8.schema.json               the object's envelope, consts and data
    nova/compute/build_instance@1.1.schema.json    ``args`` of the method
    nova/compute/build_instance@1.1.reply.schema.json   ``result`` of its replies
    nova/notifications/compute.instance.update.schema.json   ``payload`` of the event
    nova/_wire/{envelope,request,reply,notification,context}.schema.json
    other/<protocol>/<identity>.schema.json         Celery and plain JSON bodies
    index.json                                      entry key → files

Each file reaches shared objects by a relative ``$ref``
(``../../objects/Instance@2.8.schema.json``) and its ``$id`` is its own file name, a
relative URI resolved against wherever the file is read from (2020-12 §8.2.1): on disk,
or served under ``BASE_URI`` (``index.json`` says so). An absolute ``$id`` looked cleaner but
made quicktype see a file given on its command line and the same file reached by ``$ref``
as two types (``Instance2_8`` and ``InstanceClass``); with the relative one each versioned
object is one class.
"""

from __future__ import annotations

import json
import posixpath
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

BASE_URI = "https://busdoc.invalid/schemas/"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
WIRE = "_wire"

Entry = Mapping[str, Any]


def _segment(text: str) -> str:
    """A path segment that is safe on every filesystem and in a URI."""
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", text).strip("._") or "_"


def service_of(entry: Entry) -> str:
    return _segment(entry.get("exchange") or "_unknown")


def method_path(entry: Entry) -> str:
    """``nova/compute/build_instance@1.1`` (``…/<namespace>/<method>`` when namespaced)."""
    parts = [service_of(entry), _segment(entry["topic"])]
    if entry.get("namespace"):
        parts.append(_segment(entry["namespace"]))
    name = _segment(entry["method"])
    if entry.get("version"):
        name += "@" + _segment(entry["version"])
    return "/".join([*parts, name])


def entry_files(entry: Entry) -> list[str]:
    """The schema files written for one catalog entry (empty when it has no schema)."""
    kind = entry["kind"]
    if kind == "rpc":
        base = method_path(entry)
        files = [base + ".schema.json"]
        if entry.get("reply") and entry["reply"].get("schema"):
            files.append(base + ".reply.schema.json")
        return files
    if kind == "notification":
        return [f"{_segment(entry['exchange'])}/{_segment(entry['topic'])}/"
                f"{_segment(entry['event_type'])}.schema.json"]
    if kind == "object":
        return [f"objects/{_segment(entry['def_key'])}.schema.json"]
    if entry.get("schema"):
        ident = "-".join(_segment(str(v)) for _k, v in sorted(entry["identity"].items())
                         if v is not None)
        return [f"other/{entry['protocol']}/{ident or 'body'}.schema.json"]
    return []


def _ref_from(path: str) -> Any:
    here = posixpath.dirname(path)

    def target(def_key: str) -> str:
        return posixpath.relpath(f"objects/{_segment(def_key)}.schema.json", here or ".")

    return target


def _document(path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"$schema": DIALECT, "$id": posixpath.basename(path), **body}


def _find_definitions(catalog: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every versioned object's envelope definition, from any ``$defs`` that holds it."""
    found: dict[str, Mapping[str, Any]] = {}

    def visit(schema: Any) -> None:
        if isinstance(schema, Mapping):
            for key, definition in (schema.get("$defs") or {}).items():
                found.setdefault(key, definition)
    for entry in catalog.get("entries", []):
        visit(entry.get("schema"))
        reply = entry.get("reply") or {}
        visit(reply.get("schema"))
    for context in (catalog.get("contexts") or {}).values():
        visit(context)
    return found


def _object_definition(entry: Entry, found: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any]:
    if entry["def_key"] in found:
        return found[entry["def_key"]]
    p = (entry.get("prefix") or entry["namespace"]) + "_object."
    return {"type": "object", "properties": {
        p + "name": {"const": entry["name"]}, p + "namespace": {"const": entry["namespace"]},
        p + "version": {"const": entry["version"]}, p + "data": entry.get("schema") or {}},
        "required": sorted([p + "data", p + "name", p + "version"])}


def _method_title(entry: Entry) -> str:
    return pascal(entry["method"])


def jsonschema_documents(catalog: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Relative path → schema document, before serialisation (tests inspect these)."""
    docs: dict[str, dict[str, Any]] = {}
    suffixes: dict[str, str] = {}
    index: dict[str, list[str]] = {}
    found = _find_definitions(catalog)
    contexts = catalog.get("contexts") or {}
    for entry in catalog.get("entries", []):
        files = entry_files(entry)
        index[entry["key"]] = files
        kind = entry["kind"]
        if kind == "rpc":
            suffix = version_suffix(entry.get("version"))
            name = _method_title(entry)
            docs[files[0]] = clean_schema(entry["schema"], title=name + "Args", suffix=suffix,
                                          ref=_ref_from(files[0]), enum_owner=name)
            if len(files) > 1:
                docs[files[1]] = clean_schema(entry["reply"]["schema"], title=name + "Reply",
                                              suffix=suffix, ref=_ref_from(files[1]),
                                              enum_owner=name + "Reply")
        elif kind == "notification":
            suffix = ""
            docs[files[0]] = clean_schema(entry["schema"],
                                          title=pascal(entry["event_type"]) + "Payload",
                                          suffix="", ref=_ref_from(files[0]),
                                          enum_owner=pascal(entry["event_type"]))
        elif kind == "object":
            suffix = version_suffix(entry["version"])
            definition = _object_definition(entry, found)
            docs[files[0]] = clean_schema(definition, title=pascal(entry["name"]),
                                          suffix=suffix, ref=_ref_from(files[0]))
            docs[files[0]]["title"] = def_title(entry["def_key"])
        else:
            suffix = ""
            if files:
                ident = entry["identity"]
                label = ident.get("task") or ident.get("type") or ident.get("routing_key") or "Body"
                docs[files[0]] = clean_schema(entry["schema"], title=pascal(str(label)) + "Body",
                                              suffix="", ref=_ref_from(files[0]))
        for f in files:
            suffixes[f] = suffix
    for service in sorted(contexts):
        folder = f"{_segment(service)}/{WIRE}"
        title = pascal(service)
        context = clean_schema(contexts[service], title=title + "Context", suffix="",
                               ref=_ref_from(folder + "/context.schema.json"))
        docs[f"{folder}/context.schema.json"] = context
        docs[f"{folder}/request.schema.json"] = wire.request_schema(title + "Request", context)
        docs[f"{folder}/reply.schema.json"] = wire.reply_schema(title + "ReplyMessage")
        docs[f"{folder}/notification.schema.json"] = wire.notification_schema(
            title + "Notification", context)
        docs[f"{folder}/envelope.schema.json"] = wire.envelope_schema(
            "request.schema.json", title + "Envelope")
        index[f"wire:{service}"] = sorted(f"{folder}/{n}.schema.json" for n in
                                          ("context", "envelope", "notification", "reply",
                                           "request"))
    _dedupe_enum_titles(docs, suffixes)
    out = {path: _document(path, body) for path, body in sorted(docs.items())}
    out["index.json"] = {"base_uri": BASE_URI, "entries": dict(sorted(index.items()))}
    return out


def _dedupe_enum_titles(docs: dict[str, dict[str, Any]], suffixes: Mapping[str, str]) -> None:
    """Two different enums must not share a class name: version the clashing ones."""
    values: dict[str, set[tuple[Any, ...]]] = {}
    enum_titles(list(docs.values()), values)
    clashing = {title for title, sets in values.items() if len(sets) > 1}
    if clashing:
        for path in docs:
            docs[path] = retitle_enums(docs[path], clashing, suffixes.get(path, ""))


def jsonschema_files(catalog: Mapping[str, Any]) -> dict[str, str]:
    """The ``jsonschema`` format: one file per method/reply/event/object (see module doc)."""
    return {path: json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
            for path, doc in jsonschema_documents(catalog).items()}
