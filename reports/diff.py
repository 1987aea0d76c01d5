"""Drift between two catalogs: what changed, and whom it breaks.

Both sides are catalog documents (``docs/catalog.schema.json``). Entries are matched by
their identity without the version (``rpc:nova/compute//ping``, ``object:nova/Instance``,
a notification's or other entry's key), then their schemas are compared field by field:
objects by ``properties``/``required``, arrays by ``items`` (path ``x[]``), maps by
``additionalProperties`` (path ``x.*``), ``$ref`` resolved in the document's ``$defs``. An
rpc entry's reply ``result`` is compared too (paths under ``reply:``), and so is the
request context of each control exchange (entry ``context:<exchange>``).

Who breaks
----------
Every change is labelled twice. **sender**: does a sender built for OLD still work
against receivers built for NEW (is every OLD message a NEW message)? **receiver**: does
a receiver built for OLD still understand what NEW senders send (is every NEW message an
OLD message)? For an rpc method the sender is the caller and the receiver the server;
for its reply (``reply:`` paths) it is the other way round. Rules:

* entry added: compatible both ways; entry removed: breaks senders (nobody serves it).
* field added and required: breaks senders (they omit it). Field added and optional:
  compatible for senders. Either way it breaks receivers only where the object is
  *closed*: the top-level arguments of an rpc method (oslo passes them as keyword
  arguments, so an unexpected one is a ``TypeError`` in the server), or any object with
  ``additionalProperties: false`` or ``x-busdoc-closed: true``; elsewhere receivers are
  tolerant readers that ignore keys they do not know.
* field removed: breaks receivers when OLD required it; breaks senders where the object
  is closed (they still send it).
* required → optional: breaks receivers (it may be missing); optional → required:
  breaks senders.
* type widened (``integer`` → ``integer|null``, ``integer`` → ``number``): breaks
  receivers; narrowed: breaks senders; changed (neither): breaks both.
* enum: observed enums are evidence, not law, so a changed set of seen values is
  reported as compatible, unless either side marks the field ``x-busdoc-closed: true``
  (a human adds it to say "this list is complete"): then a value added breaks receivers
  and a value removed breaks senders.
* versioned-object version or ``$ref`` target changed: reported, compatible (oslo
  backports objects on request); the fields behind it are compared as usual.

Versions
--------
For rpc methods and versioned objects each version present on both sides is compared
with itself: any change there changed the shape **without a version bump**, the drift
oslo's versioning exists to prevent, and is called out (``unbumped``). When NEW's
newest version is not in OLD, OLD's newest is compared with it (a bump); a changed
major version breaks senders (oslo servers refuse another major), and so does a
version OLD had above NEW's newest (``version_removed``: callers pinned there are
refused).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Effect = Literal["breaking", "compatible"]
BREAKING: Effect = "breaking"
COMPATIBLE: Effect = "compatible"
CLOSED = "x-busdoc-closed"
"""Keyword a human adds to a catalog property: its observed enum (or range) is complete,
or, on an object, no other keys are allowed."""
_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between OLD and NEW."""

    entry: str
    """Identity of the interface without its version (``rpc:nova/compute//ping``)."""
    change: str
    """``entry_added``, ``entry_removed``, ``field_added``, ``field_removed``,
    ``now_optional``, ``now_required``, ``type_widened``, ``type_narrowed``,
    ``type_changed``, ``enum_changed``, ``ref_changed``, ``major_version_changed``,
    ``version_removed``."""
    path: str = ""
    """Field path (``flavor_id``, ``networks[].port_id``, ``meta.*``; ``reply:`` prefix
    for results); empty for the entry itself."""
    old: Any = None
    new: Any = None
    sender: Effect = COMPATIBLE
    receiver: Effect = COMPATIBLE
    old_version: str | None = None
    new_version: str | None = None
    unbumped: bool = False
    """Shape changed while the version stayed the same."""

    @property
    def breaking(self) -> bool:
        return self.sender == BREAKING or self.receiver == BREAKING

    def to_json(self) -> dict[str, Any]:
        return {"entry": self.entry, "change": self.change, "path": self.path,
                "old": self.old, "new": self.new, "sender": self.sender,
                "receiver": self.receiver, "old_version": self.old_version,
                "new_version": self.new_version, "unbumped": self.unbumped}


