"""Regenerate every capture fixture in this folder from real traffic.

Run as root (tcpdump):
``.venv/bin/python tests/captures/make_captures.py [--out DIR] [name ...]``.

For each fixture: a fresh vhost, ``tcpdump -U -s 0`` on ``lo`` (or ``any``), real
clients (pika, or the oslo.messaging service in ``tests/oslo_testservice``), SIGINT to
tcpdump and a check that it dropped nothing, then a second tcpdump pass keeping only
the TCP ports our own clients opened (other programs share the broker). The manifest
``<name>.json`` is written from what the clients themselves sent and received, never
from a decoder.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import importlib
import importlib.util
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import pika

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
OUT = HERE
"""Where fixtures are written; ``--out DIR`` changes it (to try the script without
touching the committed files)."""
HOST = "127.0.0.1"
PORT = 5672
SMALL_BODY = 4096
"""Bodies up to this many bytes are also stored base64 in the manifest."""


def load_oslo_service() -> Any:
    """Import tests/oslo_testservice by path: PyPI's oslo.service owns ``oslo_service``."""
    name = "busdoc_oslo_service"
    if name not in sys.modules:
        root = TESTS / "oslo_testservice"
        spec = importlib.util.spec_from_file_location(
            name, root / "__init__.py", submodule_search_locations=[str(root)]
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --------------------------------------------------------------------------- broker


def rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True,
                   timeout=60, check=check)


def fresh_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost, check=False)
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


def drop_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost, check=False)


# --------------------------------------------------------------------------- tcpdump


class Tcpdump:
    """tcpdump writing every packet as it comes (-U), whole packets (-s 0)."""

    def __init__(self, iface: str, path: Path) -> None:
        self.path = path
        self.cmd = ["tcpdump", "-i", iface, "-U", "-s", "0", "-n", "-w", str(path),
                    f"tcp port {PORT}"]
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        said = []
        for _ in range(5):  # "-i any" first says "data link type LINUX_SLL2"
            line = self.proc.stderr.readline()
            said.append(line.strip())
            if "listening on" in line or not line:
                break
        if "listening on" not in said[-1]:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"tcpdump did not start: {' / '.join(said)}")
        time.sleep(0.5)  # "listening" is printed when the socket is live; be generous

    def stop(self) -> str:
        assert self.proc is not None
        time.sleep(0.5)  # let the last segments reach the socket
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=30)
        match = re.search(r"(\d+) packets? dropped by kernel", err)
        if not match or match.group(1) != "0":
            raise RuntimeError(f"tcpdump dropped packets or did not say: {err.strip()}")
        return err


def keep_ports(raw: Path, out: Path, ports: Iterable[int]) -> None:
    expr = " or ".join(f"tcp port {p}" for p in sorted(set(ports)))
    subprocess.run(["tcpdump", "-r", str(raw), "-w", str(out), expr],
                   capture_output=True, check=True)


# --------------------------------------------------------------------------- records


def _fix_pika_float_decoding() -> None:
    """pika 1.3 decodes 'f' and 'd' field values through int(), so 2.5 reads as 2.

    The broker forwards the header bytes unchanged; record what is on the wire.
    """
    import struct

    import pika.data

    original = pika.data.decode_value
    if getattr(original, "_busdoc_fixed", False):
        return

    def decode_value(encoded: bytes, offset: int) -> tuple[Any, int]:
        kind = encoded[offset:offset + 1]
        if kind == b"d":
            return struct.unpack_from(">d", encoded, offset + 1)[0], offset + 9
        if kind == b"f":
            return struct.unpack_from(">f", encoded, offset + 1)[0], offset + 5
        return original(encoded, offset)

    decode_value._busdoc_fixed = True  # type: ignore[attr-defined]
    pika.data.decode_value = decode_value


_fix_pika_float_decoding()


