"""Declared argument shapes of the test service, as plain data.

The inference tests compare what busdoc infers from ``oslo_rpc.pcap`` with this table;
``make_captures.py`` also copies it into ``oslo_rpc.json`` under ``"declared"``.

Path syntax, relative to the RPC ``args`` object of one method:

* ``instance`` is a top-level argument; ``instance.nova_object.data.uuid`` walks into
  objects. Versioned-object keys hold a dot themselves (``nova_object.data``), so a
  path's parent is the longest declared path it extends, not what precedes its last
  dot;
* ``requested_networks[]`` is every item of an array;
* ``metadata.*`` is every value of a map whose keys are data (``"map_keys"`` says what
  the keys look like), not field names.

Per path: ``types`` (JSON types seen, ``"integer"`` distinct from ``"number"``),
``required`` (present in every call of that method; an optional argument is omitted in
some calls), ``nullable`` (``null`` appears in some calls), and when they apply ``enum``,
``format`` (``"uuid"`` or ``"date-time"``), ``form`` for date-times (``"iso8601_z"`` is
``2026-11-24T20:10:06Z``, ``"python_str"`` is ``2026-11-24 20:10:06.218414``), and
``map_keys``. ``required`` of a nested path is relative to its parent being present.

Versioned objects are oslo.versionedobjects primitives, namespace ``nova``: the
``Instance`` object is sent at 2.7 by version 1.0 of ``build_instance`` and at 2.8
(adds ``locked_by`` and ``tags``) by version 1.1.
"""

from __future__ import annotations

from typing import Any

TOPIC = "compute"
EXCHANGE = "nova"
NOTIFICATION_TOPIC = "notifications"
OBJECT_NAMESPACE = "nova"

VM_STATES = ["active", "building", "stopped", "error"]
LOCKED_BY = ["owner", "admin"]
CONSOLE_TYPES = ["novnc", "spice-html5", "serial"]
REBOOT_TYPES = ["SOFT", "HARD"]


def _p(
    types: list[str],
    *,
    required: bool = True,
    nullable: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"types": types, "required": required, "nullable": nullable}
    spec.update(extra)
    return spec


def _instance_paths(prefix: str, version: str) -> dict[str, dict[str, Any]]:
    """The Instance primitive at ``version`` ("2.7" or "2.8")."""
    ns = OBJECT_NAMESPACE
    data = f"{prefix}.{ns}_object.data"
    paths = {
        prefix: _p(["object"], versioned_object={"name": "Instance", "version": version}),
        f"{prefix}.{ns}_object.name": _p(["string"], enum=["Instance"]),
        f"{prefix}.{ns}_object.namespace": _p(["string"], enum=[ns]),
        f"{prefix}.{ns}_object.version": _p(["string"], enum=[version]),
        f"{prefix}.{ns}_object.changes": _p(["array"]),
        f"{prefix}.{ns}_object.changes[]": _p(["string"]),
        f"{prefix}.{ns}_object.data": _p(["object"]),
        f"{data}.uuid": _p(["string"], format="uuid"),
        f"{data}.hostname": _p(["string"]),
        f"{data}.vm_state": _p(["string"], enum=VM_STATES),
        f"{data}.memory_mb": _p(["integer"]),
        f"{data}.vcpus": _p(["integer"]),
        f"{data}.created_at": _p(["string"], format="date-time", form="iso8601_z"),
        f"{data}.launched_at": _p(
            ["string"], nullable=True, format="date-time", form="iso8601_z"
        ),
        f"{data}.metadata": _p(["object"], map_keys="uuid"),
        f"{data}.metadata.*": _p(["string"]),
    }
    if version == "2.8":
        paths[f"{data}.locked_by"] = _p(["string"], nullable=True, enum=LOCKED_BY)
        paths[f"{data}.tags"] = _p(["array"])
        paths[f"{data}.tags[]"] = _p(["string"])
    return paths


