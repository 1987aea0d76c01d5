"""Field inference: observed JSON values → a bounded, mergeable ``FieldSchema`` → JSON Schema.

Theory of operation
-------------------
One ``FieldSchema`` node per path. ``add(value)`` updates counters on the node and
recurses into objects and arrays; nothing keeps the values themselves except a capped
table of distinct strings (for enums) and three examples, so memory is bounded by the
*shape* of the traffic, not its volume. ``merge`` adds two nodes together, so inference
runs in pieces (per batch, per process) and is resumed from a saved state.

What the emitted schema says, and the rule behind each keyword:

* ``type``: every JSON type seen. Integers and floats together widen to ``number``
  (sqlite-utils' rule); ``null`` is added when the value was ever null (nullable).
  Several non-null kinds give ``anyOf`` with one branch per kind, and only then.
* ``required``: a property present (null or not) in *every* object seen at its parent,
  with the evidence in ``x-busdoc-presence`` / ``x-busdoc-evidence``
  (``"seen in 97 of 97"``).
* ``enum`` (strings only): the set is taken as closed when it is small
  (at most ``ENUM_MAX_VALUES`` distinct values), every value was seen at least
  ``ENUM_MIN_SUPPORT`` times, and the strings carry no format and are short. "Every
  value seen repeatedly" is the Good–Turing argument: with no value seen only once or
  twice, the estimated chance that the next value is a new one is near zero. Identifiers,
  names and free text fail it, however few samples there are; values that look like
  data (uuids, hex ids, numbers, addresses, host names) never make an enum. Nor do
  fields named for hosts, nodes, zones or identifiers (``host``, ``source_compute``,
  ``availability_zone``, ``*_id``, ``*_name``: ``IDENTIFIER_WORDS``), nor a single value
  shaped like a host name (``host-a``, ``ctl.example.org``): a capture of one deployment
  shows the same few hosts over and over, which passes the support test without making
  the set closed.
* ``format``: the one format every string at the path matched: ``uuid``, ``date-time``
  (RFC 3339 and the other forms OpenStack sends; the exact layouts seen go in
  ``x-busdoc-layout`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``-style patterns), ``date``,
  ``ipv4``, ``ipv6``, ``mac``, ``email``, ``uri``.
* Observed ranges are annotations, never constraints (traffic shows what was sent, not
  what is allowed): ``x-busdoc-minimum``/``-maximum``, ``x-busdoc-min-length``/
  ``-max-length``, ``x-busdoc-min-items``/``-max-items``, ``x-busdoc-examples``.
* Maps vs records: an object whose keys are data becomes ``additionalProperties``
  with one value schema (``x-busdoc-map`` tells how many keys and shows a few), when
  every key looks like data (uuid, number, address, date, host-like), or when there
  are many distinct keys that each appear in few objects (mean key presence under
  ``MAP_MAX_MEAN_PRESENCE`` with at least ``MAP_MIN_KEYS`` keys), or when the number of
  distinct keys passes ``MAX_PROPERTIES`` (the bound that keeps state small).
* JSON inside a JSON string (oslo failures, nova ``network_info``) is parsed and
  documented: ``x-busdoc-encoded: "application/json"`` and ``x-busdoc-content-schema``.
* oslo versioned objects met anywhere are handed to an ``ObjectSink`` and referenced
  by ``$ref: "#/$defs/Name@version"``.
* Values redacted before storage (``Redacted``) count as their original type and are
  marked ``x-busdoc-redacted`` (a count); they never become examples, and their shape
  hint stands in for the observed ranges: the class range of their lengths
  (``x-busdoc-redacted-length`` for strings, ``-items`` for arrays, ``-properties`` for
  objects, such as ``"128-255"``) and the format every redacted string showed
  (``x-busdoc-redacted-format``: ``fernet``, ``jwt``…).
* Objects and arrays nested deeper than ``MAX_TRACKED_DEPTH`` are counted by type but
  not looked into (``x-busdoc-too-deep``), which bounds recursion, state and output.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from busdoc.sniffer.body import json_in_string
from busdoc.storage.records import class_bounds, class_label

ENUM_MAX_VALUES = 12
ENUM_MIN_SUPPORT = 3
ENUM_MAX_LENGTH = 40
MAX_DISTINCT_VALUES = 32
MAX_EXAMPLES = 3
MAX_PROPERTIES = 64
MAP_MIN_KEYS = 8
MAP_MAX_MEAN_PRESENCE = 0.25
MAX_LAYOUTS = 8
EXAMPLE_MAX_CHARS = 120
MAX_TRACKED_DEPTH = 32
"""Containers nested deeper are counted, not described: keeps recursion, the catalog
and the state well inside every JSON encoder's nesting limit (orjson: 255)."""
MAX_ENCODED_NESTING = 1
_encoded_nesting = 0