@dataclass(frozen=True, slots=True)
class CatalogDiff:
    """Every change, in a stable order, with the verdict for CI."""

    changes: tuple[Change, ...]
    old_label: str = "OLD"
    new_label: str = "NEW"

    @property
    def breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    @property
    def unbumped(self) -> list[str]:
        """``entry@version`` of every shape that changed without a version bump."""
        return sorted({f"{c.entry}@{c.old_version or ''}" for c in self.changes
                       if c.unbumped})

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old_label,
            "new": self.new_label,
            "breaking": self.breaking,
            "summary": {
                "changes": len(self.changes),
                "breaking_for_senders": sum(c.sender == BREAKING for c in self.changes),
                "breaking_for_receivers": sum(c.receiver == BREAKING for c in self.changes),
                "unbumped": self.unbumped,
            },
            "changes": [c.to_json() for c in self.changes],
        }


# --------------------------------------------------------------------------- entries


@dataclass(slots=True)
class _Side:
    """One entry's comparable parts."""

    entry: Mapping[str, Any]
    identity: str
    version: str | None
    kwargs: bool = False
    """Top-level object is rpc arguments (closed: keyword arguments)."""


def identity_of(entry: Mapping[str, Any]) -> tuple[str, str | None]:
    """(identity without version, version) of a catalog entry."""
    kind = entry.get("kind")
    if kind == "rpc":
        ident = (f"rpc:{entry.get('exchange') or '?'}/{entry.get('topic')}/"
                 f"{entry.get('namespace') or ''}/{entry.get('method')}")
        return ident, entry.get("version")
    if kind == "object":
        return f"object:{entry.get('namespace')}/{entry.get('name')}", entry.get("version")
    return str(entry.get("key")), None


def _sides(catalog: Mapping[str, Any]) -> dict[str, dict[str | None, _Side]]:
    out: dict[str, dict[str | None, _Side]] = {}
    for exchange, schema in sorted((catalog.get("contexts") or {}).items()):
        # the oslo request context of an exchange: an open object like any payload
        ident = f"context:{exchange}"
        out[ident] = {None: _Side({"kind": "context", "key": ident, "schema": schema},
                                  ident, None)}
    for entry in catalog.get("entries", []):
        ident, version = identity_of(entry)
        out.setdefault(ident, {})[version] = _Side(entry, ident, version,
                                                   kwargs=entry.get("kind") == "rpc")
    return out


def version_key(v: str | None) -> tuple[tuple[int, ...], str]:
    """Sort key for dotted versions (``1.10`` after ``1.9``); non-numeric ones last."""
    try:
        return tuple(int(p) for p in (v or "").split(".")), ""
    except ValueError:
        return (1 << 30,), v or ""


def _major(v: str | None) -> str | None:
    return None if v is None else v.split(".")[0]


def diff_catalogs(old: Mapping[str, Any], new: Mapping[str, Any], *,
                  old_label: str = "OLD", new_label: str = "NEW") -> CatalogDiff:
    """Compare two catalog documents (module docstring for the rules)."""
    a, b = _sides(old), _sides(new)
    changes: list[Change] = []
    for ident in sorted(a.keys() | b.keys()):
        va, vb = a.get(ident, {}), b.get(ident, {})
        if not vb:
            latest = max(va, key=version_key)
            changes.append(Change(ident, "entry_removed", sender=BREAKING,
                                  old_version=latest))
            continue
        if not va:
            latest = max(vb, key=version_key)
            changes.append(Change(ident, "entry_added", new_version=latest))
            continue
        for version in sorted(va.keys() & vb.keys(), key=version_key):
            changes.extend(_compare(va[version], vb[version], unbumped=True))
        newest_a, newest_b = max(va, key=version_key), max(vb, key=version_key)
        for version in sorted(va.keys() - vb.keys(), key=version_key):
            if version_key(version) > version_key(newest_b):
                # callers pinned at it are refused by servers that stopped at newest_b
                changes.append(Change(ident, "version_removed", old=version, new=newest_b,
                                      sender=BREAKING, old_version=version,
                                      new_version=newest_b))
        if newest_b not in va:
            if _major(newest_a) != _major(newest_b):
                changes.append(Change(ident, "major_version_changed", old=newest_a,
                                      new=newest_b, sender=BREAKING,
                                      old_version=newest_a, new_version=newest_b))
            changes.extend(_compare(va[newest_a], vb[newest_b], unbumped=False))
    return CatalogDiff(tuple(changes), old_label, new_label)


def _compare(sa: _Side, sb: _Side, *, unbumped: bool) -> Iterator[Change]:
    unbumped = unbumped and sa.version is not None  # only versioned shapes can be bumped
    ctx = _Ctx(sa.identity, sa.version, sb.version, unbumped,
               sa.entry.get("schema") or {}, sb.entry.get("schema") or {})
    yield from ctx.node(sa.entry.get("schema") or {}, sb.entry.get("schema") or {}, "",
                        kwargs=sa.kwargs, depth=0)
    ra, rb = sa.entry.get("reply") or {}, sb.entry.get("reply") or {}
    if ra.get("schema") and rb.get("schema"):
        rctx = _Ctx(sa.identity, sa.version, sb.version, unbumped, ra["schema"],
                    rb["schema"])
        yield from rctx.node(ra["schema"], rb["schema"], "reply:", kwargs=False, depth=0)


