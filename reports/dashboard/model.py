"""What the dashboard shows, as plain values: no Textual here, so it is tested as tables.

Everything is computed from the catalog contract (``docs/catalog.schema.json``) that
``busdoc infer`` persists in the store; nothing here re-runs inference. The one place that
reads messages is ``recent_samples``: it looks at a bounded window of the newest stored
messages and keeps those that name the entry, so a page opens in the same time on a
store of a thousand messages or of a million.

Times are shown relative to the newest message in the catalog, never to the wall clock:
a capture from last week reads the same today, and snapshots stay byte-stable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from busdoc.reports.generator import redaction_hint

if TYPE_CHECKING:
    from busdoc.storage.records import StoredMessage
    from busdoc.storage.store import Store

SAMPLE_WINDOW = 5_000
"""How many of the newest messages a method page searches for samples."""
SAMPLE_LIMIT = 3
MAX_SCHEMA_DEPTH = 3
MAX_SCHEMA_ROWS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One line of the entry table: an rpc method, an event, an object or another shape."""

    key: str
    kind: str
    service: str
    """The control exchange (oslo), the exchange (others), the namespace (objects)."""
    topic: str
    name: str
    styles: str
    """``call+cast``, ``fanout``, ``event``, ``object`` or the body protocol."""
    count: int
    rate: float | None
    """Messages per second over the time it was seen; None when seen once."""
    error_rate: float | None
    """Failed replies / replies, for rpc calls that got replies."""
    last_seen: float | None

    @property
    def text(self) -> str:
        """What the ``/`` filter matches against."""
        return f"{self.service} {self.topic} {self.name} {self.styles} {self.kind}".lower()


SORTS: tuple[str, ...] = ("service", "name", "count", "rate", "errors", "last")
"""Sort orders, in the order the ``s`` key cycles through them."""


def _str(v: Any, default: str = "") -> str:
    return default if v is None else str(v)


def row_for(entry: Mapping[str, Any]) -> Row:
    """The table line of one catalog entry."""
    kind = entry["kind"]
    error_rate = None
    if kind == "rpc":
        service = _str(entry.get("exchange"), "?")
        topic = _str(entry.get("topic"))
        name = _str(entry.get("method"))
        if entry.get("version"):
            name += f"@{entry['version']}"
        styles = "+".join(entry.get("styles") or ())
        reply = entry.get("reply")
        if reply and reply.get("count"):
            failed = sum(f.get("count", 0) for f in reply.get("failures") or ())
            error_rate = failed / reply["count"]
    elif kind == "notification":
        service, topic, name = _str(entry.get("exchange")), _str(entry.get("topic")), _str(
            entry.get("event_type"))
        styles = "event"
    elif kind == "object":
        service, topic = _str(entry.get("namespace"), "?"), "(objects)"
        name = f"{entry.get('name')}@{entry.get('version')}"
        styles = "object"
    else:
        ident = entry.get("identity") or {}
        if "task" in ident:
            service, topic, name = "(celery)", "", _str(ident.get("task"))
        else:
            service = _str(ident.get("exchange")) or "(default)"
            topic = _str(ident.get("routing_key"))
            name = _str(ident.get("type")) or topic or "(any)"
        styles = _str(entry.get("protocol"), "other")
    first, last, count = entry.get("first_seen"), entry.get("last_seen"), entry.get("count", 0)
    rate = None
    if first is not None and last is not None and last > first and count > 1:
        rate = (count - 1) / (last - first)
    return Row(key=entry["key"], kind=kind, service=service, topic=topic, name=name,
               styles=styles, count=count, rate=rate, error_rate=error_rate, last_seen=last)


def rows_from_catalog(catalog: Mapping[str, Any]) -> list[Row]:
    """Every entry as a row, grouped service → topic → name."""
    return sort_rows([row_for(e) for e in catalog.get("entries", ())], "service")


def newest(catalog: Mapping[str, Any]) -> float | None:
    """Time of the newest message the catalog saw: the reference for "last seen"."""
    times = [e["last_seen"] for e in catalog.get("entries", ()) if e.get("last_seen") is not None]
    return max(times) if times else None