@dataclass(frozen=True, slots=True)
class Redacted:
    """Stands for a value replaced by ``"<redacted>"`` before the body was stored, with
    the shape hint the store kept (``busdoc.storage.records.Redaction``)."""

    json_type: str
    format: str | None = None
    length_class: str | None = None


class ObjectSink(Protocol):
    """Receives oslo versioned objects found while walking a value."""

    def add_object(self, prefix: str, primitive: Mapping[str, Any]) -> str:
        """Account for one object primitive; return its ``$defs`` key (``Instance@2.8``)."""
        ...


# --- formats -----------------------------------------------------------------

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ])\d{2}:\d{2}:\d{2}(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})?"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_URI = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://\S+")
_HOSTLIKE = re.compile(r"(?=.*\d)[A-Za-z0-9]+(?:[.\-][A-Za-z0-9]+)+")
_DIGITS = re.compile(r"-?\d+")
_HEXID = re.compile(r"[0-9a-fA-F]{16,}")
_DNS_NAME = re.compile(r"[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*(?:\.[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*)*")
_NAME_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
IDENTIFIER_WORDS = frozenset({
    "host", "hosts", "hostname", "hostnames", "fqdn", "node", "nodes", "nodename",
    "server", "servers", "compute", "address", "addresses", "addr", "ip", "ips",
    "url", "uri", "endpoint", "zone", "region", "cell",
    "id", "ids", "uuid", "uuids", "name", "names",
})
"""Last words of field names whose values name things in one deployment (hosts, nodes,
zones) or identify them: ``host``, ``source_compute``, ``hypervisor_hostname``,
``availability_zone``, ``publisher_id``, ``display_name``. No enum is inferred for them:
a capture shows the few hosts of one deployment, always the same ones, so their values
pass the "each seen repeatedly" test without being a closed set."""


def _is_ipv6(s: str) -> bool:
    if ":" not in s:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def datetime_layout(s: str) -> str | None:
    """The layout of an OpenStack timestamp, or None when ``s`` is not one.

    ``2026-11-24T20:10:06Z`` → ``YYYY-MM-DDTHH:MM:SSZ``;
    ``2026-11-24 20:10:06.218414`` → ``YYYY-MM-DD HH:MM:SS.ffffff``.
    """
    m = _DATETIME.fullmatch(s)
    if m is None:
        return None
    sep, frac, zone = m.groups()
    layout = "YYYY-MM-DD" + sep + "HH:MM:SS"
    if frac:
        layout += "." + "f" * len(frac)
    if zone:
        if zone in ("Z", "z"):
            layout += zone
        else:
            layout += "+HH:MM" if ":" in zone else "+HHMM"
    return layout


_LAYOUT = re.compile(r"YYYY-MM-DD[T ]HH:MM:SS(?:\.f{1,9})?(?:Z|z|\+HH:?MM)?")
_LAYOUT_PARTS = {"YYYY": r"\d{4}", "MM": r"\d{2}", "DD": r"\d{2}", "HH": r"\d{2}",
                 "SS": r"\d{2}", "+": "[+-]"}
_layout_matchers: dict[str, Callable[[str], Any] | None] = {}


def layout_matcher(layout: str) -> Callable[[str], Any] | None:
    """A test for "``s`` is a timestamp of exactly this layout" (a match or None), or None
    when ``layout`` is not one ``datetime_layout`` makes (a damaged state).

    Checking a timestamp against the layout already seen at a path is one regex match,
    where ``datetime_layout`` also takes the groups apart and builds a string.
    """
    if layout in _layout_matchers:
        return _layout_matchers[layout]
    matcher = None
    if _LAYOUT.fullmatch(layout):
        parts = re.findall(r"YYYY|MM|DD|HH|SS|f+|.", layout)
        pattern = "".join(
            _LAYOUT_PARTS.get(t) or (rf"\d{{{len(t)}}}" if t[0] == "f" else re.escape(t))
            for t in parts
        )
        matcher = re.compile(pattern).fullmatch
    if len(_layout_matchers) < 1024:
        _layout_matchers[layout] = matcher
    return matcher


_CHECKS: dict[str, Callable[[str], Any]] = {
    # each returns something true (a match) when the string has the format
    "uuid": _UUID.fullmatch,
    "date-time": _DATETIME.fullmatch,
    "date": _DATE.fullmatch,
    "ipv4": _IPV4.fullmatch,
    "mac": _MAC.fullmatch,
    "ipv6": _is_ipv6,
    "email": _EMAIL.fullmatch,
    "uri": _URI.fullmatch,
}


def detect_format(s: str) -> str:
    """The first format ``s`` matches, or ``""``."""
    if not s or len(s) > 2048:
        return ""
    for name, check in _CHECKS.items():
        if check(s):
            return name
    return ""


