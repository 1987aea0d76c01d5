"""Build oslo.messaging-shaped ``StoredMessage`` records for inference tests.

Bodies follow what oslo.messaging's rabbit driver really sends: the 2.0 envelope around
a JSON string, ``_context_*`` keys, ``_msg_id``/``_reply_q``/``_unique_id``/``_timeout`` on
calls, ``result``/``failure``/``ending`` replies, notifications with ``timestamp`` in oslo's
``%Y-%m-%d %H:%M:%S.%f`` form.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from busdoc.storage.records import Redaction, StoredMessage, StoredObservation

_ids = itertools.count(1)
CONTEXT = {
    "_context_user_id": "2b1c3d4e5f60718293a4b5c6d7e8f901",
    "_context_project_id": "8f7e6d5c4b3a29180716253443526170",
    "_context_request_id": "req-5d8c0a7e-6a8b-4a8e-9d0b-1a2b3c4d5e6f",
    "_context_is_admin": False,
    "_context_roles": ["member", "reader"],
    "_context_auth_token": None,
    "_context_timestamp": "2026-11-24T20:10:06.218414",
}


def envelope(inner: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(inner).decode()})


def stored(
    body: bytes,
    *,
    exchange: str,
    routing_key: str,
    time: float = 1_764_000_000.0,
    sender: str | None = "nova-conductor",
    receiver: str | None = None,
    queue: str | None = None,
    properties: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    redactions: Sequence[Redaction] = (),
    truncated: bool = False,
) -> StoredMessage:
    observations = []
    if sender is not None:
        observations.append(StoredObservation(time=time, kind="publish", connection="c1",
                                              channel=1, queue=None, redelivered=False,
                                              connection_name=sender))
    if receiver is not None:
        observations.append(StoredObservation(time=time, kind="deliver", connection="c2",
                                              channel=1, queue=queue, redelivered=False,
                                              connection_name=receiver))
    return StoredMessage(
        id=next(_ids), vhost="/", exchange=exchange, routing_key=routing_key,
        properties=properties if properties is not None
        else {"content_type": "application/json", "content_encoding": "utf-8"},
        headers=headers, body=body, body_size=len(body), body_sha256="0" * 64,
        truncated=truncated, redactions=list(redactions), observations=observations,
        first_seen=time,
    )


def call(method: str, args: Mapping[str, Any], *, topic: str = "compute", server: str | None = None,
         exchange: str = "nova", version: str | None = "6.0", namespace: str | None = None,
         msg_id: str | None = None, time: float = 1_764_000_000.0, cast: bool = False,
         context: Mapping[str, Any] = CONTEXT, **kw: Any) -> tuple[StoredMessage, str]:
    """An rpc call (or cast) and its ``_msg_id``."""
    msg_id = msg_id or uuid.uuid4().hex
    inner: dict[str, Any] = {"method": method, "args": dict(args), "version": version}
    if namespace is not None:
        inner["namespace"] = namespace
    inner.update(context)
    inner["_unique_id"] = uuid.uuid4().hex
    if not cast:
        inner.update({"_msg_id": msg_id, "_reply_q": "reply_" + uuid.uuid4().hex,
                      "_timeout": None})
    rk = topic if server is None else f"{topic}.{server}"
    return stored(envelope(inner), exchange=exchange, routing_key=rk, time=time, **kw), msg_id


def fanout(method: str, args: Mapping[str, Any], *, topic: str = "compute",
           version: str | None = "6.0", time: float = 1_764_000_000.0) -> StoredMessage:
    inner = {"method": method, "args": dict(args), "version": version, **CONTEXT,
             "_unique_id": uuid.uuid4().hex}
    return stored(envelope(inner), exchange=f"{topic}_fanout", routing_key="", time=time)


def reply(msg_id: str, result: Any = None, *, failure: Any = None, ending: bool = True,
          time: float = 1_764_000_000.05) -> StoredMessage:
    inner = {"result": result, "failure": failure, "ending": ending, "_msg_id": msg_id,
             "_unique_id": uuid.uuid4().hex}
    return stored(envelope(inner), exchange="", routing_key="reply_" + uuid.uuid4().hex,
                  time=time, sender="nova-compute")


def failure_json(cls: str, module: str, message: str) -> str:
    return orjson.dumps({"class": cls, "module": module, "message": message,
                         "tb": ["Traceback (most recent call last):\n", "..."], "args": [message],
                         "kwargs": {}}).decode()


def notification(event_type: str, payload: Any, *, priority: str = "INFO",
                 publisher_id: str = "compute.host1", exchange: str = "nova",
                 topic: str = "notifications", time: float = 1_764_000_000.0) -> StoredMessage:
    inner = {"message_id": str(uuid.uuid4()), "publisher_id": publisher_id,
             "event_type": event_type, "priority": priority, "payload": payload,
             "timestamp": "2026-11-24 20:10:06.218414", **CONTEXT}
    return stored(envelope(inner), exchange=exchange,
                  routing_key=f"{topic}.{priority.lower()}", time=time, sender="nova-compute")


def versioned(name: str, version: str, data: Mapping[str, Any], *, changes: Sequence[str] = (),
              prefix: str = "nova", namespace: str = "nova") -> dict[str, Any]:
    obj = {f"{prefix}_object.name": name, f"{prefix}_object.namespace": namespace,
           f"{prefix}_object.version": version, f"{prefix}_object.data": dict(data)}
    if changes:
        obj[f"{prefix}_object.changes"] = list(changes)
    return obj
