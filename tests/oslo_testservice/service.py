"""A compute-like oslo.messaging service and a deterministic traffic generator.

Two RPC servers (``host-a``, ``host-b``) listen on topic ``compute`` of exchange
``nova`` with the ``threading`` executor (no eventlet); a notification listener
consumes ``notifications.info`` and ``notifications.error``. ``run_traffic()`` makes a
fixed number of calls, casts, fanout casts, failing calls and notifications, whose
argument shapes follow ``declared.DECLARED``; random values come from a seeded
generator and are returned so the manifest can record them.
"""

from __future__ import annotations

import datetime
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import oslo_messaging as messaging
from oslo_config import cfg

from . import declared

AUTH_TOKEN = (
    "gAAAAABnBusdocFakeKeystoneTokenQ2VydGFpbmx5IG5vdCBhIHJlYWwgdG9rZW4_"
    "x7Rk2PqLm9Zt4Vw1Ys8Nd3Hf6Jc0Bg5Ua"
)
ADMIN_PASSWORD = "Tr0ub4dor&3-busdoc-admin"
CELL_RABBIT_PASSWORD = "N0vaCellRabbitS3cret"
CELL_TRANSPORT_URL = f"rabbit://nova:{CELL_RABBIT_PASSWORD}@10.0.0.5:5672/nova_cell1"
SECRETS = [AUTH_TOKEN, ADMIN_PASSWORD, CELL_TRANSPORT_URL, CELL_RABBIT_PASSWORD]
"""Strings that must never reach storage unredacted."""

# How many of each the generator sends; tests compare against these.
PLAN: dict[str, int] = {
    "ping": 3,
    "build_instance@1.0": 4,
    "build_instance@1.1": 3,
    "get_console_url": 3,
    "set_cell_mapping": 2,
    "delete_instance.ok": 1,
    "delete_instance.raises": 2,
    "reboot_instance": 4,
    "refresh_cache": 2,
    "notify.info": 4,
    "notify.error": 2,
}
SERVERS = ("host-a", "host-b")


class InstanceNotFound(Exception):
    """Raised by delete_instance for unknown instances, so failure replies appear."""


@dataclass
class Received:
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # server, method, ver
    notifications: list[tuple[str, str]] = field(default_factory=list)  # priority, type
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_call(self, server: str, method: str, version: str = "") -> None:
        with self.lock:
            self.calls.append((server, method, version))

    def count(self, method: str) -> int:
        with self.lock:
            return sum(1 for c in self.calls if c[1] == method)


class ComputeEndpoint:
    """The RPC API; version 1.1 accepts Instance objects at 2.8."""

    target = messaging.Target(version="1.1")

    def __init__(self, server: str, received: Received, known: set[str]) -> None:
        self.server = server
        self.received = received
        self.known = known

    def ping(self, ctxt: dict[str, Any], payload: str) -> str:
        self.received.add_call(self.server, "ping")
        return payload

    def build_instance(self, ctxt: dict[str, Any], instance: dict[str, Any],
                       admin_password: str, requested_networks: list[dict[str, Any]],
                       scheduled_at: str, block_device_mapping: dict[str, Any],
                       host: str | None = None) -> dict[str, Any]:
        self.received.add_call(self.server, "build_instance")
        data = instance[f"{declared.OBJECT_NAMESPACE}_object.data"]
        return {"uuid": data["uuid"], "host": host or self.server, "networks":
                len(requested_networks)}

    def get_console_url(self, ctxt: dict[str, Any], instance_uuid: str,
                        console_type: str) -> dict[str, Any]:
        self.received.add_call(self.server, "get_console_url")
        return {"url": f"http://console.example:6080/{console_type}?token={instance_uuid}",
                "console_type": console_type}

    def set_cell_mapping(self, ctxt: dict[str, Any], cell_uuid: str, transport_url: str,
                         disabled: bool) -> None:
        self.received.add_call(self.server, "set_cell_mapping")
        return None

    @messaging.expected_exceptions(InstanceNotFound)
    def delete_instance(self, ctxt: dict[str, Any], instance_uuid: str) -> bool:
        self.received.add_call(self.server, "delete_instance")
        if instance_uuid not in self.known:
            raise InstanceNotFound(f"Instance {instance_uuid} could not be found.")
        return True

    def reboot_instance(self, ctxt: dict[str, Any], instance_uuid: str,
                        reboot_type: str) -> None:
        self.received.add_call(self.server, "reboot_instance")

    def refresh_cache(self, ctxt: dict[str, Any], updated_at: str, generation: int,
                      ratio: float) -> None:
        self.received.add_call(self.server, "refresh_cache")


