"""Two API versions of a small oslo.messaging service, for the drift and contract fixtures.

One RPC server (``host-a``) on topic ``scheduler`` of exchange ``nova``, one notifier.
``run_contract(url, api)`` runs the server at the API named and sends a fixed plan:

``v1`` (server target 1.0)
    ``ping(payload: str)``; ``resize_instance(instance_uuid, flavor_id: int)`` at 1.0;
    ``get_console(instance_uuid, console_type: str)``; ``set_quota(project_id,
    cores: int)``; ``evacuate(host: str)`` (cast); notification
    ``scheduler.instance.resized`` with ``{instance_uuid, flavor_id: int}``.
``v2`` (server target 1.1), the changes ``CHANGES`` lists:
    ``resize_instance`` at 1.1 adds the required ``clean_shutdown: bool`` (version
    bumped); ``get_console`` omits ``console_type`` in some calls (optional now, no
    bump) and sends a console type v1 never used; ``set_quota`` sends ``cores`` as a
    string (type changed, no bump); ``evacuate`` is gone; ``list_hosts(zone: str)`` is
    new; the notification payload gains an optional ``old_flavor_id``.
``good``
    a v1 client with other values (a flavor id larger than any in v1, so validation
    has a "new value" warning to give, and nothing else).
``bad``
    a v1 client that breaks the contract: ``set_quota`` with ``cores`` as a string,
    ``resize_instance`` without ``flavor_id``, a call to a method the server lacks
    (``frobnicate``), and a ``ping`` with an extra ``verbose`` argument. The server
    answers the broken calls with failure replies; the client records them.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import oslo_messaging as messaging
from oslo_config import cfg

EXCHANGE = "nova"
TOPIC = "scheduler"
NOTIFICATION_TOPIC = "notifications"
SERVER = "host-a"
APIS = ("v1", "v2", "good", "bad")

CHANGES: dict[str, str] = {
    "resize_instance": "1.0 -> 1.1: clean_shutdown (boolean) added, required",
    "get_console": "1.0 (not bumped): console_type required -> optional",
    "set_quota": "1.0 (not bumped): cores integer -> string",
    "evacuate": "removed",
    "list_hosts": "added",
    "scheduler.instance.resized": "payload: old_flavor_id added, optional",
}
"""What v2 changes relative to v1, for the tests and the manifest."""


class SchedulerEndpoint:
    """Accepts both API versions: v2 arguments are optional here so one class serves."""

    def __init__(self, version: str) -> None:
        self.target = messaging.Target(version=version)
        self.calls: list[str] = []

    def ping(self, ctxt: dict[str, Any], payload: str) -> str:
        self.calls.append("ping")
        return payload

    def resize_instance(self, ctxt: dict[str, Any], instance_uuid: str, flavor_id: int,
                        clean_shutdown: bool = True) -> dict[str, Any]:
        self.calls.append("resize_instance")
        return {"instance_uuid": instance_uuid, "flavor_id": flavor_id}

    def get_console(self, ctxt: dict[str, Any], instance_uuid: str,
                    console_type: str = "novnc") -> str:
        self.calls.append("get_console")
        return f"http://console.example:6080/{console_type}?token={instance_uuid}"

    def set_quota(self, ctxt: dict[str, Any], project_id: str, cores: Any) -> None:
        self.calls.append("set_quota")

    def evacuate(self, ctxt: dict[str, Any], host: str) -> None:
        self.calls.append("evacuate")

    def list_hosts(self, ctxt: dict[str, Any], zone: str) -> list[str]:
        self.calls.append("list_hosts")
        return [f"{zone}-host-{i}" for i in range(2)]


def _conf() -> cfg.ConfigOpts:
    messaging.set_transport_defaults(EXCHANGE)
    conf = cfg.CONF  # oslo.messaging 18.x registers tracing options only on the global one
    conf([], project="busdoc-contract-test")
    return conf


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_contract(url: str, api: str, seed: int = 20261125) -> dict[str, Any]:
    """Serve and call the API named (``APIS``); return what was sent, for the manifest."""
    if api not in APIS:
        raise ValueError(f"unknown api {api!r}")
    conf = _conf()
    rng = random.Random(f"{seed}-{api}")

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    server_version = "1.1" if api == "v2" else "1.0"
    endpoint = SchedulerEndpoint(server_version)
    transport = messaging.get_rpc_transport(conf, url=url)
    ntransport = messaging.get_notification_transport(conf, url=url)
    server = messaging.get_rpc_server(
        transport, messaging.Target(topic=TOPIC, server=SERVER, exchange=EXCHANGE),
        [endpoint], executor="threading")
    server.start()
    client = messaging.get_rpc_client(
        transport, messaging.Target(topic=TOPIC, exchange=EXCHANGE, version="1.0"),
        version_cap=server_version)
    notifier = messaging.Notifier(ntransport, publisher_id=f"scheduler.{SERVER}",
                                  driver="messagingv2", topics=[NOTIFICATION_TOPIC])
    sent: list[dict[str, Any]] = []

    def ctxt() -> dict[str, Any]:
        return {"user_id": "c0ffee00c0ffee00c0ffee00c0ffee00",
                "project_id": "5a1ad0005a1ad0005a1ad0005a1ad000",
                "request_id": f"req-{uid()}", "is_admin": False}

    def call(method: str, version: str = "1.0", **args: Any) -> None:
        cctx = client.prepare(version=version) if version != "1.0" else client
        entry: dict[str, Any] = {"kind": "call", "method": method, "version": version,
                                 "args": args}
        try:
            entry["result"] = cctx.call(ctxt(), method, **args)
        except Exception as exc:  # noqa: BLE001 - builtins come back as themselves
            entry["raised"] = getattr(exc, "exc_type", None) or type(exc).__name__
        sent.append(entry)

    def cast(method: str, **args: Any) -> None:
        client.cast(ctxt(), method, **args)
        sent.append({"kind": "cast", "method": method, "version": "1.0", "args": args})

    def notify(payload: dict[str, Any]) -> None:
        notifier.info(ctxt(), "scheduler.instance.resized", payload)
        sent.append({"kind": "notification", "event_type": "scheduler.instance.resized",
                     "payload": payload})

    flavors = [1, 2, 3] if api != "good" else [2, 42]
    consoles = ["novnc", "spice-html5"]
    try:
        for i in range(2):
            call("ping", payload=f"ping-{api}-{i}")
        if api == "bad":
            call("ping", payload="ping-bad", verbose=True)
            call("set_quota", project_id=uid(), cores="20")
            call("resize_instance", instance_uuid=uid())
            call("frobnicate", instance_uuid=uid())
            call("get_console", instance_uuid=uid(), console_type="novnc")
        else:
            for i, flavor in enumerate(flavors):
                if api == "v2":
                    call("resize_instance", "1.1", instance_uuid=uid(), flavor_id=flavor,
                         clean_shutdown=bool(i % 2))
                else:
                    call("resize_instance", instance_uuid=uid(), flavor_id=flavor)
            for i in range(3):
                if api == "v2" and i == 1:
                    call("get_console", instance_uuid=uid())
                elif api == "v2" and i == 2:
                    call("get_console", instance_uuid=uid(), console_type="serial")
                else:
                    call("get_console", instance_uuid=uid(),
                         console_type=consoles[i % len(consoles)])
            for cores in (8, 16):
                call("set_quota", project_id=uid(),
                     cores=str(cores) if api == "v2" else cores)
            if api == "v2":
                call("list_hosts", "1.1", zone="nova")
            else:
                cast("evacuate", host="host-b")
            for flavor in flavors[:2]:
                payload: dict[str, Any] = {"instance_uuid": uid(), "flavor_id": flavor}
                if api == "v2" and flavor == flavors[0]:
                    payload["old_flavor_id"] = flavor + 1
                notify(payload)
        if api not in ("v2", "bad"):
            _wait(lambda: "evacuate" in endpoint.calls, "the evacuate cast")
    finally:
        server.stop()
        server.wait()
        transport.cleanup()
        ntransport.cleanup()
    return {"sent": sent, "received_calls": list(endpoint.calls)}
