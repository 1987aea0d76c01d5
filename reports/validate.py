"""Contract check: stored traffic against a catalog.

Each stored message is decoded and named the way inference does it
(``busdoc.inference.classify``), matched to its catalog entry and walked against the
entry's schema. What is found is a **violation** (the message breaks the contract; exit
1) or a **warning** (the message is new evidence, not a breach):

violations
    ``unknown_method`` / ``unknown_event`` / ``unknown_message`` (no entry for it),
    ``unsupported_version`` (an rpc version of another major, or a minor newer than any
    in the catalog: an oslo server at that version refuses it), ``missing_required``,
    ``wrong_type``, ``unexpected_argument`` (a top-level rpc argument the catalog does
    not list: oslo passes arguments as keyword arguments, so the server raises
    ``TypeError``; keys of other objects are only checked when the object is closed),
    and ``not_in_enum`` / ``out_of_range`` for a field marked closed.
warnings
    ``new_value`` (a value outside the enum or the range observed so far),
    ``new_field`` (a key no message had before, in an open object), ``new_failure`` (a
    reply raising an exception the catalog never saw), ``older_version`` (an rpc
    version the catalog has no entry for but an oslo server at a newer minor accepts;
    checked against the newest, where a required argument it lacks is only
    ``absent_in_older_version``: oslo adds arguments in a minor version with defaults),
    ``undecodable`` (a body that claims JSON and is not).

Observed enums and ranges are evidence, not law. A human who knows a set is complete
marks the property in the catalog JSON with ``"x-busdoc-closed": true``: its ``enum``
(or ``x-busdoc-minimum``/``x-busdoc-maximum``) then becomes law, and on an object, keys
outside ``properties`` become violations. ``additionalProperties: false`` closes an
object too.

Findings are grouped per entry, rule and path, with a count and up to
``MAX_EXAMPLES`` examples (message id and the offending value, cut short).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from busdoc.inference.classify import (
    OPAQUE,
    classify,
    decode_body,
    parse_failure,
)
from busdoc.inference.schema import Redacted
from busdoc.reports.diff import CLOSED, enum_of, identity_of, resolve, version_key
from busdoc.reports.diff import json_type as plain_json_type
from busdoc.storage.records import StoredMessage

Severity = Literal["violation", "warning"]
MAX_EXAMPLES = 3
MAX_PENDING_CALLS = 100_000
"""Calls remembered for matching their replies (the oldest are forgotten first)."""
_MAX_DEPTH = 32

VIOLATION_RULES = frozenset({
    "unknown_method", "unknown_event", "unknown_message", "unsupported_version",
    "missing_required", "wrong_type", "unexpected_argument", "unexpected_field",
    "not_in_enum", "out_of_range",
})


@dataclass(frozen=True, slots=True)
class Example:
    message_id: int
    detail: str


@dataclass(slots=True)
class Finding:
    """One rule broken (or one new thing seen) at one path of one entry, counted."""

    entry: str
    rule: str
    path: str
    severity: Severity
    count: int = 0
    examples: list[Example] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"entry": self.entry, "rule": self.rule, "path": self.path,
                "severity": self.severity, "count": self.count,
                "examples": [{"message_id": e.message_id, "detail": e.detail}
                             for e in self.examples]}


@dataclass(slots=True)
class ValidationReport:
    """Findings over every message checked; ``ok`` when there is no violation."""

    messages: int = 0
    checked: int = 0
    skipped: int = 0
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)

    def add(self, entry: str, rule: str, path: str, message_id: int, detail: str) -> None:
        severity: Severity = "violation" if rule in VIOLATION_RULES else "warning"
        key = (entry, rule, path)
        f = self.findings.get(key)
        if f is None:
            f = self.findings[key] = Finding(entry, rule, path, severity)
        f.count += 1
        if len(f.examples) < MAX_EXAMPLES:
            f.examples.append(Example(message_id, detail))

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings.values(),
                      key=lambda f: (f.severity != "violation", f.entry, f.rule, f.path))

    @property
    def violations(self) -> int:
        return sum(f.count for f in self.findings.values() if f.severity == "violation")

    @property
    def warnings(self) -> int:
        return sum(f.count for f in self.findings.values() if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return self.violations == 0

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "messages": self.messages, "checked": self.checked,
                "skipped": self.skipped, "violations": self.violations,
                "warnings": self.warnings,
                "findings": [f.to_json() for f in self.sorted_findings()]}


# --------------------------------------------------------------------------- matching


class _Index:
    """Catalog entries by what a message can be matched on."""

    def __init__(self, catalog: Mapping[str, Any]) -> None:
        self.rpc: dict[tuple[str, str, str], dict[str | None, Mapping[str, Any]]] = {}
        self.by_key: dict[str, Mapping[str, Any]] = {}
        for e in catalog.get("entries", []):
            self.by_key[str(e.get("key"))] = e
            if e.get("kind") == "rpc":
                k = (str(e.get("topic")), e.get("namespace") or "", str(e.get("method")))
                self.rpc.setdefault(k, {})[e.get("version")] = e
        self.exchanges: dict[str, set[str]] = {}
        for e in catalog.get("entries", []):
            if e.get("kind") == "rpc" and e.get("exchange"):
                self.exchanges.setdefault(str(e.get("topic")), set()).add(str(e["exchange"]))


def _minor_ok(version: str | None, newest: str | None) -> bool:
    """oslo's rule: same major, and a minor no newer than the server's."""
    if version is None or newest is None:
        return version == newest
    va, vb = version_key(version)[0], version_key(newest)[0]
    return bool(va) and bool(vb) and va[0] == vb[0] and va <= vb


def validate_messages(catalog: Mapping[str, Any],
                      messages: Iterable[StoredMessage]) -> ValidationReport:
    """Check every message against ``catalog`` (module docstring for the rules)."""
    index = _Index(catalog)
    report = ValidationReport()
    calls: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
    for message in messages:
        report.messages += 1
        decoded = decode_body(message)
        if decoded.status == "truncated":
            report.skipped += 1
            continue
        c = classify(message, decoded)
        mid = message.id
        if decoded.status == "undecodable":
            report.add("?", "undecodable", "", mid, f"{message.exchange}/{message.routing_key}")
            report.checked += 1
            continue
        report.checked += 1
        if c.kind in ("call", "cast", "fanout"):
            exchange = c.exchange
            if exchange is None:
                known = sorted(index.exchanges.get(c.topic or "", ()))
                exchange = known[0] if len(known) == 1 else "?"
            ident = f"rpc:{exchange}/{c.topic}/{c.namespace or ''}/{c.method}"
            versions = index.rpc.get((c.topic or "", c.namespace or "", c.method or ""))
            if not versions:
                report.add(ident, "unknown_method", "", mid, f"method {c.method!r}")
                continue
            entry = versions.get(c.version)
            older = entry is None
            if entry is None:
                newest = max(versions, key=version_key)
                if _minor_ok(c.version, newest):
                    report.add(ident, "older_version", "", mid,
                               f"version {c.version}, checked against {newest}")
                    entry = versions[newest]
                else:
                    report.add(ident, "unsupported_version", "", mid,
                               f"version {c.version}; catalog has "
                               f"{', '.join(str(v) for v in sorted(versions, key=version_key))}")
                    continue
            label = f"{ident}@{entry.get('version') or ''}"
            args = c.body.get("args")
            _Walk(report, label, mid, entry.get("schema") or {}, older).value(
                {} if args is None else args, entry.get("schema") or {}, "", kwargs=True)
            if c.kind == "call" and c.msg_id is not None:
                calls[c.msg_id] = entry
                if len(calls) > MAX_PENDING_CALLS:
                    calls.popitem(last=False)
        elif c.kind == "reply":
            entry = calls.get(c.msg_id or "")
            if entry is None:
                continue  # its call is not in this traffic: nothing to check it against
            label = f"{identity_of(entry)[0]}@{entry.get('version') or ''}"
            body = c.body
            if body.get("ending", True):
                calls.pop(c.msg_id or "", None)
            reply = entry.get("reply") or {}
            failure = body.get("failure")
            if failure is not None:
                exc, _module, text = parse_failure(failure)
                raised = {f.get("exception") for f in reply.get("failures") or []}
                if exc not in raised:
                    report.add(label, "new_failure", "reply:", mid, f"{exc}: {text or ''}"[:120])
            elif reply.get("schema") and "result" in body and body.get("result") is not None:
                _Walk(report, label, mid, reply["schema"]).value(
                    body["result"], reply["schema"], "reply:", kwargs=False)
        elif c.kind == "notification":
            key = f"notification:{c.exchange or ''}/{c.topic or ''}/{c.event_type or ''}"
            entry = index.by_key.get(key)
            if entry is None:
                report.add(key, "unknown_event", "", mid, f"event_type {c.event_type!r}")
                continue
            _Walk(report, key, mid, entry.get("schema") or {}).value(
                c.body.get("payload"), entry.get("schema") or {}, "", kwargs=False)
        else:
            protocol = "json" if c.kind == "json" else c.kind
            ident = "/".join(f"{k}={v}" for k, v in sorted(c.identity.items()) if v is not None)
            key = f"other:{protocol}:{ident}"
            entry = index.by_key.get(key)
            if entry is None:
                report.add(key, "unknown_message", "", mid,
                           f"{message.exchange}/{message.routing_key}")
                continue
            schema = entry.get("schema")
            if schema and c.body is not None and c.body is not OPAQUE:
                _Walk(report, key, mid, schema).value(c.body, schema, "", kwargs=False)
    return report


# --------------------------------------------------------------------------- values


def json_type(v: Any) -> str:
    """JSON type of a decoded value; a redacted one keeps the type it had."""
    if isinstance(v, Redacted):
        return v.json_type
    return plain_json_type(v)


def _admits(types: list[str] | None, t: str) -> bool:
    if types is None:
        return True
    return t in types or (t == "integer" and "number" in types)


def _short(v: Any) -> str:
    if isinstance(v, Redacted):
        return "<redacted>"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _types(node: Mapping[str, Any]) -> list[str] | None:
    t = node.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [str(x) for x in t]
    return None


@dataclass(slots=True)
class _Walk:
    report: ValidationReport
    entry: str
    message_id: int
    doc: Mapping[str, Any]
    older: bool = False
    """Checking an older rpc version against a newer entry: arguments added since
    must have defaults in the server (oslo's minor-version rule), so their absence
    is a warning."""

    def add(self, rule: str, path: str, detail: str) -> None:
        self.report.add(self.entry, rule, path or "(top)", self.message_id, detail)

    def value(self, v: Any, node: Mapping[str, Any], path: str, *, kwargs: bool,
              depth: int = 0) -> None:
        if depth > _MAX_DEPTH:
            return
        node = resolve(node, self.doc)
        branches = node.get("anyOf")
        if isinstance(branches, list) and branches and "type" not in node:
            for b in branches:  # valid when one branch takes it without a violation
                trial = ValidationReport()
                _Walk(trial, self.entry, self.message_id, self.doc).value(
                    v, b, path, kwargs=kwargs, depth=depth + 1)
                if trial.ok:
                    return
            self.add("wrong_type", path, f"{_short(v)} matches no alternative")
            return
        t = json_type(v)
        types = _types(node)
        if not _admits(types, t):
            self.add("wrong_type", path, f"{t} {_short(v)}, expected {'|'.join(types or [])}")
            return
        if isinstance(v, Redacted) or v is None:
            return
        closed = bool(node.get(CLOSED))
        enum = enum_of(node)
        if enum is not None and not isinstance(v, dict | list):
            if not any(json_type(e) == t and e == v for e in enum):
                self.add("not_in_enum" if closed else "new_value", path,
                         f"{_short(v)} not in {_short(enum)}")
        if t in ("integer", "number"):
            lo, hi = node.get("x-busdoc-minimum"), node.get("x-busdoc-maximum")
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                self.add("out_of_range" if closed else "new_value", path,
                         f"{v!r} outside {lo}..{hi}")
        if t == "object":
            self.obj(v, node, path, kwargs=kwargs, depth=depth)
        elif t == "array":
            items = node.get("items")
            if isinstance(items, Mapping):
                for item in v:
                    self.value(item, items, f"{path}[]", kwargs=False, depth=depth + 1)

    def obj(self, v: Mapping[str, Any], node: Mapping[str, Any], path: str, *,
            kwargs: bool, depth: int) -> None:
        props = node.get("properties") or {}
        extra = node.get("additionalProperties")
        prefix = f"{path}." if path and not path.endswith(":") else path
        for name in node.get("required") or ():
            if name not in v:
                rule = "absent_in_older_version" if kwargs and self.older else "missing_required"
                self.add(rule, f"{prefix}{name}", "absent")
        for name in sorted(v):
            sub = f"{prefix}{name}"
            if name in props:
                self.value(v[name], props[name], sub, kwargs=False, depth=depth + 1)
            elif isinstance(extra, Mapping):
                self.value(v[name], extra, f"{prefix}*", kwargs=False, depth=depth + 1)
            elif kwargs:
                self.add("unexpected_argument", sub, _short(v[name]))
            elif extra is False or node.get(CLOSED):
                self.add("unexpected_field", sub, _short(v[name]))
            elif props:
                self.add("new_field", sub, _short(v[name]))


def _iter_rows(report: ValidationReport) -> Iterator[tuple[str, list[Finding]]]:
    by_entry: dict[str, list[Finding]] = {}
    for f in report.sorted_findings():
        by_entry.setdefault(f.entry, []).append(f)
    for entry in sorted(by_entry):
        yield entry, by_entry[entry]


def render_markdown(report: ValidationReport, catalog_label: str = "the catalog") -> str:
    """Violations and warnings per entry, with examples."""
    lines = [f"# Traffic checked against {catalog_label}", ""]
    verdict = "conforms" if report.ok else "violates the contract"
    skipped = (f" ({report.skipped} skipped: bodies cut at the body limit)"
               if report.skipped else "")
    lines.append(f"{report.checked} messages checked{skipped}: the traffic {verdict}; "
                 f"{report.violations} violations, {report.warnings} warnings.")
    lines.append("")
    for entry, findings in _iter_rows(report):
        lines.append(f"## `{entry}`")
        lines.append("")
        lines.append("| severity | rule | field | count | examples |")
        lines.append("| --- | --- | --- | --- | --- |")
        for f in findings:
            ex = "; ".join(f"#{e.message_id}: {e.detail}" for e in f.examples)
            ex = ex.replace("|", "\\|")
            field_ = f"`{f.path}`" if f.path else "–"
            sev = "**violation**" if f.severity == "violation" else "warning"
            lines.append(f"| {sev} | {f.rule.replace('_', ' ')} | {field_} | {f.count} | "
                         f"{ex} |")
        lines.append("")
    return "\n".join(lines)