class NotificationEndpoint:
    def __init__(self, received: Received) -> None:
        self.received = received

    def _add(self, priority: str, event_type: str) -> None:
        with self.received.lock:
            self.received.notifications.append((priority, event_type))

    def info(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any,
             metadata: Any) -> None:
        self._add("INFO", event_type)

    def error(self, ctxt: Any, publisher_id: str, event_type: str, payload: Any,
              metadata: Any) -> None:
        self._add("ERROR", event_type)


class Generator:
    """Seeded values in the shapes OpenStack services send."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.base = datetime.datetime(2026, 11, 24, 20, 10, 6, 218414)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def when(self) -> datetime.datetime:
        return self.base + datetime.timedelta(seconds=self.rng.randint(0, 86400 * 30),
                                              microseconds=self.rng.randint(0, 999999))

    def iso_z(self) -> str:
        return self.when().strftime("%Y-%m-%dT%H:%M:%SZ")

    def py_str(self) -> str:
        return str(self.when())

    def instance(self, version: str, i: int, uuid_: str) -> dict[str, Any]:
        ns = declared.OBJECT_NAMESPACE
        data: dict[str, Any] = {
            "uuid": uuid_,
            "hostname": f"vm-{i:03d}",
            "vm_state": declared.VM_STATES[i % len(declared.VM_STATES)],
            "memory_mb": self.rng.choice([512, 2048, 4096, 16384]),
            "vcpus": self.rng.randint(1, 16),
            "created_at": self.iso_z(),
            "launched_at": None if i % 2 else self.iso_z(),
            "metadata": {self.uuid(): f"value-{k}" for k in range(self.rng.randint(0, 3))},
        }
        if version == "2.8":
            choices = [*declared.LOCKED_BY, None]
            data["locked_by"] = choices[i % len(choices)]
            data["tags"] = [f"tag{k}" for k in range(i % 3)]
        return {
            f"{ns}_object.name": "Instance",
            f"{ns}_object.namespace": ns,
            f"{ns}_object.version": version,
            f"{ns}_object.data": data,
            f"{ns}_object.changes": sorted(self.rng.sample(sorted(data), 2)),
        }

    def build_args(self, version: str, i: int, uuid_: str) -> dict[str, Any]:
        networks = []
        for k in range(1 + i % 2):
            net: dict[str, Any] = {
                "network_id": self.uuid(),
                "fixed_ip": None if (i + k) % 2 else f"10.0.{i}.{10 + k}",
            }
            if k == 0 and i % 2 == 0:
                net["port_id"] = self.uuid()
            networks.append(net)
        args: dict[str, Any] = {
            "instance": self.instance(version, i, uuid_),
            "admin_password": ADMIN_PASSWORD,
            "requested_networks": networks,
            "scheduled_at": self.py_str(),
            "block_device_mapping": {
                self.uuid(): {"size_gb": self.rng.randint(1, 100),
                              "boot_index": k if k == 0 else None}
                for k in range(1 + i % 2)
            },
        }
        if i % 2 == 0:
            args["host"] = SERVERS[i % 2]
        return args


def _conf() -> cfg.ConfigOpts:
    messaging.set_transport_defaults(declared.EXCHANGE)
    # The global CONF, as real services use: oslo.messaging 18.x registers its
    # tracing and metrics options only there.
    conf = cfg.CONF
    conf([], project="busdoc-oslo-test")
    return conf


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_traffic(url: str, seed: int = 20261124) -> dict[str, Any]:
    """Start the service, send the PLAN, wait until everything arrived, stop.

    Returns what was sent (calls with their args, results, raised errors, and
    notifications), for the manifest.
    """
    conf = _conf()
    gen = Generator(seed)
    received = Received()
    known: set[str] = set()
    transport = messaging.get_rpc_transport(conf, url=url)
    ntransport = messaging.get_notification_transport(conf, url=url)
    target = messaging.Target(topic=declared.TOPIC, exchange=declared.EXCHANGE, version="1.0")
    servers = [
        messaging.get_rpc_server(
            transport,
            messaging.Target(topic=declared.TOPIC, server=name, exchange=declared.EXCHANGE),
            [ComputeEndpoint(name, received, known)],
            executor="threading",
        )
        for name in SERVERS
    ]
    listener = messaging.get_notification_listener(
        ntransport,
        [messaging.Target(topic=declared.NOTIFICATION_TOPIC)],
        [NotificationEndpoint(received)],
        executor="threading",
    )
    for server in servers:
        server.start()
    listener.start()
    client = messaging.get_rpc_client(transport, target, version_cap="1.1")
    notifier = messaging.Notifier(ntransport, publisher_id="compute.host-a",
                                  driver="messagingv2",
                                  topics=[declared.NOTIFICATION_TOPIC])
    sent: list[dict[str, Any]] = []

    def ctxt() -> dict[str, Any]:
        return {
            "auth_token": AUTH_TOKEN,
            "user_id": "c0ffee00c0ffee00c0ffee00c0ffee00",
            "project_id": "5a1ad0005a1ad0005a1ad0005a1ad000",
            "request_id": f"req-{gen.uuid()}",
            "is_admin": False,
            "roles": ["member", "reader"],
            "timestamp": gen.py_str(),
        }

    def record(kind: str, method: str, version: str, args: dict[str, Any],
               **more: Any) -> None:
        sent.append({"kind": kind, "method": method, "version": version, "args": args,
                     **more})

    try:
        for i in range(PLAN["ping"]):
            args: dict[str, Any] = {"payload": f"ping-{i}-{gen.rng.randint(0, 9999)}"}
            result = client.call(ctxt(), "ping", **args)
            record("call", "ping", "1.0", args, result=result)
        n = 0
        for version, obj_version in (("1.0", "2.7"), ("1.1", "2.8")):
            cctx = client.prepare(version=version) if version != "1.0" else client
            for _ in range(PLAN[f"build_instance@{version}"]):
                uuid_ = gen.uuid()
                known.add(uuid_)
                args = gen.build_args(obj_version, n, uuid_)
                n += 1
                result = cctx.call(ctxt(), "build_instance", **args)
                record("call", "build_instance", version, args, result=result)
        instances = sorted(known)
        for i in range(PLAN["get_console_url"]):
            args = {"instance_uuid": instances[i],
                    "console_type": declared.CONSOLE_TYPES[i % len(declared.CONSOLE_TYPES)]}
            result = client.call(ctxt(), "get_console_url", **args)
            record("call", "get_console_url", "1.0", args, result=result)
        for i in range(PLAN["set_cell_mapping"]):
            args = {"cell_uuid": gen.uuid(), "transport_url": CELL_TRANSPORT_URL,
                    "disabled": bool(i % 2)}
            result = client.call(ctxt(), "set_cell_mapping", **args)
            record("call", "set_cell_mapping", "1.0", args, result=result)
        for i in range(PLAN["delete_instance.ok"] + PLAN["delete_instance.raises"]):
            target_uuid = instances[-1] if i == 0 else gen.uuid()
            args = {"instance_uuid": target_uuid}
            try:
                result = client.call(ctxt(), "delete_instance", **args)
                record("call", "delete_instance", "1.0", args, result=result)
            except messaging.RemoteError as exc:
                record("call", "delete_instance", "1.0", args, raised=exc.exc_type)
        for i in range(PLAN["reboot_instance"]):
            args = {"instance_uuid": instances[i % len(instances)],
                    "reboot_type": declared.REBOOT_TYPES[i % 2]}
            client.cast(ctxt(), "reboot_instance", **args)
            record("cast", "reboot_instance", "1.0", args)
        fanout = client.prepare(fanout=True)
        for i in range(PLAN["refresh_cache"]):
            args = {"updated_at": gen.iso_z(), "generation": i + 1,
                    "ratio": round(gen.rng.random(), 6)}
            fanout.cast(ctxt(), "refresh_cache", **args)
            record("fanout", "refresh_cache", "1.0", args)
        events = [
            ("info", "compute.instance.create.end"),
            ("info", "compute.instance.update"),
            ("info", "compute.instance.create.end"),
            ("info", "compute.instance.delete.end"),
            ("error", "compute.instance.create.error"),
            ("error", "compute.instance.create.error"),
        ]
        for k, (priority, event_type) in enumerate(events):
            payload = _payload(gen, event_type, instances[k % len(instances)], k)
            getattr(notifier, priority)(ctxt(), event_type, payload)
            sent.append({"kind": "notification", "priority": priority.upper(),
                         "event_type": event_type, "payload": payload})
        _wait(lambda: received.count("reboot_instance") == PLAN["reboot_instance"],
              "casts")
        _wait(lambda: received.count("refresh_cache") == PLAN["refresh_cache"] * len(SERVERS),
              "fanout casts")
        _wait(lambda: len(received.notifications) == len(events), "notifications")
    finally:
        listener.stop()
        for server in servers:
            server.stop()
        listener.wait()
        for server in servers:
            server.wait()
        transport.cleanup()
        ntransport.cleanup()
    return {"sent": sent, "received_calls": received.calls,
            "received_notifications": received.notifications}


def _payload(gen: Generator, event_type: str, instance: str, k: int) -> dict[str, Any]:
    if event_type == "compute.instance.create.end":
        return {"instance_id": instance, "state": declared.VM_STATES[k % 4],
                "memory_mb": 2048, "launched_at": gen.py_str()}
    if event_type == "compute.instance.update":
        return {"instance_id": instance, "old_state": "building", "state": "active"}
    if event_type == "compute.instance.delete.end":
        return {"instance_id": instance, "deleted_at": gen.iso_z()}
    return {"instance_id": instance, "code": 500,
            "message": "No valid host was found.",
            "exception": None if k % 2 else "NoValidHost"}
