"""The interface catalog: every stored message folded into methods, events and types.

``Catalog.add`` takes one ``StoredMessage`` at a time and keeps only bounded,
mergeable state (``FieldSchema`` trees, capped name sets, a log-bucket latency histogram,
a bounded table of calls awaiting their reply), so ``build_catalog`` runs over millions
of messages in constant memory and can resume from ``dumps_state()``: a later ``infer``
reads only the new messages. ``to_json`` renders the contract of
``docs/catalog.schema.json``; it is deterministic (sorted, no wall-clock).

Call ↔ reply correlation keys on ``_msg_id``: the call's ``_msg_id`` waits in the pending
table (oldest evicted beyond ``MAX_PENDING`` and counted as pending for its method); the
reply with ``ending: true`` closes it. Older oslo releases answer with several messages
(``ending`` false, then a final empty one): those calls count as ``multipart``.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from busdoc.errors import InputError
from busdoc.inference.classify import (
    OPAQUE,
    Classified,
    classify,
    decode_body,
    parse_failure,
)
from busdoc.inference.schema import FieldSchema, prefix_keys, to_document
from busdoc.storage.records import StoredMessage

CATALOG_VERSION = 1
STATE_VERSION = 1
MAX_PENDING = 100_000
MAX_NAMES = 64
MAX_FAILURE_KINDS = 64
_LAT_BASE = 1.02  # histogram bucket ratio: about 1% error on quantiles
_LOG_BASE = math.log(_LAT_BASE)
_ABSENT: Any = object()
_KIND_ORDER = {"rpc": 0, "notification": 1, "object": 2, "other": 3}


def _names(target: set[str], name: str | None) -> None:
    if name is not None and len(target) < MAX_NAMES:
        target.add(name)


class _Seen:
    """Counts, first/last seen, senders, receivers and queues (every entry has them)."""

    __slots__ = ("count", "first", "last", "senders", "receivers", "queues")

    def __init__(self) -> None:
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None
        self.senders: set[str] = set()
        self.receivers: set[str] = set()
        self.queues: set[str] = set()

    def see(self, message: StoredMessage) -> None:
        self.count += 1
        t = message.first_seen
        first = self.first
        if first is None or t < first:
            self.first = t
        last = self.last
        if last is None or t > last:
            self.last = t
        for o in message.observations:  # _names() inline: once per message and entry
            name = o.connection_name or o.connection
            kind = o.kind
            if kind == "publish":
                names = self.senders
                if name is not None and len(names) < MAX_NAMES:
                    names.add(name)
            elif kind == "deliver" or kind == "get_ok":
                names = self.receivers
                if name is not None and len(names) < MAX_NAMES:
                    names.add(name)
                names = self.queues
                if o.queue is not None and len(names) < MAX_NAMES:
                    names.add(o.queue)

    def merge_in(self, other: _Seen) -> None:
        self.count += other.count
        for a in ("first", "last"):
            mine, theirs = getattr(self, a), getattr(other, a)
            if mine is None or (theirs is not None and (theirs < mine) == (a == "first")):
                setattr(self, a, theirs)
        for a in ("senders", "receivers", "queues"):
            target: set[str] = getattr(self, a)
            for n in sorted(getattr(other, a)):
                _names(target, n)

    def state(self) -> dict[str, Any]:
        return {"count": self.count, "first": self.first, "last": self.last,
                "senders": sorted(self.senders), "receivers": sorted(self.receivers),
                "queues": sorted(self.queues)}

    def load(self, s: Mapping[str, Any]) -> None:
        self.count, self.first, self.last = s["count"], s["first"], s["last"]
        self.senders, self.receivers = set(s["senders"]), set(s["receivers"])
        self.queues = set(s["queues"])

    def json(self) -> dict[str, Any]:
        return {"count": self.count, "first_seen": self.first, "last_seen": self.last,
                "senders": sorted(self.senders), "receivers": sorted(self.receivers),
                "queues": sorted(self.queues)}


def _fs(s: Mapping[str, Any] | None) -> FieldSchema:
    return FieldSchema.from_state(s) if s is not None else FieldSchema()


class _Reply:
    __slots__ = ("count", "result", "failures", "latency", "lat_max", "multipart", "evicted")

    def __init__(self) -> None:
        self.count = 0
        self.result = FieldSchema()
        self.failures: dict[str, list[Any]] = {}
        """``module:class`` → [count, class, module, example]."""
        self.latency: dict[int, int] = {}
        self.lat_max: float | None = None
        self.multipart = 0
        self.evicted = 0

    def add_latency(self, ms: float) -> None:
        b = math.floor(math.log(ms) / _LOG_BASE) if ms > 0 else -10_000
        self.latency[b] = self.latency.get(b, 0) + 1
        if self.lat_max is None or ms > self.lat_max:
            self.lat_max = ms

    def add_failure(self, failure: Any) -> None:
        cls, module, message = parse_failure(failure)
        key = f"{module}:{cls}"
        f = self.failures.get(key)
        if f is None:
            if len(self.failures) >= MAX_FAILURE_KINDS:
                key = "?:?"
                f = self.failures.setdefault(key, [0, "?", None, None])
            else:
                f = self.failures[key] = [0, cls, module, message]
        f[0] += 1

    def merge_in(self, o: _Reply) -> None:
        self.count += o.count
        self.result.merge_in(o.result)
        for k, f in o.failures.items():
            if k in self.failures:
                self.failures[k][0] += f[0]
            else:
                self.failures[k] = list(f)
        for b, c in o.latency.items():
            self.latency[b] = self.latency.get(b, 0) + c
        if o.lat_max is not None and (self.lat_max is None or o.lat_max > self.lat_max):
            self.lat_max = o.lat_max
        self.multipart += o.multipart
        self.evicted += o.evicted

    def state(self) -> dict[str, Any]:
        return {"count": self.count, "result": self.result.to_state(), "failures": self.failures,
                "latency": [[b, c] for b, c in sorted(self.latency.items())],
                "lat_max": self.lat_max, "multipart": self.multipart, "evicted": self.evicted}

    @classmethod
    def load(cls, s: Mapping[str, Any]) -> _Reply:
        r = cls()
        r.count, r.result = s["count"], _fs(s["result"])
        r.failures = {k: list(v) for k, v in s["failures"].items()}
        r.latency = {b: c for b, c in s["latency"]}
        r.lat_max, r.multipart, r.evicted = s["lat_max"], s["multipart"], s["evicted"]
        return r

    def quantile(self, q: float) -> float | None:
        total = sum(self.latency.values())
        if not total:
            return None
        rank = max(0, math.ceil(q * total) - 1)  # nearest rank
        seen = 0
        for b in sorted(self.latency):
            seen += self.latency[b]
            if seen > rank:
                if b == -10_000:
                    return 0.0
                # geometric middle of the bucket, capped by the true maximum
                mid = _LAT_BASE ** (b + 0.5)
                return round(min(mid, self.lat_max or mid), 3)
        return self.lat_max


class _Rpc:
    __slots__ = ("seen", "styles", "routing_keys", "servers", "args", "reply")

    def __init__(self) -> None:
        self.seen = _Seen()
        self.styles: dict[str, int] = {}
        self.routing_keys: set[str] = set()
        self.servers: set[str] = set()
        self.args = FieldSchema()
        self.reply: _Reply | None = None

    def merge_in(self, o: _Rpc) -> None:
        self.seen.merge_in(o.seen)
        for k, c in o.styles.items():
            self.styles[k] = self.styles.get(k, 0) + c
        for n in sorted(o.routing_keys):
            _names(self.routing_keys, n)
        for n in sorted(o.servers):
            _names(self.servers, n)
        self.args.merge_in(o.args)
        if o.reply is not None:
            if self.reply is None:
                self.reply = _Reply()
            self.reply.merge_in(o.reply)

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen.state(), "styles": self.styles,
                "routing_keys": sorted(self.routing_keys), "servers": sorted(self.servers),
                "args": self.args.to_state(),
                "reply": None if self.reply is None else self.reply.state()}

    @classmethod
    def load(cls, s: Mapping[str, Any]) -> _Rpc:
        r = cls()
        r.seen.load(s["seen"])
        r.styles = dict(s["styles"])
        r.routing_keys, r.servers = set(s["routing_keys"]), set(s["servers"])
        r.args = _fs(s["args"])
        r.reply = None if s["reply"] is None else _Reply.load(s["reply"])
        return r


class _Notification:
    __slots__ = ("seen", "priorities", "publishers", "payload")

    def __init__(self) -> None:
        self.seen = _Seen()
        self.priorities: set[str] = set()
        self.publishers: set[str] = set()
        self.payload = FieldSchema()

    def merge_in(self, o: _Notification) -> None:
        self.seen.merge_in(o.seen)
        for n in sorted(o.priorities):
            _names(self.priorities, n)
        for n in sorted(o.publishers):
            _names(self.publishers, n)
        self.payload.merge_in(o.payload)

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen.state(), "priorities": sorted(self.priorities),
                "publishers": sorted(self.publishers), "payload": self.payload.to_state()}

    @classmethod
    def load(cls, s: Mapping[str, Any]) -> _Notification:
        n = cls()
        n.seen.load(s["seen"])
        n.priorities, n.publishers = set(s["priorities"]), set(s["publishers"])
        n.payload = _fs(s["payload"])
        return n


class _Object:
    __slots__ = ("seen", "prefix", "namespace", "name", "version", "data", "changes", "ns_count")

    def __init__(self, prefix: str, namespace: str | None, name: str, version: str) -> None:
        self.seen = _Seen()
        self.prefix = prefix
        self.namespace = namespace
        self.name = name
        self.version = version
        self.data = FieldSchema()
        self.changes = FieldSchema()
        self.ns_count = 0

    def merge_in(self, o: _Object) -> None:
        self.seen.merge_in(o.seen)
        self.data.merge_in(o.data)
        self.changes.merge_in(o.changes)
        self.ns_count += o.ns_count

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen.state(), "prefix": self.prefix, "namespace": self.namespace,
                "name": self.name, "version": self.version, "data": self.data.to_state(),
                "changes": self.changes.to_state(), "ns_count": self.ns_count}

    @classmethod
    def load(cls, s: Mapping[str, Any]) -> _Object:
        o = cls(s["prefix"], s["namespace"], s["name"], s["version"])
        o.seen.load(s["seen"])
        o.data, o.changes, o.ns_count = _fs(s["data"]), _fs(s["changes"]), s["ns_count"]
        return o

    def definition(self, refs: set[str]) -> dict[str, Any]:
        """The ``$defs`` entry: the envelope with fixed values as ``const``."""
        p = self.prefix + "_object."
        props: dict[str, Any] = {
            p + "name": {"const": self.name},
            p + "namespace": {"const": self.namespace},
            p + "version": {"const": self.version},
            p + "data": self.data.to_json_schema(refs),
        }
        required = [p + "name", p + "version", p + "data"]
        if self.ns_count == self.seen.count:
            required.append(p + "namespace")
        if self.changes.seen:
            props[p + "changes"] = self.changes.to_json_schema(refs)
            if self.changes.seen == self.seen.count:
                required.append(p + "changes")
        return {"title": f"{self.name}_{self.version.replace('.', '_')}", "type": "object",
                "properties": props, "required": sorted(required),
                "x-busdoc-count": self.seen.count}


class _Other:
    __slots__ = ("seen", "protocol", "identity", "content_types", "size_min", "size_max", "body")

    def __init__(self, protocol: str, identity: dict[str, str | None]) -> None:
        self.seen = _Seen()
        self.protocol = protocol
        self.identity = identity
        self.content_types: set[str] = set()
        self.size_min: int | None = None
        self.size_max: int | None = None
        self.body = FieldSchema()

    def merge_in(self, o: _Other) -> None:
        self.seen.merge_in(o.seen)
        for n in sorted(o.content_types):
            _names(self.content_types, n)
        for a, pick in (("size_min", min), ("size_max", max)):
            mine, theirs = getattr(self, a), getattr(o, a)
            setattr(self, a, theirs if mine is None else mine if theirs is None
                    else pick(mine, theirs))
        self.body.merge_in(o.body)

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen.state(), "protocol": self.protocol, "identity": self.identity,
                "content_types": sorted(self.content_types), "size_min": self.size_min,
                "size_max": self.size_max, "body": self.body.to_state()}

    @classmethod
    def load(cls, s: Mapping[str, Any]) -> _Other:
        o = cls(s["protocol"], dict(s["identity"]))
        o.seen.load(s["seen"])
        o.content_types = set(s["content_types"])
        o.size_min, o.size_max, o.body = s["size_min"], s["size_max"], _fs(s["body"])
        return o


RpcKey = tuple[str | None, str, str | None, str, str | None]
"""(control exchange or None for fanouts, topic, namespace, method, version)."""


class Catalog:
    """Mergeable inference state; ``to_json()`` renders the catalog contract."""

    def __init__(self) -> None:
        self.rpc: dict[RpcKey, _Rpc] = {}
        self.notifications: dict[tuple[str, str, str], _Notification] = {}
        self.objects: dict[str, _Object] = {}
        self.others: dict[str, _Other] = {}
        self.contexts: dict[str, FieldSchema] = {}
        self.pending: OrderedDict[str, tuple[RpcKey, float, int]] = OrderedDict()
        self.stats: dict[str, int] = {"messages": 0, "undecodable": 0, "truncated": 0,
                                      "unmatched_replies": 0}
        self._current: StoredMessage | None = None

    # .. accumulation ...........................................................

    def add(self, message: StoredMessage) -> None:
        """Fold one stored message into the catalog."""
        self.stats["messages"] += 1
        decoded = decode_body(message)
        if decoded.status == "truncated":
            # a cut body cannot be classified reliably (an oslo call would pass for an
            # opaque blob): count it and leave the entries to complete messages
            self.stats["truncated"] += 1
            return
        if decoded.status == "undecodable":
            self.stats["undecodable"] += 1
        c = classify(message, decoded)
        self._current = message
        try:
            kind = c.kind
            if kind == "call" or kind == "cast" or kind == "fanout":
                self._add_rpc(message, c)
            elif kind == "reply":
                self._add_reply(message, c)
            elif kind == "notification":
                self._add_notification(message, c)
            else:
                self._add_other(message, c)
        finally:
            self._current = None

    def _context(self, key: str, context: dict[str, Any]) -> None:
        if not context:
            return
        node = self.contexts.get(key)
        if node is None:
            node = self.contexts[key] = FieldSchema()
        node.add(context, self)

    def _add_rpc(self, message: StoredMessage, c: Classified) -> None:
        key: RpcKey = (c.exchange, c.topic or "", c.namespace, c.method or "", c.version)
        r = self.rpc.get(key)
        if r is None:
            r = self.rpc[key] = _Rpc()
        r.seen.see(message)
        r.styles[c.kind] = r.styles.get(c.kind, 0) + 1
        _names(r.routing_keys, message.routing_key or message.exchange)
        _names(r.servers, c.server)
        args = c.body.get("args")
        r.args.add(args if args is not None else {}, self)
        self._context(c.exchange if c.exchange is not None else f"{c.topic}_fanout", c.context)
        if c.kind == "call" and c.msg_id is not None:
            if r.reply is None:
                r.reply = _Reply()
            self.pending[c.msg_id] = (key, message.first_seen, 0)
            if len(self.pending) > MAX_PENDING:
                _, (old_key, _t, _n) = self.pending.popitem(last=False)
                old = self.rpc.get(old_key)
                if old is not None and old.reply is not None:
                    old.reply.evicted += 1

    def _add_reply(self, message: StoredMessage, c: Classified) -> None:
        body = c.body
        msg_id = c.msg_id or ""
        waiting = self.pending.get(msg_id)
        if waiting is None:
            self.stats["unmatched_replies"] += 1
            return
        key, t0, parts = waiting
        r = self.rpc[key]
        reply = r.reply
        assert reply is not None
        reply.count += 1
        failure = body.get("failure")
        ending = body.get("ending", True)
        result = body.get("result")
        if failure is not None:
            reply.add_failure(failure)
        elif not (ending and parts and result is None):
            reply.result.add(result, self)
        if ending:
            del self.pending[msg_id]
            reply.add_latency(max(0.0, (message.first_seen - t0) * 1000.0))
            if parts:
                reply.multipart += 1
        else:
            self.pending[msg_id] = (key, t0, parts + 1)

    def _add_notification(self, message: StoredMessage, c: Classified) -> None:
        key = (c.exchange or "", c.topic or "", c.event_type or "")
        n = self.notifications.get(key)
        if n is None:
            n = self.notifications[key] = _Notification()
        n.seen.see(message)
        _names(n.priorities, c.priority)
        _names(n.publishers, c.publisher_id)
        n.payload.add(c.body.get("payload"), self)
        self._context(c.exchange or "", c.context)

    def _add_other(self, message: StoredMessage, c: Classified) -> None:
        protocol = "json" if c.kind == "json" else c.kind
        ident = "/".join(f"{k}={v}" for k, v in sorted(c.identity.items()) if v is not None)
        key = f"{protocol}:{ident}"
        o = self.others.get(key)
        if o is None:
            o = self.others[key] = _Other(protocol, dict(c.identity))
        o.seen.see(message)
        _names(o.content_types, message.properties.get("content_type"))
        size = message.body_size
        o.size_min = size if o.size_min is None else min(o.size_min, size)
        o.size_max = size if o.size_max is None else max(o.size_max, size)
        if c.body is not None and c.body is not OPAQUE:
            o.body.add(c.body, self)

    def add_object(self, prefix: str, primitive: Mapping[str, Any]) -> str:
        """``ObjectSink``: account for an oslo versioned object; return its ``$defs`` key."""
        keys = prefix_keys(prefix)
        name = primitive.get(keys.name)
        version = primitive.get(keys.version)
        if type(name) is not str:
            name = str(name)
        if type(version) is not str:
            version = str(version)
        key = name + "@" + version
        o = self.objects.get(key)
        if o is None:
            ns = primitive.get(keys.namespace)
            o = self.objects[key] = _Object(prefix, None if ns is None else str(ns), name, version)
        if self._current is not None:
            o.seen.see(self._current)
        else:
            o.seen.count += 1
        if keys.namespace in primitive:
            o.ns_count += 1
        data = primitive.get(keys.data)
        o.data.add(data if data is not None else {}, self)
        changes = primitive.get(keys.changes, _ABSENT)
        if changes is not _ABSENT:
            o.changes.add(changes, self)
        return key

    # .. merging and state ......................................................

    def merge(self, other: Catalog) -> Catalog:
        """A new catalog holding both (neither input changes)."""
        new = Catalog.loads_state(self.dumps_state())
        new.merge_in(Catalog.loads_state(other.dumps_state()))
        return new

    def merge_in(self, other: Catalog) -> None:
        """Add ``other`` into this catalog (``other`` must not be used afterwards)."""
        for key, r in other.rpc.items():
            if key in self.rpc:
                self.rpc[key].merge_in(r)
            else:
                self.rpc[key] = r
        for nkey, n in other.notifications.items():
            if nkey in self.notifications:
                self.notifications[nkey].merge_in(n)
            else:
                self.notifications[nkey] = n
        for okey, o in other.objects.items():
            if okey in self.objects:
                self.objects[okey].merge_in(o)
            else:
                self.objects[okey] = o
        for xkey, x in other.others.items():
            if xkey in self.others:
                self.others[xkey].merge_in(x)
            else:
                self.others[xkey] = x
        for ckey, node in other.contexts.items():
            if ckey in self.contexts:
                self.contexts[ckey].merge_in(node)
            else:
                self.contexts[ckey] = node
        for msg_id, waiting in other.pending.items():
            self.pending[msg_id] = waiting
        while len(self.pending) > MAX_PENDING:
            _, (old_key, _t, _n) = self.pending.popitem(last=False)
            old = self.rpc.get(old_key)
            if old is not None and old.reply is not None:
                old.reply.evicted += 1
        for k, v in other.stats.items():
            self.stats[k] = self.stats.get(k, 0) + v

    def dumps_state(self) -> bytes:
        """Everything needed to resume inference, as compact bytes (JSON, zlib)."""
        state = {
            "state_version": STATE_VERSION,
            "rpc": [[list(k), r.state()] for k, r in self.rpc.items()],
            "notifications": [[list(k), n.state()] for k, n in self.notifications.items()],
            "objects": {k: o.state() for k, o in self.objects.items()},
            "others": {k: o.state() for k, o in self.others.items()},
            "contexts": {k: n.to_state() for k, n in self.contexts.items()},
            "pending": [[m, list(k), t, n] for m, (k, t, n) in self.pending.items()],
            "stats": self.stats,
        }
        return zlib.compress(orjson.dumps(state), 6)

    @classmethod
    def loads_state(cls, data: bytes) -> Catalog:
        """The catalog saved by ``dumps_state``."""
        try:
            state = orjson.loads(zlib.decompress(data))
        except (zlib.error, orjson.JSONDecodeError) as e:
            raise InputError(f"inference state is unreadable: {e}") from e
        if not isinstance(state, dict) or state.get("state_version") != STATE_VERSION:
            raise InputError("inference state has an unknown version; run infer from scratch")
        try:
            return cls._from_state(state)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"inference state is damaged ({e!r}); run infer from scratch") from e

    @classmethod
    def _from_state(cls, state: Mapping[str, Any]) -> Catalog:
        c = cls()
        c.rpc = {tuple(k): _Rpc.load(s) for k, s in state["rpc"]}  # type: ignore[misc]
        c.notifications = {tuple(k): _Notification.load(s)  # type: ignore[misc]
                           for k, s in state["notifications"]}
        c.objects = {k: _Object.load(s) for k, s in state["objects"].items()}
        c.others = {k: _Other.load(s) for k, s in state["others"].items()}
        c.contexts = {k: FieldSchema.from_state(s) for k, s in state["contexts"].items()}
        c.pending = OrderedDict((m, (tuple(k), t, n)) for m, k, t, n in state["pending"])
        c.stats = dict(state["stats"])
        return c

    # .. rendering ..............................................................

    def _defs(self, refs: set[str]) -> dict[str, Any]:
        """``$defs`` for ``refs`` and every object they reach."""
        out: dict[str, Any] = {}
        todo = sorted(refs)
        while todo:
            key = todo.pop()
            if key in out or key not in self.objects:
                continue
            more: set[str] = set()
            out[key] = self.objects[key].definition(more)
            todo.extend(sorted(more - out.keys()))
        return dict(sorted(out.items()))

    def _document(self, node: FieldSchema) -> dict[str, Any]:
        return to_document(node, self._defs)

    def _resolved_rpc(self) -> dict[RpcKey, tuple[_Rpc, bool]]:
        """Fanouts filed under the control exchange guessed from casts/calls of their topic."""
        exchanges: dict[str, set[str]] = {}
        for (ex, topic, *_rest) in self.rpc:
            if ex is not None:
                exchanges.setdefault(topic, set()).add(ex)
        out: dict[RpcKey, tuple[_Rpc, bool]] = {}
        for key in sorted(self.rpc, key=lambda k: (k[0] is None, _sort_key(k))):
            r = self.rpc[key]
            ex, topic, ns, method, version = key
            guessed = False
            if ex is None:
                known = sorted(exchanges.get(topic, ()))
                if len(known) == 1:
                    ex, guessed = known[0], True
            rkey: RpcKey = (ex, topic, ns, method, version)
            if rkey in out:
                merged = Catalog._copy_rpc(out[rkey][0])
                merged.merge_in(r)
                out[rkey] = (merged, out[rkey][1] or (guessed and not out[rkey][0].seen.count))
            else:
                out[rkey] = (r if not guessed else Catalog._copy_rpc(r), guessed)
        return out

    @staticmethod
    def _copy_rpc(r: _Rpc) -> _Rpc:
        return _Rpc.load(orjson.loads(orjson.dumps(r.state())))

    def to_json(self) -> dict[str, Any]:
        """The catalog (``docs/catalog.schema.json``), deterministic."""
        entries: list[dict[str, Any]] = []
        pending_by_key: dict[RpcKey, int] = {}
        for key, _t, _n in self.pending.values():
            pending_by_key[key] = pending_by_key.get(key, 0) + 1
        resolved = self._resolved_rpc()
        rpc_entries: list[dict[str, Any]] = []
        for rkey, (r, guessed) in resolved.items():
            ex, topic, ns, method, version = rkey
            pend = sum(c for k, c in pending_by_key.items()
                       if (k[0] == ex or (k[0] is None and guessed)) and k[1:] == rkey[1:])
            e: dict[str, Any] = {
                "kind": "rpc",
                "key": f"rpc:{ex or '?'}/{topic}/{ns or ''}/{method}@{version or ''}",
                **r.seen.json(),
                "exchange": ex,
                "exchange_guessed": guessed,
                "topic": topic,
                "method": method,
                "version": version,
                "namespace": ns,
                "styles": sorted(r.styles),
                "style_counts": dict(sorted(r.styles.items())),
                "routing_keys": sorted(r.routing_keys),
                "servers": sorted(r.servers),
                "schema": self._document(r.args),
                "reply": None if r.reply is None else self._reply_json(r.reply, pend),
                "changes": None,
            }
            rpc_entries.append(e)
        _add_version_changes(rpc_entries)
        entries.extend(rpc_entries)
        for (ex, topic, event_type), n in self.notifications.items():
            entries.append({
                "kind": "notification",
                "key": f"notification:{ex}/{topic}/{event_type}",
                **n.seen.json(),
                "exchange": ex,
                "topic": topic,
                "event_type": event_type,
                "priorities": sorted(n.priorities),
                "publisher_ids": sorted(n.publishers),
                "versioned": bool(n.payload.refs),
                "schema": self._document(n.payload),
            })
        for def_key, o in self.objects.items():
            entries.append({
                "kind": "object",
                "key": f"object:{o.namespace or o.prefix}/{def_key}",
                **o.seen.json(),
                "namespace": o.namespace or o.prefix,
                "prefix": o.prefix,
                "name": o.name,
                "version": o.version,
                "def_key": def_key,
                "schema": self._document(o.data),
            })
        for other_key, x in self.others.items():
            entries.append({
                "kind": "other",
                "key": f"other:{other_key}",
                **x.seen.json(),
                "protocol": x.protocol,
                "identity": dict(sorted(x.identity.items())),
                "content_types": sorted(x.content_types),
                "sizes": {"min": x.size_min, "max": x.size_max},
                "schema": self._document(x.body) if x.body.seen else None,
            })
        entries.sort(key=lambda e: (_KIND_ORDER[e["kind"]], e["key"]))
        contexts: dict[str, Any] = {}
        ctx_nodes: dict[str, FieldSchema] = {}
        guessed_exchange = {k[1]: k[0] for k, (_r, g) in resolved.items() if g and k[0]}
        for ckey in sorted(self.contexts):
            target = ckey
            if ckey.endswith("_fanout") and ckey[:-7] in guessed_exchange:
                target = guessed_exchange[ckey[:-7]]
            ctx_nodes.setdefault(target, FieldSchema()).merge_in(self.contexts[ckey])
        for ckey in sorted(ctx_nodes):
            contexts[ckey] = self._document(ctx_nodes[ckey])
        return {"catalog_version": CATALOG_VERSION, "contexts": contexts,
                "stats": dict(sorted(self.stats.items())), "entries": entries}

    def _reply_json(self, reply: _Reply, pending: int) -> dict[str, Any]:
        failures = [
            {"exception": f[1], "module": f[2], "count": f[0], "example": f[3]}
            for f in sorted(reply.failures.values(), key=lambda f: (-f[0], f[2] or "", f[1]))
        ]
        total = sum(reply.latency.values())
        return {
            "count": reply.count,
            "schema": self._document(reply.result) if reply.result.seen else None,
            "failures": failures,
            "latency": {"count": total, "p50": reply.quantile(0.5), "p95": reply.quantile(0.95),
                        "max": None if reply.lat_max is None else round(reply.lat_max, 3)},
            "pending": pending + reply.evicted,
            "multipart": reply.multipart,
        }


def _sort_key(k: RpcKey) -> tuple[str, ...]:
    return tuple("" if p is None else p for p in k)


def _version_tuple(v: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in (v or "").split("."))
    except ValueError:
        return ()


def _shape(prop: Mapping[str, Any]) -> tuple[Any, ...]:
    return (str(prop.get("type")), str(prop.get("$ref")), str(prop.get("anyOf")))


def _add_version_changes(entries: list[dict[str, Any]]) -> None:
    """Fill ``changes`` of each rpc entry from the previous version of the same method."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault((e["exchange"], e["topic"], e["namespace"], e["method"]), []).append(e)
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda e: (_version_tuple(e["version"]), e["version"] or ""))
        for prev, cur in zip(group, group[1:], strict=False):
            a = prev["schema"].get("properties", {})
            b = cur["schema"].get("properties", {})
            ra, rb = set(prev["schema"].get("required", [])), set(cur["schema"].get("required", []))
            changed = sorted(k for k in a.keys() & b.keys()
                             if _shape(a[k]) != _shape(b[k]) or (k in ra) != (k in rb))
            cur["changes"] = {"from_version": prev["version"], "added": sorted(b.keys() - a.keys()),
                              "removed": sorted(a.keys() - b.keys()), "changed": changed}


def build_catalog(messages: Iterable[StoredMessage], state: bytes | None = None) -> Catalog:
    """Fold ``messages`` into a catalog, resuming from ``state`` when given."""
    catalog = Catalog.loads_state(state) if state is not None else Catalog()
    for m in messages:
        catalog.add(m)
    return catalog


__all__ = ["CATALOG_VERSION", "Catalog", "build_catalog"]