@dataclass(slots=True)
class _Ctx:
    identity: str
    old_version: str | None
    new_version: str | None
    unbumped: bool
    doc_a: Mapping[str, Any]
    doc_b: Mapping[str, Any]
    seen: set[tuple[str, str]] = field(default_factory=set)

    def make(self, change: str, path: str, old: Any, new: Any, sender: Effect,
             receiver: Effect) -> Change:
        return Change(self.identity, change, path, old, new, sender, receiver,
                      self.old_version, self.new_version, self.unbumped)

    def node(self, a: Mapping[str, Any], b: Mapping[str, Any], path: str, *,
             kwargs: bool, depth: int) -> Iterator[Change]:
        if depth > _MAX_DEPTH:
            return
        ref_a, ref_b = a.get("$ref"), b.get("$ref")
        if ref_a != ref_b and (ref_a or ref_b):
            yield self.make("ref_changed", path, _ref_name(ref_a), _ref_name(ref_b),
                            COMPATIBLE, COMPATIBLE)
        if ref_a and ref_b:
            pair = (str(ref_a), str(ref_b))
            if pair in self.seen:  # a recursive definition: compared once
                return
            self.seen.add(pair)
        a, b = resolve(a, self.doc_a), resolve(b, self.doc_b)
        ta, tb = types_of(a, self.doc_a), types_of(b, self.doc_b)
        if ta != tb:
            if _within(ta, tb):
                yield self.make("type_widened", path, _t(ta), _t(tb), COMPATIBLE, BREAKING)
            elif _within(tb, ta):
                yield self.make("type_narrowed", path, _t(ta), _t(tb), BREAKING, COMPATIBLE)
            else:
                yield self.make("type_changed", path, _t(ta), _t(tb), BREAKING, BREAKING)
        yield from self.enum(a, b, path)
        if "object" in ta and "object" in tb:
            yield from self.obj(a, b, path, kwargs=kwargs, depth=depth)
        if "array" in ta and "array" in tb:
            ia, ib = a.get("items"), b.get("items")
            if isinstance(ia, Mapping) and isinstance(ib, Mapping):
                yield from self.node(ia, ib, f"{path}[]", kwargs=False, depth=depth + 1)

    def enum(self, a: Mapping[str, Any], b: Mapping[str, Any], path: str) -> Iterator[Change]:
        ea, eb = enum_of(a), enum_of(b)
        if ea is None or eb is None or _enum_set(ea) == _enum_set(eb):
            return
        closed = bool(a.get(CLOSED) or b.get(CLOSED))
        added = [v for v in eb if _key(v) not in _enum_set(ea)]
        removed = [v for v in ea if _key(v) not in _enum_set(eb)]
        sender = BREAKING if closed and removed else COMPATIBLE
        receiver = BREAKING if closed and added else COMPATIBLE
        yield self.make("enum_changed", path, _sorted(ea), _sorted(eb), sender, receiver)

    def obj(self, a: Mapping[str, Any], b: Mapping[str, Any], path: str, *, kwargs: bool,
            depth: int) -> Iterator[Change]:
        pa, pb = a.get("properties") or {}, b.get("properties") or {}
        ra, rb = set(a.get("required") or ()), set(b.get("required") or ())
        closed_a = kwargs or a.get("additionalProperties") is False or bool(a.get(CLOSED))
        prefix = f"{path}." if path and not path.endswith(":") else path
        for name in sorted(pa.keys() | pb.keys()):
            sub = f"{prefix}{name}"
            if name not in pa:
                required = name in rb
                yield self.make("field_added", sub, None,
                                "required" if required else "optional",
                                BREAKING if required else COMPATIBLE,
                                BREAKING if closed_a else COMPATIBLE)
            elif name not in pb:
                closed_b = (kwargs or b.get("additionalProperties") is False
                            or bool(b.get(CLOSED)))
                yield self.make("field_removed", sub,
                                "required" if name in ra else "optional", None,
                                BREAKING if closed_b else COMPATIBLE,
                                BREAKING if name in ra else COMPATIBLE)
            else:
                if name in ra and name not in rb:
                    yield self.make("now_optional", sub, "required", "optional",
                                    COMPATIBLE, BREAKING)
                elif name in rb and name not in ra:
                    yield self.make("now_required", sub, "optional", "required",
                                    BREAKING, COMPATIBLE)
                yield from self.node(pa[name], pb[name], sub, kwargs=False, depth=depth + 1)
        ma, mb = a.get("additionalProperties"), b.get("additionalProperties")
        if isinstance(ma, Mapping) and isinstance(mb, Mapping):
            yield from self.node(ma, mb, f"{prefix}*", kwargs=False, depth=depth + 1)


