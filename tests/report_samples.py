"""Catalogs for the report tests: a small oslo service built from real-shaped bodies, and
the catalog of a committed capture imported into a fresh store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from busdoc.inference.catalog import build_catalog
from busdoc.inference.incremental import update_catalog
from busdoc.inference.testing import (
    call,
    failure_json,
    fanout,
    notification,
    reply,
    versioned,
)
from busdoc.storage import open_store
from busdoc.storage.ingest import import_captures
from busdoc.storage.redact import Redactor

CAPTURES = Path(__file__).parent / "captures"
GOLDEN = Path(__file__).parent / "golden"


def volume(version: str, i: int, status: str, attached: str | None) -> dict[str, Any]:
    return versioned("Volume", version, {
        "id": f"6f1c0a52-0d2e-4c1b-9a7e-3b0d4c5e6f{i:02d}",
        "status": status,
        "size": 10 + i,
        "attached_at": attached,
        "metadata": {f"k{i}": "v"},
    })


def oslo_catalog() -> dict[str, Any]:
    """Every shape the reports must handle: versions with changes, objects in objects,
    enums that differ between object versions, nullable enums, oslo timestamps without
    a zone next to RFC 3339 ones, maps, failures, casts, fanouts and notifications."""
    messages = []
    statuses = ["available", "in-use", "available", "in-use", "available", "in-use"]
    for i, status in enumerate(statuses):
        m, msg_id = call("attach_volume", {
            "volume": volume("1.0", i, status, None if i % 2 else "2026-11-24T20:10:06Z"),
            "mountpoint": "/dev/vdb",
            "requested_at": f"2026-11-24 20:10:0{i}.218414",
        }, version="1.0", time=1_764_000_000.0 + i)
        messages += [m, reply(msg_id, {"device": "/dev/vdb", "state": "attached"},
                              time=1_764_000_000.02 + i)]
    for i, status in enumerate(statuses + ["error", "error", "error"]):
        mode = ["ro", "rw", None][i % 3]
        m, msg_id = call("attach_volume", {
            "volume": volume("1.1", i, status, "2026-11-24T20:10:06Z"),
            "mountpoint": "/dev/vdb", "mode": mode,
            "requested_at": f"2026-11-24 20:10:0{i}.218414",
        }, version="1.1", time=1_764_000_100.0 + i)
        result = volume("1.1", i, status, None)
        messages += [m, reply(msg_id, result, time=1_764_000_100.03 + i)]
    for i in range(3):
        volume_id = f"6f1c0a52-0d2e-4c1b-9a7e-3b0d4c5e6f{i:02d}"
        m, msg_id = call("detach_volume", {"volume_id": volume_id}, version="1.0",
                         time=1_764_000_200.0 + i)
        failure = failure_json("VolumeNotFound", "cinder.exception",
                               f"Volume {i} could not be found.") if i else None
        messages += [m, reply(msg_id, None if i else True, failure=failure,
                              time=1_764_000_200.01 + i)]
    for i in range(2):
        m, _ = call("reboot", {"hard": bool(i)}, cast=True, server="host-a", version="1.0",
                    time=1_764_000_300.0 + i)
        messages.append(m)
    messages.append(fanout("refresh_cache", {"keys": ["a", "b"]}, version="1.0",
                           time=1_764_000_400.0))
    for i in range(3):
        messages.append(notification("volume.attach.end", {"volume_id": "6f1c0a52-0d2e-4c1b-"
                                     f"9a7e-3b0d4c5e6f{i:02d}", "host": "host-a"},
                                     time=1_764_000_500.0 + i))
    return build_catalog(messages).to_json()


def capture_catalog(capture: Path, tmp: Path) -> dict[str, Any]:
    """A committed capture → a fresh SQLite store → incremental inference → catalog dict."""
    store = open_store(str(tmp / "golden.db"))
    import_captures(store, [str(capture)], redactor=Redactor())
    catalog = update_catalog(store).to_json()
    # through JSON and back: what the CLI reads from the store has exactly these types
    result: dict[str, Any] = json.loads(json.dumps(catalog))
    return result