def is_data_key(key: str) -> bool:
    """Whether an object key looks like data rather than a field name."""
    if not key:
        return False
    return (
        _UUID.fullmatch(key) is not None
        or _DIGITS.fullmatch(key) is not None
        or _IPV4.fullmatch(key) is not None
        or _MAC.fullmatch(key) is not None
        or _DATE.fullmatch(key) is not None
        or _DATETIME.fullmatch(key) is not None
        or _HOSTLIKE.fullmatch(key) is not None
        or _is_ipv6(key)
    )


class ObjectKeys(NamedTuple):
    """The keys of an oslo versioned object primitive with one prefix (``nova``)."""

    prefix: str
    name: str
    namespace: str
    version: str
    data: str
    changes: str


_object_keys: dict[str, ObjectKeys] = {}
"""``nova_object.name`` → the keys of its primitive: a deployment has a handful of
prefixes, and building (and hashing) the key strings anew for every object cost more
than reading the object."""
_prefix_keys: dict[str, ObjectKeys] = {}
_MAX_OBJECT_PREFIXES = 256


def object_keys(name_key: str) -> ObjectKeys:
    """The keys of the primitive whose name key is ``name_key`` (``nova_object.name``)."""
    keys = _object_keys.get(name_key)
    if keys is None:
        p = name_key[:-4]  # "nova_object."
        keys = ObjectKeys(p[:-8], name_key, p + "namespace", p + "version", p + "data",
                          p + "changes")
        if len(_object_keys) < _MAX_OBJECT_PREFIXES:
            _object_keys[name_key] = keys
    return keys


def prefix_keys(prefix: str) -> ObjectKeys:
    """The keys of a primitive with ``prefix`` (``nova`` → ``nova_object.name``…)."""
    keys = _prefix_keys.get(prefix)
    if keys is None:
        keys = object_keys(prefix + "_object.name")
        if len(_prefix_keys) < _MAX_OBJECT_PREFIXES:
            _prefix_keys[prefix] = keys
    return keys


def versioned_keys(d: Mapping[str, Any]) -> ObjectKeys | None:
    """The keys of ``d`` when it is an oslo versioned object primitive, else None."""
    if not 3 <= len(d) <= 5:
        return None
    for k in d:
        if k.endswith("_object.name"):
            keys = object_keys(k)
            if keys.data in d and keys.version in d:
                return keys
    return None


def is_identifier_name(key: str) -> bool:
    """Whether a field name says its values name or identify things (``IDENTIFIER_WORDS``):
    its last word, ``snake_case``, ``kebab-case``, ``dotted`` or ``camelCase``."""
    words = _NAME_WORDS.findall(key)
    return bool(words) and words[-1].lower() in IDENTIFIER_WORDS


def looks_like_host_name(s: str) -> bool:
    """Whether ``s`` is shaped like a host name: DNS labels with a hyphen or a dot
    (``host-a``, ``ctl.example.org``); ``in-use`` is one too, so this alone says little."""
    return ("-" in s or "." in s) and _DNS_NAME.fullmatch(s) is not None


def versioned_prefix(d: Mapping[str, Any]) -> str | None:
    """``"nova"`` for an oslo versioned object primitive (``nova_object.name``…), else None."""
    keys = versioned_keys(d)
    return None if keys is None else keys.prefix


def _safe(v: Any) -> Any:
    """Keep state JSON-serialisable by orjson (integers wider than 64 bits become floats)."""
    if type(v) is int and not -(2**63) <= v < 2**64:
        return float(v)
    return v


def _example(v: Any) -> Any:
    if type(v) is str and len(v) > EXAMPLE_MAX_CHARS:
        return v[:EXAMPLE_MAX_CHARS] + "…"
    return v


# --- the accumulator ---------------------------------------------------------