# --------------------------------------------------------------------------- schema bits


def resolve(node: Mapping[str, Any], doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/Name``) in ``doc``; anything else as is."""
    for _ in range(_MAX_DEPTH):
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            return node
        target = (doc.get("$defs") or {}).get(ref[len("#/$defs/"):])
        if not isinstance(target, Mapping):
            return node
        node = target
    return node


def types_of(node: Mapping[str, Any], doc: Mapping[str, Any]) -> frozenset[str]:
    """JSON types a schema node admits; ``any`` when it does not say."""
    node = resolve(node, doc)
    t = node.get("type")
    if isinstance(t, str):
        return frozenset({t})
    if isinstance(t, list):
        return frozenset(str(x) for x in t)
    if "const" in node or "enum" in node:
        return frozenset(json_type(v) for v in (enum_of(node) or []))
    if isinstance(node.get("anyOf"), list):
        out: set[str] = set()
        for branch in node["anyOf"]:
            if isinstance(branch, Mapping):
                out |= types_of(branch, doc)
        return frozenset(out)
    if "properties" in node:
        return frozenset({"object"})
    return frozenset({"any"})


def enum_of(node: Mapping[str, Any]) -> list[Any] | None:
    if "enum" in node and isinstance(node["enum"], list):
        return list(node["enum"])
    if "const" in node:
        return [node["const"]]
    return None


def json_type(v: Any) -> str:
    """JSON type name of a decoded value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list | tuple):
        return "array"
    return "object"


def _within(small: frozenset[str], big: frozenset[str]) -> bool:
    """Every value of ``small`` is a value of ``big`` (integers are numbers)."""
    if "any" in big:
        return True
    return all(t in big or (t == "integer" and "number" in big) for t in small)


def _t(types: frozenset[str]) -> str:
    return "|".join(sorted(types))


def _key(v: Any) -> str:
    return f"{json_type(v)}:{v!r}"


def _enum_set(values: list[Any]) -> set[str]:
    return {_key(v) for v in values}


def _sorted(values: list[Any]) -> list[Any]:
    return sorted(values, key=_key)


def _ref_name(ref: Any) -> str | None:
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


# --------------------------------------------------------------------------- rendering


def _effect(e: Effect) -> str:
    return "**breaking**" if e == BREAKING else "compatible"


def _show(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, list):
        return ", ".join(f"`{x}`" for x in v) or "–"
    return f"`{v}`"


def render_markdown(d: CatalogDiff) -> str:
    """A table per entry, breaking changes first in the summary."""
    s = d.to_json()["summary"]
    lines = [f"# Interface changes: {d.old_label} → {d.new_label}", ""]
    verdict = "breaking changes found" if d.breaking else "no breaking change"
    lines.append(f"{s['changes']} changes, {verdict}: {s['breaking_for_senders']} break "
                 f"senders, {s['breaking_for_receivers']} break receivers.")
    lines.append("")
    lines.append("*sender*: a sender built for the old interface, talking to new receivers; "
                 "*receiver*: a receiver built for the old interface, hearing new senders "
                 "(for `reply:` fields the server is the sender).")
    lines.append("")
    if d.unbumped:
        lines.append("## Changed without a version bump")
        lines.append("")
        lines.extend(f"- `{u}`" for u in d.unbumped)
        lines.append("")
    by_entry: dict[str, list[Change]] = {}
    for c in d.changes:
        by_entry.setdefault(c.entry, []).append(c)
    for ident, group in by_entry.items():
        lines.append(f"## `{ident}`")
        lines.append("")
        lines.append("| change | field | old | new | version | sender | receiver |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- |")
        for c in group:
            if c.unbumped:
                ver = f"{c.old_version} (not bumped)"
            elif c.old_version != c.new_version:
                ver = f"{c.old_version or '–'} → {c.new_version or '–'}"
            else:
                ver = c.old_version or "–"
            lines.append(f"| {c.change.replace('_', ' ')} | {_show(c.path or None)} | "
                         f"{_show(c.old)} | {_show(c.new)} | {ver} | {_effect(c.sender)} | "
                         f"{_effect(c.receiver)} |")
        lines.append("")
    if not d.changes:
        lines.append("The two catalogs describe the same shapes.")
        lines.append("")
    return "\n".join(lines)