def sort_rows(rows: Iterable[Row], order: str, *, reverse: bool = False) -> list[Row]:
    """Rows in one of ``SORTS``; numbers sort largest first, names A→Z (``reverse`` flips)."""
    group = lambda r: (r.service, r.topic, r.name, r.key)  # noqa: E731
    keys: dict[str, Any] = {
        "service": group,
        "name": lambda r: (r.name, r.service, r.topic, r.key),
        "count": lambda r: (-r.count, *group(r)),
        "rate": lambda r: (-(r.rate or 0.0), *group(r)),
        "errors": lambda r: (-(r.error_rate or -1.0), *group(r)),
        "last": lambda r: (-(r.last_seen or 0.0), *group(r)),
    }
    if order not in keys:
        raise ValueError(f"unknown sort {order!r}; one of {', '.join(SORTS)}")
    return sorted(rows, key=keys[order], reverse=reverse)


def filter_rows(rows: Iterable[Row], text: str) -> list[Row]:
    """Rows whose service, topic, name or style contain every word of ``text``."""
    words = text.lower().split()
    return [r for r in rows if all(w in r.text for w in words)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """A service or a topic in the tree view, with the totals of what it holds."""

    name: str
    entries: int
    messages: int
    children: tuple[Group, ...] = ()
    rows: tuple[Row, ...] = ()


def group_rows(rows: Sequence[Row]) -> list[Group]:
    """Services → topics → rows; groups A→Z, rows in the order given (the current sort)."""
    services: dict[str, dict[str, list[Row]]] = {}
    for r in rows:
        services.setdefault(r.service, {}).setdefault(r.topic, []).append(r)
    out = []
    for service in sorted(services):
        topics = tuple(
            Group(name=topic, entries=len(members), messages=sum(m.count for m in members),
                  rows=tuple(members))
            for topic, members in sorted(services[service].items())
        )
        out.append(Group(name=service, entries=sum(t.entries for t in topics),
                         messages=sum(t.messages for t in topics), children=topics))
    return out


# -- formatting ----------------------------------------------------------------------------


def fmt_duration(seconds: float) -> str:
    """``850ms``, ``12s``, ``3m05s``, ``2h10m``, ``4d03h``: short enough for a table cell."""
    s = abs(seconds)
    if s < 1:
        return f"{s * 1000:.0f}ms"
    if s < 60:
        return f"{s:.0f}s" if s >= 10 else f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"


def fmt_ago(t: float | None, reference: float | None) -> str:
    """How long before the newest message ``t`` was (``now`` for the newest itself)."""
    if t is None or reference is None:
        return "–"
    delta = reference - t
    return "newest" if delta < 0.0005 else f"-{fmt_duration(delta)}"


def fmt_behind(t: float | None, reference: float | None) -> str:
    """A page's wording of ``fmt_ago``: ``3m05s before the newest message``."""
    if t is None or reference is None:
        return "–"
    delta = reference - t
    if delta < 0.0005:
        return "the newest message in the catalog"
    return f"{fmt_duration(delta)} before the newest message in the catalog"


def fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "–"
    if rate >= 1:
        return f"{rate:.0f}/s" if rate >= 10 else f"{rate:.1f}/s"
    per_min = rate * 60
    if per_min >= 1:
        return f"{per_min:.1f}/m" if per_min < 10 else f"{per_min:.0f}/m"
    return f"{rate * 3600:.1f}/h"


def fmt_percent(x: float | None) -> str:
    if x is None:
        return "–"
    return "0%" if x == 0 else f"{x * 100:.1f}%" if x < 0.1 else f"{x * 100:.0f}%"


def fmt_time(t: float | None) -> str:
    """A capture time as UTC (it comes from the capture, so it is stable)."""
    if t is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d} UTC"


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:.1f} ms" if ms < 1000 else fmt_duration(ms / 1000)


# -- a method's page -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRow:
    """One argument (or nested field) of a schema, as the page's table shows it."""

    path: str
    type: str
    required: str
    """``yes``/``no`` with the evidence: ``yes (97/97)``."""
    nullable: str
    format: str
    enum: str