class FieldSchema:
    """Everything inference keeps about one path; see the module docstring."""

    __slots__ = (
        "seen", "nulls", "bools", "ints", "floats", "strs", "objs", "arrs", "redacted",
        "num_min", "num_max", "str_min", "str_max", "values", "examples", "fmt", "layouts",
        "encoded", "enc_count", "props", "data_keys", "map_values", "map_keys", "map_key_examples",
        "obj_min", "obj_max", "items", "arr_min", "arr_max", "refs", "depth", "deep",
        "red_fmt", "red_len",
    )  # fmt: skip

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        """Containers above this node; past ``MAX_TRACKED_DEPTH`` nothing is descended into."""
        self.deep = 0
        """Objects and arrays seen here but not looked into (too deep)."""
        self.seen = 0
        self.nulls = 0
        self.bools = 0
        self.ints = 0
        self.floats = 0
        self.strs = 0
        self.objs = 0
        self.arrs = 0
        self.redacted = 0
        self.red_fmt: str | None = None
        """Format of every redacted string (None before the first; ``""``: none or mixed)."""
        self.red_len: dict[str, tuple[int, int | None]] | None = None
        """Per JSON type, the ``[lowest, highest]`` length class bounds of redacted values
        (``highest`` None: open-ended)."""
        self.num_min: float | int | None = None
        self.num_max: float | int | None = None
        self.str_min: int | None = None
        self.str_max: int | None = None
        self.values: dict[str, int] | None = {}
        """Distinct strings and their counts; None once more than MAX_DISTINCT_VALUES."""
        self.examples: list[Any] = []
        self.fmt: str | None = None
        """None before the first string; ``""`` when no single format fits all."""
        self.layouts: set[str] = set()
        self.encoded: FieldSchema | None = None
        self.enc_count = 0
        self.props: dict[str, FieldSchema] | None = {}
        """Record properties; None once the object was turned into a map."""
        self.data_keys = 0
        self.map_values: FieldSchema | None = None
        self.map_keys = 0
        self.map_key_examples: list[str] = []
        self.obj_min: int | None = None
        self.obj_max: int | None = None
        self.items: FieldSchema | None = None
        self.arr_min: int | None = None
        self.arr_max: int | None = None
        self.refs: dict[str, int] = {}

    # .. accumulation ..........................................................

    def add(self, v: Any, objects: ObjectSink | None = None) -> None:
        """Account for one observed value at this path.

        The hot path of inference: strings and numbers are handled inline (a method
        call costs as much as the work itself), containers recurse.
        """
        self.seen += 1
        t = type(v)
        if t is str:
            self.strs += 1
            values = self.values
            if values is not None:
                c = values.get(v)
                if c is not None:
                    # Seen at this path before (here or in a merged node), so its
                    # length, format and layout are already accounted for.
                    values[v] = c + 1
                    ex = self.examples
                    if len(ex) < MAX_EXAMPLES and v not in ex and _example(v) not in ex:
                        ex.append(_example(v))
                    if len(v) > 1 and (v[0] == "{" or v[0] == "["):
                        self._add_encoded(v, objects)
                    return
            n = len(v)
            lo = self.str_min
            if lo is None:
                self.str_min = self.str_max = n
            elif n < lo:
                self.str_min = n
            elif n > self.str_max:  # type: ignore[operator]
                self.str_max = n
            if values is not None:
                if len(values) < MAX_DISTINCT_VALUES:
                    values[v] = 1
                else:
                    self.values = None
            ex = self.examples
            if len(ex) < MAX_EXAMPLES and v not in ex and _example(v) not in ex:
                ex.append(_example(v))
            fmt = self.fmt
            if fmt:
                if fmt == "date-time":
                    self._check_layout(v)
                elif not _CHECKS[fmt](v):
                    self.fmt = ""
            elif fmt is None:
                fmt = self.fmt = detect_format(v)
                if fmt == "date-time":
                    self.layouts.add(datetime_layout(v))  # type: ignore[arg-type]
            if n > 1 and (v[0] == "{" or v[0] == "["):
                self._add_encoded(v, objects)
        elif t is dict:
            if self.depth >= MAX_TRACKED_DEPTH:
                self.deep += 1
                self.objs += 1
                return
            # a primitive has name, version, data and usually namespace, changes
            n = len(v)
            if objects is not None and 3 <= n <= 5:
                keys = versioned_keys(v)
                if keys is not None:
                    key = objects.add_object(keys.prefix, v)
                    self.refs[key] = self.refs.get(key, 0) + 1
                    return
            props = self.props
            if props is None or len(props) + n > MAX_PROPERTIES:
                self._add_obj(v, objects)
                return
            # A record whose keys cannot overflow the bound (the usual case) is walked
            # here rather than in ``_add_obj``: one call less per object. Nulls and
            # strings already seen at a path change only counters, so they are counted
            # here too: the call to ``add`` would cost more than the work.
            self.objs += 1
            lo = self.obj_min
            if lo is None:
                self.obj_min = self.obj_max = n
            elif n < lo:
                self.obj_min = n
            elif n > self.obj_max:  # type: ignore[operator]
                self.obj_max = n
            get = props.get
            for k, x in v.items():
                p = get(k)
                if p is None:
                    p = props[k] = FieldSchema(self.depth + 1)
                    if is_data_key(k):
                        self.data_keys += 1
                if x is None:
                    p.seen += 1
                    p.nulls += 1
                    continue
                if type(x) is str:
                    values = p.values
                    if values is not None:
                        c = values.get(x)
                        if c is not None and (len(x) < 2 or (x[0] != "{" and x[0] != "[")):
                            p.seen += 1
                            p.strs += 1
                            values[x] = c + 1
                            ex = p.examples
                            if len(ex) < MAX_EXAMPLES and x not in ex and _example(x) not in ex:
                                ex.append(_example(x))
                            continue
                p.add(x, objects)
        elif t is int or t is float:
            if t is int:
                self.ints += 1
            else:
                self.floats += 1
            low = self.num_min
            if low is None:
                self.num_min = self.num_max = v
            elif v < low:
                self.num_min = v
            elif v > self.num_max:  # type: ignore[operator]
                self.num_max = v
            ex = self.examples
            if len(ex) < MAX_EXAMPLES and v not in ex:
                ex.append(v)
        elif v is None:
            self.nulls += 1
        elif t is list:
            self.arrs += 1
            if self.depth >= MAX_TRACKED_DEPTH:
                self.deep += 1
                return
            n = len(v)
            if self.arr_min is None or n < self.arr_min:
                self.arr_min = n
            if self.arr_max is None or n > self.arr_max:
                self.arr_max = n
            items = self.items
            if items is None:
                items = self.items = FieldSchema(self.depth + 1)
            values = items.values
            for x in v:
                # a string already seen in such arrays changes only counters (as in
                # the object walk above)
                if type(x) is str and values is not None and (
                        len(x) < 2 or (x[0] != "{" and x[0] != "[")):
                    c = values.get(x)
                    if c is not None:
                        items.seen += 1
                        items.strs += 1
                        values[x] = c + 1
                        ex = items.examples
                        if len(ex) < MAX_EXAMPLES and x not in ex and _example(x) not in ex:
                            ex.append(_example(x))
                        continue
                items.add(x, objects)
                values = items.values
        elif t is bool:
            self.bools += 1
            ex = self.examples
            if len(ex) < MAX_EXAMPLES and v not in ex:
                ex.append(v)
        elif t is Redacted:
            self._add_redacted(v)
        else:  # tuples and other sequences from non-JSON decoders (msgpack, YAML)
            self.seen -= 1
            if isinstance(v, Mapping):
                self.add(dict(v), objects)
            elif isinstance(v, tuple | list):
                self.add(list(v), objects)
            else:
                self.add(str(v), objects)

    def _check_layout(self, v: str) -> None:
        for known in self.layouts:  # usually one
            match = layout_matcher(known)
            if match is not None and match(v):
                return
        layout = datetime_layout(v)
        if layout is None:
            self.fmt = ""
        elif layout not in self.layouts and len(self.layouts) < MAX_LAYOUTS:
            self.layouts.add(layout)

    def _add_encoded(self, v: str, objects: ObjectSink | None) -> None:
        """JSON inside a JSON string (oslo failures, nova ``network_info``).

        Expanded at most ``MAX_ENCODED_NESTING`` strings deep: each level may nest
        ``MAX_DEPTH`` containers again, and the accumulator recurses.
        """
        global _encoded_nesting
        if _encoded_nesting >= MAX_ENCODED_NESTING or not (v[-1] == "}" or v[-1] == "]"):
            return
        inner = json_in_string(v)  # depth-limited
        if inner is None:
            return
        if self.encoded is None:
            self.encoded = FieldSchema(self.depth + 1)
        _encoded_nesting += 1
        try:
            self.encoded.add(inner, objects)
        finally:
            _encoded_nesting -= 1
        self.enc_count += 1

    def _add_redacted(self, v: Redacted) -> None:
        self.redacted += 1
        jt = v.json_type
        if v.length_class is not None:
            low, high = class_bounds(v.length_class)
            self._widen_redacted(jt, low, high)
        if jt == "string":
            self.strs += 1
            self.values = None
            fmt = v.format or ""
            if self.red_fmt is None:
                self.red_fmt = fmt
            elif self.red_fmt != fmt:
                self.red_fmt = ""
            self.fmt = ""
        elif jt == "integer":
            self.ints += 1
        elif jt == "number":
            self.floats += 1
        elif jt == "boolean":
            self.bools += 1
        elif jt == "null":
            self.nulls += 1
        elif jt == "array":
            self.arrs += 1
            if self.items is None:
                self.items = FieldSchema(self.depth + 1)
        else:
            self.objs += 1

    def _widen_redacted(self, json_type: str, low: int, high: int | None) -> None:
        if self.red_len is None:
            self.red_len = {}
        old = self.red_len.get(json_type)
        if old is not None:
            low = min(low, old[0])
            high = None if high is None or old[1] is None else max(high, old[1])
        self.red_len[json_type] = (low, high)

    def _add_obj(self, v: dict[str, Any], objects: ObjectSink | None) -> None:
        """An object as a map, or one that may bring more keys than ``MAX_PROPERTIES``
        (``add`` walks the others itself)."""
        self.objs += 1
        n = len(v)
        if self.obj_min is None or n < self.obj_min:
            self.obj_min = n
        if self.obj_max is None or n > self.obj_max:
            self.obj_max = n
        props = self.props
        if props is None:
            mv = self.map_values
            assert mv is not None
            for k, x in v.items():
                self._note_map_key(k)
                mv.add(x, objects)
            return
        items = list(v.items())
        for i, (k, x) in enumerate(items):
            p = props.get(k)
            if p is None:
                if len(props) >= MAX_PROPERTIES:
                    # Too many distinct keys to be a record: fold into a map, and let the
                    # rest of this object go to the map values.
                    self._to_map()
                    mv = self.map_values
                    assert mv is not None
                    for k2, x2 in list(items)[i:]:
                        self._note_map_key(k2)
                        mv.add(x2, objects)
                    return
                p = props[k] = FieldSchema(self.depth + 1)
                if is_data_key(k):
                    self.data_keys += 1
            p.add(x, objects)

    def _note_map_key(self, k: str) -> None:
        self.map_keys += 1
        ex = self.map_key_examples
        if len(ex) < MAX_EXAMPLES and k not in ex:
            ex.append(k)

    def _to_map(self) -> None:
        """Fold every record property into one value schema (keys are data)."""
        props = self.props or {}
        mv = FieldSchema(self.depth + 1)
        for k, p in props.items():
            mv.merge_in(p)
            self._note_map_key(k)
        self.map_values = mv
        self.props = None

    # .. merging ...............................................................

    def merge_in(self, other: FieldSchema) -> None:
        """Add ``other``'s observations into this node (``other`` is left untouched)."""
        self.seen += other.seen
        self.deep += other.deep
        self.nulls += other.nulls
        self.bools += other.bools
        self.ints += other.ints
        self.floats += other.floats
        self.redacted += other.redacted
        if other.red_fmt is not None:
            if self.red_fmt is None:
                self.red_fmt = other.red_fmt
            elif self.red_fmt != other.red_fmt:
                self.red_fmt = ""
        for jt, (low, high) in (other.red_len or {}).items():
            self._widen_redacted(jt, low, high)
        self.num_min = _min(self.num_min, other.num_min)
        self.num_max = _max(self.num_max, other.num_max)
        self.str_min = _min(self.str_min, other.str_min)
        self.str_max = _max(self.str_max, other.str_max)
        if self.values is None or other.values is None:
            self.values = None
        else:
            merged = dict(self.values)
            for k, c in other.values.items():
                merged[k] = merged.get(k, 0) + c
            self.values = merged if len(merged) <= MAX_DISTINCT_VALUES else None
        for e in other.examples:
            if len(self.examples) < MAX_EXAMPLES and e not in self.examples:
                self.examples.append(e)
        if other.strs:
            if not self.strs or self.fmt is None:
                self.fmt = other.fmt
            elif self.fmt != other.fmt:
                self.fmt = ""
            for layout in sorted(other.layouts):
                if len(self.layouts) < MAX_LAYOUTS:
                    self.layouts.add(layout)
        self.strs += other.strs
        if other.encoded is not None:
            if self.encoded is None:
                self.encoded = FieldSchema(self.depth + 1)
            self.encoded.merge_in(other.encoded)
        self.enc_count += other.enc_count
        self.objs += other.objs
        self.obj_min = _min(self.obj_min, other.obj_min)
        self.obj_max = _max(self.obj_max, other.obj_max)
        if other.props is None or self.props is None:
            if self.props is not None:
                self._to_map()
            assert self.map_values is not None
            if other.props is None:
                assert other.map_values is not None
                self.map_values.merge_in(other.map_values)
                self.map_keys += other.map_keys
                for k in other.map_key_examples:
                    if len(self.map_key_examples) < MAX_EXAMPLES and k not in self.map_key_examples:
                        self.map_key_examples.append(k)
            else:
                for k, p in other.props.items():
                    self.map_values.merge_in(p)
                    self._note_map_key(k)
        else:
            for k, p in other.props.items():
                mine = self.props.get(k)
                if mine is None:
                    mine = self.props[k] = FieldSchema(self.depth + 1)
                    if is_data_key(k):
                        self.data_keys += 1
                mine.merge_in(p)
            if len(self.props) > MAX_PROPERTIES:
                self._to_map()
        self.arrs += other.arrs
        self.arr_min = _min(self.arr_min, other.arr_min)
        self.arr_max = _max(self.arr_max, other.arr_max)
        if other.items is not None:
            if self.items is None:
                self.items = FieldSchema(self.depth + 1)
            self.items.merge_in(other.items)
        for k, c in other.refs.items():
            self.refs[k] = self.refs.get(k, 0) + c

    def copy(self) -> FieldSchema:
        new = FieldSchema(self.depth)
        new.merge_in(self)
        return new

    # .. state ..................................................................

    def to_state(self) -> dict[str, Any]:
        """A plain, JSON-serialisable form of this node (see ``from_state``)."""
        s: dict[str, Any] = {}
        for name in _COUNTERS:
            v = getattr(self, name)
            if v:
                s[name] = v
        for name in _BOUNDS:
            v = getattr(self, name)
            if v is not None:
                s[name] = _safe(v)
        s["values"] = self.values
        if self.examples:
            s["examples"] = [_safe(e) for e in self.examples]
        if self.fmt is not None:
            s["fmt"] = self.fmt
        if self.red_fmt is not None:
            s["red_fmt"] = self.red_fmt
        if self.red_len:
            s["red_len"] = {k: list(b) for k, b in self.red_len.items()}
        if self.layouts:
            s["layouts"] = sorted(self.layouts)
        if self.encoded is not None:
            s["encoded"] = self.encoded.to_state()
        if self.props is None:
            assert self.map_values is not None
            s["map_values"] = self.map_values.to_state()
            s["map_key_examples"] = self.map_key_examples
        elif self.props:
            s["props"] = {k: p.to_state() for k, p in self.props.items()}
        if self.items is not None:
            s["items"] = self.items.to_state()
        if self.refs:
            s["refs"] = self.refs
        return s

    @classmethod
    def from_state(cls, s: Mapping[str, Any], depth: int = 0) -> FieldSchema:
        new = cls(depth)
        child = depth + 1
        for name in _COUNTERS:
            if name in s:
                setattr(new, name, s[name])
        for name in _BOUNDS:
            if name in s:
                setattr(new, name, s[name])
        new.values = dict(s["values"]) if s.get("values") is not None else None
        new.examples = list(s.get("examples", []))
        new.fmt = s.get("fmt")
        new.red_fmt = s.get("red_fmt")
        if "red_len" in s:
            new.red_len = {k: (low, high) for k, (low, high) in s["red_len"].items()}
        new.layouts = set(s.get("layouts", []))
        if "encoded" in s:
            new.encoded = cls.from_state(s["encoded"], child)
        if "map_values" in s:
            new.props = None
            new.map_values = cls.from_state(s["map_values"], child)
            new.map_key_examples = list(s.get("map_key_examples", []))
        else:
            new.props = {k: cls.from_state(p, child) for k, p in s.get("props", {}).items()}
        if "items" in s:
            new.items = cls.from_state(s["items"], child)
        new.refs = dict(s.get("refs", {}))
        return new

    # .. emission ...............................................................

    def is_map(self) -> bool:
        """Whether this object's keys are data (see the module docstring)."""
        if self.props is None:
            return True
        n = len(self.props)
        if n == 0 or not self.objs:
            return False
        if self.data_keys == n:
            return True
        if n >= MAP_MIN_KEYS:
            mean = sum(p.seen for p in self.props.values()) / (n * self.objs)
            return mean < MAP_MAX_MEAN_PRESENCE
        return False

    def enum_values(self, name: str | None = None) -> list[str] | None:
        """The closed set of strings, when the enum rule holds (module docstring);
        ``name`` is the field's name, when it has one."""
        v = self.values
        if (
            v is None
            or not v
            or self.redacted
            or self.fmt
            or self.enc_count
            or len(v) > ENUM_MAX_VALUES
            or (self.str_max or 0) > ENUM_MAX_LENGTH
            or min(v.values()) < ENUM_MIN_SUPPORT
            or any(is_data_key(s) or _HEXID.fullmatch(s) for s in v)
            or (name is not None and is_identifier_name(name))
            or (len(v) == 1 and looks_like_host_name(next(iter(v))))
        ):
            return None
        return sorted(v)

    def to_json_schema(self, refs: set[str] | None = None, name: str | None = None
                       ) -> dict[str, Any]:
        """This node as JSON Schema 2020-12; ``$ref`` targets are added to ``refs``.

        ``name`` is the field's name (a property key; items of an array inherit it), which
        the enum rule reads.
        """
        if refs is None:
            refs = set()
        branches: list[dict[str, Any]] = []
        if self.bools:
            branches.append({"type": "boolean"})
        if self.ints or self.floats:
            b: dict[str, Any] = {"type": "number" if self.floats else "integer"}
            if self.num_min is not None:
                b["x-busdoc-minimum"] = self.num_min
                b["x-busdoc-maximum"] = self.num_max
            branches.append(b)
        if self.strs:
            branches.append(self._string_schema(refs, name))
        if self.objs:
            branches.append(self._object_schema(refs))
        if self.arrs:
            b = {"type": "array"}
            if self.items is not None and self.items.seen:
                b["items"] = self.items.to_json_schema(refs, name)
            if self.arr_min is not None:
                b["x-busdoc-min-items"] = self.arr_min
                b["x-busdoc-max-items"] = self.arr_max
            self._redacted_hints(b, "array", "x-busdoc-redacted-items")
            branches.append(b)
        for key in sorted(self.refs):
            refs.add(key)
            branches.append({"$ref": f"#/$defs/{key}"})
        nullable = self.nulls > 0
        if not branches:
            out: dict[str, Any] = {"type": "null"} if nullable else {}
        elif len(branches) == 1:
            out = branches[0]
            if nullable:
                if "type" in out:
                    out["type"] = [out["type"], "null"]
                    if "enum" in out:
                        out["enum"] = out["enum"] + [None]
                else:
                    out = {"anyOf": [out, {"type": "null"}]}
        else:
            out = {"anyOf": branches + ([{"type": "null"}] if nullable else [])}
        if nullable:
            out["x-busdoc-null-count"] = self.nulls
        if self.examples and not self.redacted and not self.objs and not self.arrs:
            out["x-busdoc-examples"] = list(self.examples)
        if self.redacted:
            out["x-busdoc-redacted"] = self.redacted
        if self.deep:
            out["x-busdoc-too-deep"] = self.deep
        return out

    def _string_schema(self, refs: set[str], name: str | None) -> dict[str, Any]:
        b: dict[str, Any] = {"type": "string"}
        if self.fmt:
            b["format"] = self.fmt
            if self.fmt == "date-time":
                b["x-busdoc-layout"] = sorted(self.layouts)
        enum = self.enum_values(name)
        if enum is not None:
            b["enum"] = enum
        elif self.values is not None:
            b["x-busdoc-distinct"] = len(self.values)
        if self.str_min is not None:
            b["x-busdoc-min-length"] = self.str_min
            b["x-busdoc-max-length"] = self.str_max
        if self.red_fmt:
            b["x-busdoc-redacted-format"] = self.red_fmt
        self._redacted_hints(b, "string", "x-busdoc-redacted-length")
        if self.encoded is not None and self.enc_count == self.strs:
            b["x-busdoc-encoded"] = "application/json"
            b["x-busdoc-content-schema"] = self.encoded.to_json_schema(refs)
        return b

    def _object_schema(self, refs: set[str]) -> dict[str, Any]:
        b: dict[str, Any] = {"type": "object"}
        if self.is_map():
            if self.props is not None:
                values = FieldSchema()
                keys = 0
                examples: list[str] = []
                for k in sorted(self.props):
                    values.merge_in(self.props[k])
                    keys += 1
                    if len(examples) < MAX_EXAMPLES:
                        examples.append(k)
                info: dict[str, Any] = {"distinct_keys": keys, "key_examples": examples}
            else:
                assert self.map_values is not None
                values = self.map_values
                info = {"distinct_keys": f">{MAX_PROPERTIES}",
                        "key_examples": list(self.map_key_examples)}
            b["additionalProperties"] = values.to_json_schema(refs) if values.seen else {}
            b["x-busdoc-map"] = info
        else:
            assert self.props is not None
            props: dict[str, Any] = {}
            required = []
            for k in sorted(self.props):
                p = self.props[k]
                ps = p.to_json_schema(refs, k)
                ps["x-busdoc-presence"] = {"seen": p.seen, "of": self.objs}
                ps["x-busdoc-evidence"] = f"seen in {p.seen} of {self.objs}"
                props[k] = ps
                if p.seen == self.objs:
                    required.append(k)
            b["properties"] = props
            b["required"] = required
        if self.obj_min is not None:
            b["x-busdoc-min-properties"] = self.obj_min
            b["x-busdoc-max-properties"] = self.obj_max
        self._redacted_hints(b, "object", "x-busdoc-redacted-properties")
        return b

    def _redacted_hints(self, b: dict[str, Any], json_type: str, keyword: str) -> None:
        """The length class range of the redacted values of one type (``"16-63"``)."""
        bounds = self.red_len.get(json_type) if self.red_len else None
        if bounds is not None:
            b[keyword] = class_label(*bounds)


_COUNTERS = (
    "seen", "nulls", "bools", "ints", "floats", "strs", "objs", "arrs", "redacted",
    "enc_count", "data_keys", "map_keys", "deep",
)  # fmt: skip
_BOUNDS = ("num_min", "num_max", "str_min", "str_max", "obj_min", "obj_max", "arr_min", "arr_max")


def _min(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def _max(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


def merge(a: FieldSchema, b: FieldSchema) -> FieldSchema:
    """A new node holding the observations of both ``a`` and ``b``."""
    new = a.copy()
    new.merge_in(b)
    return new


def infer(values: Any, objects: ObjectSink | None = None) -> FieldSchema:
    """Accumulate every value of an iterable into one node (a convenience for tests)."""
    node = FieldSchema()
    for v in values:
        node.add(v, objects)
    return node


def to_document(node: FieldSchema, defs: Callable[[set[str]], dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """A standalone JSON Schema 2020-12 document for ``node``.

    ``defs`` resolves the ``$ref`` keys met into ``$defs`` (transitively, its job).
    """
    refs: set[str] = set()
    doc: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    doc.update(node.to_json_schema(refs))
    if refs and defs is not None:
        doc["$defs"] = defs(refs)
    return doc