def jsonable(value: Any) -> Any:
    """AMQP field values as JSON; types JSON lacks become one-key tagged objects."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return {"$timestamp": int(value.timestamp())}
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    raise TypeError(f"no JSON form for {type(value).__name__}")


PIKA_PROPERTIES = ("content_type", "content_encoding", "delivery_mode", "priority",
                   "correlation_id", "reply_to", "expiration", "message_id", "timestamp",
                   "type", "user_id", "app_id", "cluster_id")


def pika_properties(props: pika.BasicProperties) -> tuple[dict[str, Any], Any]:
    found = {n: getattr(props, n) for n in PIKA_PROPERTIES if getattr(props, n) is not None}
    return found, props.headers


class Recorder:
    """Collects events in the same shape as the py-amqp tap."""

    def __init__(self, tap_event: type, tap_connection: type) -> None:
        self.events: list[Any] = []
        self.connections: list[Any] = []
        self.event_cls = tap_event
        self.conn_cls = tap_connection

    def connect(self, vhost: str, name: str, **params: Any) -> pika.BlockingConnection:
        cp = pika.ConnectionParameters(
            HOST, PORT, vhost, pika.PlainCredentials("guest", "guest"),
            client_properties={"connection_name": name}, **params)
        conn = pika.BlockingConnection(cp)
        sock = conn._impl._transport._sock  # noqa: SLF001 - the local port is the point
        local, peer = sock.getsockname(), sock.getpeername()
        key = f"{local[0]}:{local[1]}->{peer[0]}:{peer[1]}"
        conn._busdoc_key = key  # type: ignore[attr-defined]
        conn._busdoc_vhost = vhost  # type: ignore[attr-defined]
        self.connections.append(self.conn_cls(
            connection=key, local_port=local[1], vhost=vhost, user="guest",
            client_properties={"connection_name": name,
                               "frame_max": params.get("frame_max", 131072)}))
        return conn

    def _event(self, kind: str, ch: Any, exchange: str, routing_key: str,
               props: pika.BasicProperties, body: bytes, **more: Any) -> None:
        conn = ch.connection
        found, headers = pika_properties(props)
        self.events.append(self.event_cls(
            time=time.time(), kind=kind, connection=conn._busdoc_key,
            channel=ch.channel_number, exchange=exchange, routing_key=routing_key,
            properties=found, headers=headers, body=bytes(body),
            vhost=conn._busdoc_vhost, **more))

    def publish(self, ch: Any, exchange: str, routing_key: str, body: bytes,
                props: pika.BasicProperties | None = None, mandatory: bool = False) -> None:
        props = props or pika.BasicProperties()
        ch.basic_publish(exchange, routing_key, body, props, mandatory=mandatory)
        self._event("publish", ch, exchange, routing_key, props, body, mandatory=mandatory)

    def deliver(self, ch: Any, method: Any, props: Any, body: bytes, queue: str) -> None:
        self._event("deliver", ch, method.exchange, method.routing_key, props, body,
                    queue=queue, consumer_tag=method.consumer_tag,
                    delivery_tag=method.delivery_tag, redelivered=method.redelivered)

    def get(self, ch: Any, queue: str) -> tuple[Any, bytes] | None:
        method, props, body = ch.basic_get(queue)
        if method is None:
            return None
        self._event("get_ok", ch, method.exchange, method.routing_key, props, body,
                    queue=queue, delivery_tag=method.delivery_tag,
                    redelivered=method.redelivered)
        return method, body

    def returned(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        self._event("return", ch, method.exchange, method.routing_key, props, body,
                    reply_code=method.reply_code, reply_text=method.reply_text)


# --------------------------------------------------------------------------- manifest


def group_messages(events: list[Any]) -> list[dict[str, Any]]:
    """Messages with their observations, matched the way DESIGN.md defines it.

    A delivery or get-ok belongs to the earliest publish with the same vhost, exchange,
    routing key and body that has not yet reached that queue (a redelivery to the
    queue that already had it joins the latest such message); a return belongs to the
    earliest publish not yet returned.
    """
    messages: list[dict[str, Any]] = []
    by_key: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for ev in sorted(events, key=lambda e: e.time):
        sha = hashlib.sha256(ev.body).hexdigest()
        key = (ev.vhost, ev.exchange, ev.routing_key, sha)
        obs: dict[str, Any] = {"kind": ev.kind, "connection": ev.connection,
                               "channel": ev.channel}
        for name in ("queue", "consumer_tag", "delivery_tag", "reply_code", "reply_text"):
            if getattr(ev, name) is not None:
                obs[name] = getattr(ev, name)
        if ev.kind in ("deliver", "get_ok"):
            obs["redelivered"] = ev.redelivered
        if ev.kind == "publish":
            obs["mandatory"] = ev.mandatory
        props = jsonable(ev.properties)
        headers = jsonable(ev.headers) if ev.headers is not None else None
        if ev.kind == "publish":
            msg = {"vhost": ev.vhost, "exchange": ev.exchange,
                   "routing_key": ev.routing_key, "properties": props,
                   "headers": headers, "body_sha256": sha, "body_length": len(ev.body),
                   "observations": [obs], "_queues": set(), "_returned": False}
            if len(ev.body) <= SMALL_BODY:
                msg["body_b64"] = base64.b64encode(ev.body).decode()
            messages.append(msg)
            by_key.setdefault(key, []).append(msg)
            continue
        candidates = by_key.get(key, [])
        target = None
        if ev.kind == "return":
            target = next((m for m in candidates if not m["_returned"]), None)
            if target:
                target["_returned"] = True
        else:
            target = next((m for m in candidates if ev.queue not in m["_queues"]), None)
            if target is None and ev.redelivered:
                target = next((m for m in reversed(candidates)
                               if ev.queue in m["_queues"]), None)
            if target:
                target["_queues"].add(ev.queue)
        if target is None:
            target = {"vhost": ev.vhost, "exchange": ev.exchange,
                      "routing_key": ev.routing_key, "properties": props,
                      "headers": headers, "body_sha256": sha, "body_length": len(ev.body),
                      "observations": [], "_queues": {ev.queue}, "_returned": False}
            if len(ev.body) <= SMALL_BODY:
                target["body_b64"] = base64.b64encode(ev.body).decode()
            messages.append(target)
            by_key.setdefault(key, []).append(target)
        if props != target["properties"] or headers != target["headers"]:
            obs["properties"] = props
            obs["headers"] = headers
        target["observations"].append(obs)
    for i, msg in enumerate(messages):
        msg.pop("_queues")
        msg.pop("_returned")
        msg["id"] = i
    return messages


def file_facts(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        fmt = "pcapng"
        order: Literal["little", "big"] = (
            "little" if data[8:12] == b"\x4d\x3c\x2b\x1a" else "big")
        shb_len = int.from_bytes(data[4:8], order)
        linktype = int.from_bytes(data[shb_len + 8:shb_len + 10], order)
    else:
        fmt = "pcap"
        order = "little" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else "big"
        linktype = int.from_bytes(data[20:24], order)
    names = {1: "EN10MB", 113: "LINUX_SLL", 276: "LINUX_SLL2", 0: "NULL", 101: "RAW"}
    return {"file": path.name, "format": fmt, "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data), "linktype": linktype,
            "linktype_name": names.get(linktype, str(linktype))}


def write_manifest(name: str, path: Path, recorder_events: list[Any],
                   connections: list[Any], how: str, extra: dict[str, Any]) -> None:
    messages = group_messages(recorder_events)
    counts = Counter(o["kind"] for m in messages for o in m["observations"])
    manifest = {
        "fixture": file_facts(path),
        "made_with": {"how": how, "tcpdump": tcpdump_version(),
                      "made_at": datetime.datetime.now(datetime.UTC).isoformat(
                          timespec="seconds")},
        "connections": [
            {"connection": c.connection, "local_port": c.local_port, "vhost": c.vhost,
             "user": c.user, "connection_name": c.client_properties.get("connection_name"),
             "client_properties": jsonable(c.client_properties)}
            for c in connections
        ],
        "counts": {k: counts.get(k, 0) for k in ("publish", "deliver", "get_ok", "return")},
        "messages": messages,
        **extra,
    }
    (OUT / f"{name}.json").write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n")
    print(f"{path.name}: {manifest['fixture']['size']} bytes, {manifest['counts']}")


def tcpdump_version() -> str:
    out = subprocess.run(["tcpdump", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0]


def record(name: str, out_name: str, vhost: str, iface: str,
           scenario: Callable[[Any], None], how: str, pcapng: bool = False) -> None:
    """Capture one scenario end to end into ``out_name`` and its manifest."""
    svc = load_oslo_service()
    tap_mod = importlib.import_module(f"{svc.__name__}.tap")
    rec = Recorder(tap_mod.TapEvent, tap_mod.TapConnection)
    tap = tap_mod.Tap()  # for scenarios that also use py-amqp
    fresh_vhost(vhost)
    raw = OUT / f".{name}.raw.pcap"
    dump = Tcpdump(iface, raw)
    tap.install()
    dump.start()
    try:
        scenario(rec)
    finally:
        dump.stop()
        tap.uninstall()
    for c in tap.connections:
        c.user = "guest"
    rec.events.extend(tap.events)
    rec.connections.extend(tap.connections)
    out = OUT / out_name
    filtered = raw.with_suffix(".kept.pcap")
    keep_ports(raw, filtered, [c.local_port for c in rec.connections])
    if pcapng:
        subprocess.run(["editcap", "-F", "pcapng", str(filtered), str(out)], check=True)
        filtered.unlink()
    else:
        filtered.replace(out)
    raw.unlink()
    drop_vhost(vhost)
    write_manifest(name, out, rec.events, rec.connections, how, {"vhost": vhost})


# --------------------------------------------------------------------------- scenarios


def full_headers() -> dict[str, Any]:
    return {
        "x-int": 42,
        "x-negative": -7,
        "x-long": 2**40 + 3,
        "x-str": "héllo wörld",
        "x-bool-true": True,
        "x-bool-false": False,
        "x-decimal": decimal.Decimal("3.14"),
        "x-timestamp": datetime.datetime(2026, 11, 24, 20, 10, 6, tzinfo=datetime.UTC),
        "x-table": {"inner": "yes", "depth": {"n": 2}},
        "x-array": [1, "two", True, {"k": "v"}],
        "x-bytes": b"\x00\x01\xfe\xff",
        "x-void": None,
    }


def publish_with_py_amqp(vhost: str) -> None:
    """pika cannot encode float header values; py-amqp writes them as 'd' (double)."""
    import amqp

    conn = amqp.Connection(f"{HOST}:{PORT}", userid="guest", password="guest",
                           virtual_host=vhost,
                           client_properties={"connection_name": "busdoc-fx-py-amqp"})
    conn.connect()
    ch = conn.channel()
    ch.basic_publish(
        amqp.Message(
            b'{"from": "py-amqp"}', content_type="application/json", delivery_mode=1,
            application_headers={
                "x-float": 2.5, "x-double-negative": -0.001,
                "x-decimal": decimal.Decimal("-12.345"), "x-int": 7, "x-str": "amqp",
                "x-timestamp": datetime.datetime(2026, 11, 24, 20, 10, 6,
                                                 tzinfo=datetime.UTC),
                "x-list": [1.5, "a"], "x-table": {"f": 0.25}}),
        exchange="fx.events", routing_key="orders.pyamqp")
    ch.close()
    conn.close()


def all_properties(i: int, headers: dict[str, Any] | None) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json", content_encoding="utf-8", headers=headers,
        delivery_mode=2, priority=5, correlation_id=f"corr-{i}", reply_to="fx.replies",
        expiration="60000", message_id=f"msg-{i}", timestamp=1795551006 + i,
        type="order.event", user_id="guest", app_id="busdoc-fixtures", cluster_id="c1")


def pump(conn: pika.BlockingConnection, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        conn.process_data_events(time_limit=0.1)


def scenario_basic(rec: Recorder) -> None:
    vhost = "busdoc-fx-basic"
    rng = random.Random(7)
    pub = rec.connect(vhost, "busdoc-fx-publisher")
    con = rec.connect(vhost, "busdoc-fx-consumer")
    setup = pub.channel()
    setup.exchange_declare("fx.events", "topic")
    for queue, key in (("fx.q.orders", "orders.#"), ("fx.q.audit", "#")):
        setup.queue_declare(queue)
        setup.queue_bind(queue, "fx.events", key)
    setup.queue_declare("fx.q.poll")
    ch1, ch2, ch3 = pub.channel(), pub.channel(), pub.channel()
    returns: list[Any] = []

    def on_return(ch: Any, method: Any, props: Any, body: bytes) -> None:
        rec.returned(ch, method, props, body)
        returns.append(1)

    ch3.add_on_return_callback(on_return)
    keys = ["orders.created", "orders.updated", "audit.login", "orders.cancelled",
            "audit.logout", "billing.invoice"]
    for i, key in enumerate(keys):
        body = json.dumps({"seq": i, "key": key, "amount": rng.randint(1, 10**6),
                           "note": "x" * rng.randint(0, 200)}).encode()
        rec.publish(ch1, "fx.events", key, body,
                    all_properties(i, full_headers() if i == 0 else {"x-seq": i}))
    rec.publish(ch2, "fx.events", "blob.binary", rng.randbytes(1000),
                pika.BasicProperties(content_type="application/octet-stream"))
    rec.publish(ch2, "fx.events", "blob.empty", b"", pika.BasicProperties())
    rec.publish(ch2, "fx.events", "orders.big", rng.randbytes(30000),
                pika.BasicProperties(content_type="application/octet-stream",
                                     headers={"x-part": 1}))
    for i in range(3):
        rec.publish(ch2, "", "fx.q.poll", f"poll-{i}".encode(),
                    pika.BasicProperties(delivery_mode=1, correlation_id=f"poll-{i}"))
    rec.publish(ch3, "amq.direct", "nobody-home", b'{"lost": true}',
                pika.BasicProperties(content_type="application/json"), mandatory=True)
    pump(pub, lambda: bool(returns), "basic.return")
    publish_with_py_amqp(vhost)

    expected = {"fx.q.orders": 5, "fx.q.audit": 10}
    seen: Counter[str] = Counter()
    for queue in expected:
        ch = con.channel()

        def on_message(ch: Any, method: Any, props: Any, body: bytes, q: str = queue) -> None:
            rec.deliver(ch, method, props, body, q)
            seen[q] += 1
            ch.basic_ack(method.delivery_tag)

        ch.basic_consume(queue, on_message)
    pump(con, lambda: all(seen[q] == n for q, n in expected.items()), "deliveries")
    getter = con.channel()
    first = rec.get(getter, "fx.q.poll")
    assert first is not None
    getter.basic_reject(first[0].delivery_tag, requeue=True)
    got = 0
    while got < 3:
        result = rec.get(getter, "fx.q.poll")
        if result is None:
            time.sleep(0.05)
            continue
        getter.basic_ack(result[0].delivery_tag)
        got += 1
    assert rec.get(getter, "fx.q.poll") is None  # a get-empty too
    pub.close()
    con.close()


SPLIT_SIZES = [3000, 4088, 4089, 10000, 50000, 200_000]


def scenario_split(rec: Recorder) -> None:
    vhost = "busdoc-fx-split"
    rng = random.Random(11)
    for name, params, sizes in (
        ("busdoc-fx-split-4096", {"frame_max": 4096}, SPLIT_SIZES),
        ("busdoc-fx-split-default", {}, [70_000, 200_000]),
    ):
        conn = rec.connect(vhost, name, **params)
        ch = conn.channel()
        queue = f"fx.split.{name.rsplit('-', 1)[1]}"
        ch.queue_declare(queue)
        for i, size in enumerate(sizes):
            rec.publish(ch, "", queue, rng.randbytes(size),
                        pika.BasicProperties(content_type="application/octet-stream",
                                             message_id=f"{name}-{i}",
                                             headers={"x-size": size}))
        seen: list[int] = []

        def on_message(ch: Any, method: Any, props: Any, body: bytes, q: str = queue,
                       seen: list[int] = seen) -> None:
            rec.deliver(ch, method, props, body, q)
            seen.append(1)
            ch.basic_ack(method.delivery_tag)

        consumer = conn.channel()
        consumer.basic_consume(queue, on_message)
        wanted = len(sizes)
        pump(conn, lambda: len(seen) == wanted, "split deliveries")  # noqa: B023
        conn.close()


def scenario_any(rec: Recorder) -> None:
    vhost = "busdoc-fx-any"
    conn = rec.connect(vhost, "busdoc-fx-any")
    ch = conn.channel()
    ch.queue_declare("fx.any")
    for i in range(4):
        rec.publish(ch, "", "fx.any", json.dumps({"n": i, "via": "any"}).encode(),
                    pika.BasicProperties(content_type="application/json",
                                         headers={"x-n": i}))
    for _ in range(4):
        while rec.get(ch, "fx.any") is None:
            time.sleep(0.05)
    conn.close()


def make_midstream() -> None:
    """Start tcpdump after the connection is open and traffic already flowed.

    The capture starts only once the first messages have been published and
    consumed (a blocking get round-trip proves they left the socket), so the
    manifest splits them exactly into ``before_capture`` and ``messages``.
    """
    name, vhost = "midstream", "busdoc-fx-mid"
    svc = load_oslo_service()
    tap_mod = importlib.import_module(f"{svc.__name__}.tap")
    rec = Recorder(tap_mod.TapEvent, tap_mod.TapConnection)
    fresh_vhost(vhost)
    rng = random.Random(13)
    conn = rec.connect(vhost, "busdoc-fx-midstream")
    ch = conn.channel()
    ch.queue_declare("fx.mid")
    seen: list[int] = []

    def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
        rec.deliver(ch, method, props, body, "fx.mid")
        seen.append(1)
        ch.basic_ack(method.delivery_tag)

    consumer = conn.channel()
    consumer.basic_consume("fx.mid", on_message)

    def burst(n: int, start: int) -> None:
        for i in range(start, start + n):
            body = (json.dumps({"n": i}).encode() if i % 3 else rng.randbytes(20000 + i))
            rec.publish(ch, "", "fx.mid", body,
                        pika.BasicProperties(message_id=f"mid-{i}", headers={"x-n": i}))
        pump(conn, lambda: len(seen) == start + n, "midstream deliveries")

    burst(4, 0)
    before = list(rec.events)
    raw = OUT / f".{name}.raw.pcap"
    dump = Tcpdump("lo", raw)
    dump.start()
    try:
        burst(6, 4)
    finally:
        dump.stop()
    conn.close()
    out = OUT / "midstream.pcap"
    keep_ports(raw, out, [c.local_port for c in rec.connections])
    raw.unlink()
    drop_vhost(vhost)
    after = rec.events[len(before):]
    write_manifest(name, out, after, rec.connections,
                   "tcpdump started on lo after the connection handshake and 4 messages "
                   "(published and delivered) had passed; the capture has no "
                   "connection.start/tune/open, so vhost and frame_max are not in it",
                   {"vhost": vhost, "handshake_in_capture": False,
                    "before_capture": group_messages(before),
                    "exactness": "exact: the capture started after the before_capture "
                                 "messages completed (a delivery proves it) and before "
                                 "the first listed one was published"})


def _pcap_records(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of each record of a little-endian microsecond pcap."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "expected tcpdump's native pcap"
    out, pos = [], 24
    while pos < len(data):
        incl = int.from_bytes(data[pos + 8:pos + 12], "little")
        out.append((pos, 16 + incl))
        pos += 16 + incl
    return out


CUT_MESSAGE = 2
"""Index of the publish the cut lands in."""


def make_midstream_cut() -> None:
    """A full capture with its first packets removed, so it opens inside a body frame.

    frame_max 4096 and 150,000-byte bodies make each publish span several TCP
    segments; the cut keeps everything after the segment carrying the first body bytes
    of publish ``CUT_MESSAGE``, so the file starts in the middle of a body frame of a
    message whose method and header frames are gone. What remains is exact: later
    publishes, and every delivery (consumed only after all publishes were confirmed).
    """
    name, vhost = "midstream_cut", "busdoc-fx-cut"
    svc = load_oslo_service()
    tap_mod = importlib.import_module(f"{svc.__name__}.tap")
    rec = Recorder(tap_mod.TapEvent, tap_mod.TapConnection)
    fresh_vhost(vhost)
    rng = random.Random(17)
    bodies = [rng.randbytes(150_000) for _ in range(5)]
    raw = OUT / f".{name}.raw.pcap"
    dump = Tcpdump("lo", raw)
    dump.start()
    try:
        pub = rec.connect(vhost, "busdoc-fx-cut-publisher", frame_max=4096)
        ch = pub.channel()
        ch.confirm_delivery()
        ch.queue_declare("fx.cut")
        for i, body in enumerate(bodies):
            rec.publish(ch, "", "fx.cut", body,
                        pika.BasicProperties(message_id=f"cut-{i}", headers={"x-n": i}))
        con = rec.connect(vhost, "busdoc-fx-cut-consumer")
        cch = con.channel()
        got = 0
        while got < len(bodies):
            result = rec.get(cch, "fx.cut")
            if result is None:
                time.sleep(0.05)
                continue
            cch.basic_ack(result[0].delivery_tag)
            got += 1
        pub.close()
        con.close()
    finally:
        dump.stop()
    full = raw.with_suffix(".full.pcap")
    keep_ports(raw, full, [c.local_port for c in rec.connections])
    raw.unlink()
    drop_vhost(vhost)
    data = full.read_bytes()
    full.unlink()
    records = _pcap_records(data)
    marker = bodies[CUT_MESSAGE][:64]
    at = data.index(marker)
    assert data.count(marker) == 2, "the marker must be in its publish and its get-ok"
    first = next(i for i, (off, length) in enumerate(records) if off <= at < off + length)
    off, length = records[first]
    assert not (off <= at + 64 <= off + length and bodies[CUT_MESSAGE][-64:] in
                data[off:off + length]), "the cut publish must span several segments"
    kept = data[:24] + b"".join(data[o:o + n] for o, n in records[first + 1:])
    out = OUT / f"{name}.pcap"
    out.write_bytes(kept)
    publishes = [e for e in rec.events if e.kind == "publish"]
    before = publishes[:CUT_MESSAGE + 1]
    after = [e for e in rec.events if e not in before]
    write_manifest(
        name, out, after, rec.connections,
        f"tcpdump on lo of the whole session; the script then dropped the first "
        f"{first + 1} of {len(records)} packets (a struct copy of the pcap records), "
        f"cutting inside publish {CUT_MESSAGE}",
        {"vhost": vhost, "handshake_in_capture": False,
         "packets_dropped_by_cut": first + 1,
         "cut_publish": group_messages([before[-1]])[0],
         "before_capture": group_messages(before[:-1]),
         "exactness": "exact for everything listed in messages; the cut publish's "
                      "remaining body bytes (most of a 150000-byte body, starting "
                      "mid-frame) are in the file and must be skipped, not decoded"})


def make_oslo() -> None:
    name, vhost = "oslo_rpc", "busdoc-oslo"
    svc = load_oslo_service()
    tap_mod = importlib.import_module(f"{svc.__name__}.tap")
    service = importlib.import_module(f"{svc.__name__}.service")
    declared = importlib.import_module(f"{svc.__name__}.declared")
    fresh_vhost(vhost)
    tap = tap_mod.Tap()
    tap.install()
    raw = OUT / f".{name}.raw.pcap"
    dump = Tcpdump("lo", raw)
    dump.start()
    try:
        traffic = service.run_traffic(f"rabbit://guest:guest@{HOST}:{PORT}/{vhost}")
    finally:
        dump.stop()
        tap.uninstall()
    out = OUT / "oslo_rpc.pcap"
    keep_ports(raw, out, [c.local_port for c in tap.connections])
    raw.unlink()
    drop_vhost(vhost)
    for c in tap.connections:
        c.user = "guest"
    write_manifest(name, out, tap.events, tap.connections,
                   "tcpdump on lo around tests/oslo_testservice run_traffic(); ground truth "
                   "from py-amqp's publish/deliver/get/return methods",
                   {"vhost": vhost, "plan": service.PLAN, "servers": list(service.SERVERS),
                    "secrets": service.SECRETS, "declared": declared.DECLARED,
                    "sent": jsonable(traffic["sent"]),
                    "received_calls": [list(c) for c in traffic["received_calls"]],
                    "received_notifications": [list(n) for n in
                                               traffic["received_notifications"]]})


FIXTURES: dict[str, Callable[[], None]] = {
    "pika_basic": lambda: record(
        "pika_basic", "pika_basic.pcap", "busdoc-fx-basic", "lo", scenario_basic,
        "tcpdump on lo; two pika connections, four channels publishing, consumers, "
        "basic.get with a reject-requeue, a mandatory publish returned"),
    "pika_split": lambda: record(
        "pika_split", "pika_split.pcapng", "busdoc-fx-split", "lo", scenario_split,
        "tcpdump on lo, converted to pcapng with editcap -F pcapng; frame_max 4096 "
        "connection and a default (131072) one, bodies up to 200000 bytes",
        pcapng=True),
    "any_cooked": lambda: record(
        "any_cooked", "any_cooked.pcap", "busdoc-fx-any", "any", scenario_any,
        "tcpdump -i any (Linux cooked capture); one pika connection, publish and get"),
    "midstream": make_midstream,
    "midstream_cut": make_midstream_cut,
    "oslo_rpc": make_oslo,
}


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("make_captures.py needs root for tcpdump", file=sys.stderr)
        return 2
    global OUT
    warnings.simplefilter("ignore")
    if argv[:1] == ["--out"]:
        OUT = Path(argv[1]).resolve()
        OUT.mkdir(parents=True, exist_ok=True)
        argv = argv[2:]
    for name in argv or list(FIXTURES):
        FIXTURES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