def _types(node: Mapping[str, Any]) -> list[str]:
    if "$ref" in node:
        return [node["$ref"].rsplit("/", 1)[-1]]
    if "const" in node:
        return [f"const {orjson.dumps(node['const']).decode()}"]
    t = node.get("type")
    if isinstance(t, str):
        types = [t]
    elif isinstance(t, list):
        types = [str(x) for x in t]
    else:
        types = []
    for alt in node.get("anyOf") or ():
        types += [x for x in _types(alt) if x not in types]
    return types or (["any"] if not node.get("enum") else ["enum"])


def _nullable(node: Mapping[str, Any]) -> str:
    nulls = node.get("x-busdoc-null-count")
    if "null" in _types(node):
        return f"yes ({nulls})" if nulls else "yes"
    return "no"


def _format(node: Mapping[str, Any]) -> str:
    parts = []
    if node.get("format"):
        parts.append(str(node["format"]))
    for alt in node.get("anyOf") or ():
        if alt.get("format") and alt["format"] not in parts:
            parts.append(str(alt["format"]))
    if node.get("x-busdoc-redacted"):
        hint = redaction_hint(node)
        parts.append(f"redacted ({hint})" if hint else "redacted")
    if node.get("x-busdoc-encoded"):
        parts.append(f"encoded {node['x-busdoc-encoded']}")
    return ", ".join(parts)


def _enum(node: Mapping[str, Any]) -> str:
    values = node.get("enum")
    if values is None:
        for alt in node.get("anyOf") or ():
            if alt.get("enum"):
                values = alt["enum"]
                break
    if not values:
        return ""
    text = ", ".join(orjson.dumps(v).decode() for v in values[:6])
    return text + (f" (+{len(values) - 6})" if len(values) > 6 else "")