def _build_instance(version: str, object_version: str) -> dict[str, Any]:
    return {
        "kind": "call",
        "version": version,
        "args": {
            **_instance_paths("instance", object_version),
            "admin_password": _p(["string"], secret=True),
            "requested_networks": _p(["array"]),
            "requested_networks[]": _p(["object"]),
            "requested_networks[].network_id": _p(["string"], format="uuid"),
            "requested_networks[].fixed_ip": _p(["string"], nullable=True),
            "requested_networks[].port_id": _p(["string"], required=False, format="uuid"),
            "scheduled_at": _p(["string"], format="date-time", form="python_str"),
            "host": _p(["string"], required=False),
            "block_device_mapping": _p(["object"], map_keys="uuid"),
            "block_device_mapping.*": _p(["object"]),
            "block_device_mapping.*.size_gb": _p(["integer"]),
            "block_device_mapping.*.boot_index": _p(["integer"], nullable=True),
        },
    }


DECLARED: dict[str, Any] = {
    "exchange": EXCHANGE,
    "topic": TOPIC,
    "object_namespace": OBJECT_NAMESPACE,
    "context": {
        "auth_token": _p(["string"], secret=True),
        "user_id": _p(["string"]),
        "project_id": _p(["string"]),
        "request_id": _p(["string"]),
        "is_admin": _p(["boolean"]),
        "roles": _p(["array"]),
        "roles[]": _p(["string"]),
        "timestamp": _p(["string"], format="date-time", form="python_str"),
    },
    "methods": {
        # A method may be declared at several versions; each entry is one version.
        "ping": [
            {
                "kind": "call",
                "version": "1.0",
                "args": {"payload": _p(["string"])},
                "returns": _p(["string"]),
            }
        ],
        "build_instance": [
            _build_instance("1.0", "2.7"),
            _build_instance("1.1", "2.8"),
        ],
        "get_console_url": [
            {
                "kind": "call",
                "version": "1.0",
                "args": {
                    "instance_uuid": _p(["string"], format="uuid"),
                    "console_type": _p(["string"], enum=CONSOLE_TYPES),
                },
                "returns": _p(["object"]),
            }
        ],
        "set_cell_mapping": [
            {
                "kind": "call",
                "version": "1.0",
                "args": {
                    "cell_uuid": _p(["string"], format="uuid"),
                    "transport_url": _p(["string"], secret=True),
                    "disabled": _p(["boolean"]),
                },
                "returns": _p(["null"]),
            }
        ],
        "delete_instance": [
            {
                "kind": "call",
                "version": "1.0",
                "args": {"instance_uuid": _p(["string"], format="uuid")},
                "raises": ["InstanceNotFound"],
                "returns": _p(["boolean"]),
            }
        ],
        "reboot_instance": [
            {
                "kind": "cast",
                "version": "1.0",
                "args": {
                    "instance_uuid": _p(["string"], format="uuid"),
                    "reboot_type": _p(["string"], enum=REBOOT_TYPES),
                },
            }
        ],
        "refresh_cache": [
            {
                "kind": "fanout",
                "version": "1.0",
                "args": {
                    "updated_at": _p(["string"], format="date-time", form="iso8601_z"),
                    "generation": _p(["integer"]),
                    "ratio": _p(["number"]),
                },
            }
        ],
    },
    "notifications": {
        "compute.instance.create.end": {
            "priority": "INFO",
            "payload": {
                "instance_id": _p(["string"], format="uuid"),
                "state": _p(["string"], enum=VM_STATES),
                "memory_mb": _p(["integer"]),
                "launched_at": _p(["string"], format="date-time", form="python_str"),
            },
        },
        "compute.instance.delete.end": {
            "priority": "INFO",
            "payload": {
                "instance_id": _p(["string"], format="uuid"),
                "deleted_at": _p(["string"], format="date-time", form="iso8601_z"),
            },
        },
        "compute.instance.update": {
            "priority": "INFO",
            "payload": {
                "instance_id": _p(["string"], format="uuid"),
                "old_state": _p(["string"], enum=VM_STATES),
                "state": _p(["string"], enum=VM_STATES),
            },
        },
        "compute.instance.create.error": {
            "priority": "ERROR",
            "payload": {
                "instance_id": _p(["string"], format="uuid"),
                "code": _p(["integer"]),
                "message": _p(["string"]),
                "exception": _p(["string"], nullable=True),
            },
        },
    },
}