def _object_of(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if isinstance(node.get("properties"), Mapping):
        return node
    for alt in node.get("anyOf") or ():
        if isinstance(alt.get("properties"), Mapping):
            return alt
    return None


def _items_of(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if isinstance(node.get("items"), Mapping):
        return node["items"]
    for alt in node.get("anyOf") or ():
        if isinstance(alt.get("items"), Mapping):
            return alt["items"]
    return None


def schema_rows(schema: Mapping[str, Any] | None) -> list[FieldRow]:
    """The properties of a schema document, nested ones as ``a.b`` and ``a[].b``.

    Depth and row count are capped (``MAX_SCHEMA_DEPTH``, ``MAX_SCHEMA_ROWS``): the page
    is for reading, the full schema is in ``busdoc infer --format jsonschema``.
    """
    rows: list[FieldRow] = []
    if not schema:
        return rows

    def walk(obj: Mapping[str, Any], prefix: str, depth: int) -> None:
        props = obj.get("properties") or {}
        required = set(obj.get("required") or ())
        for name in sorted(props):
            if len(rows) >= MAX_SCHEMA_ROWS:
                return
            node = props[name]
            presence = node.get("x-busdoc-presence") or {}
            evidence = f" ({presence['seen']}/{presence['of']})" if presence else ""
            path = f"{prefix}{name}"
            rows.append(FieldRow(
                path=path, type=" | ".join(_types(node)),
                required=("yes" if name in required else "no") + evidence,
                nullable=_nullable(node), format=_format(node), enum=_enum(node),
            ))
            if depth + 1 >= MAX_SCHEMA_DEPTH:
                continue
            inner = _object_of(node)
            if inner is not None:
                walk(inner, path + ".", depth + 1)
                continue
            items = _items_of(node)
            if items is not None and _object_of(items) is not None:
                walk(_object_of(items) or {}, path + "[].", depth + 1)

    top = _object_of(schema)
    if top is not None:
        walk(top, "", 0)
    return rows


def send_hint(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Where to publish to reach it: (label, value) pairs, exact as captured."""
    kind = entry["kind"]
    out: list[tuple[str, str]] = []
    if kind == "rpc":
        styles = set(entry.get("styles") or ())
        exchange = entry.get("exchange")
        topic = entry.get("topic") or ""
        if styles & {"call", "cast"}:
            ex = f"{exchange}" + (" (guessed from casts/calls)" if entry.get(
                "exchange_guessed") else "")
            out.append(("exchange", ex if exchange is not None else "?"))
            keys = [k for k in entry.get("routing_keys") or () if not k.endswith("_fanout")]
            out.append(("routing key", ", ".join(keys) or topic))
        if "fanout" in styles:
            out.append(("fanout exchange", f"{topic}_fanout (routing key ignored)"))
        body: dict[str, Any] = {"method": entry.get("method"), "args": {}}
        if entry.get("version"):
            body["version"] = entry["version"]
        if entry.get("namespace"):
            body["namespace"] = entry["namespace"]
        out.append(("body", "oslo 2.0 envelope: {\"oslo.version\": \"2.0\", \"oslo.message\": "
                    + orjson.dumps(orjson.dumps(body).decode()).decode() + "}"))
        if "call" in styles:
            out.append(("reply", "add _msg_id and _reply_q; the answer comes on the default "
                        "exchange, routing key = _reply_q"))
    elif kind == "notification":
        out.append(("exchange", _str(entry.get("exchange"))))
        prios = [p.lower() for p in entry.get("priorities") or ()] or ["info"]
        out.append(("routing key", ", ".join(f"{entry.get('topic')}.{p}" for p in prios)))
        out.append(("event_type", _str(entry.get("event_type"))))
    elif kind == "object":
        out.append(("carried in", "arguments, results and payloads as "
                    f"{entry.get('prefix') or entry.get('namespace')}_object.* envelopes"))
    else:
        ident = entry.get("identity") or {}
        if "task" in ident:
            out.append(("celery task", _str(ident.get("task"))))
        else:
            out.append(("exchange", _str(ident.get("exchange")) or '"" (default exchange)'))
            out.append(("routing key", _str(ident.get("routing_key"))
                        + ("  (* = data-like segment)" if "*" in _str(
                            ident.get("routing_key")).split(".") else "")))
            if ident.get("type"):
                out.append(("type property", _str(ident.get("type"))))
            types = entry.get("content_types") or ()
            if types:
                out.append(("content type", ", ".join(types)))
    return out


def versions_of(catalog: Mapping[str, Any], entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every version of the same rpc method (same exchange, topic, namespace, method)."""
    if entry["kind"] != "rpc":
        return [entry]
    ident = ("exchange", "topic", "namespace", "method")
    same = [e for e in catalog.get("entries", ()) if e["kind"] == "rpc"
            and all(e.get(k) == entry.get(k) for k in ident)]

    def version_key(e: Mapping[str, Any]) -> tuple[Any, ...]:
        v = e.get("version") or ""
        try:
            return (0, tuple(int(p) for p in v.split(".")), v)
        except ValueError:
            return (1, (), v)

    return sorted(same, key=version_key)


def find_entry(catalog: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    for e in catalog.get("entries", ()):
        if e["key"] == key:
            return e
    return None


# -- loading from the store ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The persisted catalog at one moment, and how far inference had read."""

    catalog: Mapping[str, Any] | None
    """None when ``busdoc infer`` never ran on this store."""
    last_message_id: int
    has_messages: bool


def load_snapshot(store: Store) -> Snapshot:
    """The catalog ``busdoc infer`` persisted: reads state, not messages.

    Only when there is no catalog does it peek at the first stored message, to tell an
    empty store (capture first) from one that was never inferred (run infer).
    """
    from busdoc.inference.catalog import Catalog
    from busdoc.inference.incremental import LAST_ID_KEY, STATE_KEY

    state = store.get_state(STATE_KEY)
    last_id = int(store.get_state(LAST_ID_KEY) or b"0")
    if state is None:
        has = next(iter(store.iter_messages()), None) is not None
        return Snapshot(catalog=None, last_message_id=0, has_messages=has)
    catalog = Catalog.loads_state(state).to_json()
    return Snapshot(catalog=catalog, last_message_id=last_id,
                    has_messages=bool(catalog.get("stats", {}).get("messages")))


def refresh_snapshot(
    store: Store, on_message: Callable[[int], None] | None = None
) -> Snapshot:
    """Fold messages stored since the last infer into the catalog (``--watch``).

    ``on_message(n)`` runs after each message read; raising from it abandons the pass
    before anything is saved, so the persisted catalog stays the last complete one.
    """
    from busdoc.inference.incremental import LAST_ID_KEY, update_catalog

    catalog = update_catalog(store, on_message=on_message).to_json()
    last_id = int(store.get_state(LAST_ID_KEY) or b"0")
    return Snapshot(catalog=catalog, last_message_id=last_id,
                    has_messages=bool(catalog.get("stats", {}).get("messages")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One stored message of an entry, as the page prints it (redacted as stored)."""

    message_id: int
    time: float
    exchange: str
    routing_key: str
    body: Any
    """The decoded body (oslo envelope unwrapped), or a note for opaque bodies."""
    redacted: Sequence[str]


def _matches(entry: Mapping[str, Any], message: StoredMessage) -> tuple[bool, Any]:
    from busdoc.inference.classify import OPAQUE, classify, decode_body, routing_pattern

    kind = entry["kind"]
    if kind == "rpc":
        ex = entry.get("exchange")
        if message.exchange not in (ex, f"{entry.get('topic')}_fanout"):
            return False, None
    elif kind in ("notification",) and message.exchange != entry.get("exchange"):
        return False, None
    elif kind == "other":
        ident = entry.get("identity") or {}
        if "exchange" in ident and (message.exchange != ident["exchange"] or routing_pattern(
                message.routing_key) != ident.get("routing_key")):
            return False, None
    decoded = decode_body(message)
    if decoded.status == "truncated":
        return False, None
    c = classify(message, decoded)
    body = "(opaque body, not shown)" if decoded.value is OPAQUE else decoded.value
    if kind == "rpc":
        ok = (c.kind in ("call", "cast", "fanout") and c.method == entry.get("method")
              and c.version == entry.get("version") and c.namespace == entry.get("namespace")
              and c.topic == entry.get("topic"))
    elif kind == "notification":
        ok = (c.kind == "notification" and c.event_type == entry.get("event_type")
              and c.topic == entry.get("topic"))
    elif kind == "other":
        protocol = "json" if c.kind == "json" else c.kind
        ok = protocol == entry.get("protocol") and c.identity == (entry.get("identity") or {})
    else:
        ok = False  # objects ride inside other messages; their pages show no samples
    return ok, body


def recent_samples(
    store: Store, entry: Mapping[str, Any], last_message_id: int,
    *, window: int = SAMPLE_WINDOW, limit: int = SAMPLE_LIMIT,
) -> list[Sample]:
    """The newest ``limit`` messages of ``entry`` among the last ``window`` stored ones."""
    found: list[Sample] = []
    for message in store.iter_messages(after_id=max(0, last_message_id - window)):
        if message.id > last_message_id:
            break
        ok, body = _matches(entry, message)
        if ok:
            found.append(Sample(
                message_id=message.id, time=message.first_seen, exchange=message.exchange,
                routing_key=message.routing_key, body=body,
                redacted=[r.path for r in message.redactions],
            ))
            if len(found) > limit:
                found.pop(0)
    return found[::-1]


def pretty_json(value: Any) -> str:
    """Indented JSON with sorted keys (bytes or odd values fall back to their repr)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
                            | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return repr(value)


def latency_text(reply: Mapping[str, Any] | None) -> str:
    if not reply:
        return "no call waited for a reply"
    lat = reply.get("latency") or {}
    return (f"{lat.get('count', 0)} replies timed: p50 {fmt_ms(lat.get('p50'))}, "
            f"p95 {fmt_ms(lat.get('p95'))}, max {fmt_ms(lat.get('max'))}; "
            f"{reply.get('pending', 0)} without reply, {reply.get('multipart', 0)} multipart")

