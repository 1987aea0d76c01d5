"""Record what the py-amqp library (under kombu, under oslo.messaging) really sent and
received, so a capture's ground truth comes from the client, not from a decoder.

Patching the library at its AMQP method boundary sees every basic.publish,
basic.deliver, basic.get-ok and basic.return with the exact body bytes, and every
connection's local port (used to cut other programs' traffic out of the capture).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import amqp.channel
import amqp.connection


def _body_bytes(msg: Any) -> bytes:
    body = msg.body
    if isinstance(body, str):
        return body.encode(msg.properties.get("content_encoding") or "utf-8")
    return bytes(body)


def _split_properties(msg: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    props = dict(msg.properties)
    headers = props.pop("application_headers", None)
    return props, headers


@dataclass
class TapEvent:
    """One message event as the client library saw it."""

    time: float
    kind: str  # publish, deliver, get_ok, return
    connection: str
    channel: int
    exchange: str
    routing_key: str
    properties: dict[str, Any]
    headers: dict[str, Any] | None
    body: bytes
    vhost: str
    queue: str | None = None
    consumer_tag: str | None = None
    delivery_tag: int | None = None
    redelivered: bool = False
    mandatory: bool = False
    reply_code: int | None = None
    reply_text: str | None = None


@dataclass
class TapConnection:
    connection: str
    local_port: int
    vhost: str
    user: str | None
    client_properties: dict[str, Any]


@dataclass
class Tap:
    events: list[TapEvent] = field(default_factory=list)
    connections: list[TapConnection] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _queues: dict[tuple[str, int, str], str] = field(default_factory=dict)
    _saved: dict[str, Any] = field(default_factory=dict)

    def _add(self, event: TapEvent) -> None:
        with self._lock:
            self.events.append(event)

    def install(self) -> None:
        """Patch py-amqp; channels created afterwards report to this tap."""
        tap = self
        chan = amqp.channel.Channel
        conn = amqp.connection.Connection
        self._saved = {
            "publish": chan._basic_publish,
            "deliver": chan._on_basic_deliver,
            "get_ok": chan._on_get_ok,
            "return": chan._on_basic_return,
            "consume": chan.basic_consume,
            "connect": conn.connect,
        }
        saved = self._saved

        def key(channel: Any) -> str:
            return getattr(channel.connection, "_busdoc_key", "?")

        def publish(self: Any, msg: Any, exchange: str = "", routing_key: str = "",
                    mandatory: bool = False, *args: Any, **kwargs: Any) -> Any:
            # Stamp before sending: a consumer thread may see the delivery before
            # this call returns, and the manifest orders events by time.
            sent_at = time.time()
            result = saved["publish"](self, msg, exchange, routing_key, mandatory,
                                      *args, **kwargs)
            props, headers = _split_properties(msg)
            tap._add(TapEvent(
                time=sent_at, kind="publish", connection=key(self),
                channel=self.channel_id, exchange=exchange, routing_key=routing_key,
                properties=props, headers=headers, body=_body_bytes(msg),
                vhost=self.connection.virtual_host, mandatory=bool(mandatory),
            ))
            return result

        def deliver(self: Any, consumer_tag: str, delivery_tag: int, redelivered: bool,
                    exchange: str, routing_key: str, msg: Any) -> Any:
            props, headers = _split_properties(msg)
            tap._add(TapEvent(
                time=time.time(), kind="deliver", connection=key(self),
                channel=self.channel_id, exchange=exchange, routing_key=routing_key,
                properties=props, headers=headers, body=_body_bytes(msg),
                vhost=self.connection.virtual_host,
                queue=tap._queues.get((key(self), self.channel_id, consumer_tag)),
                consumer_tag=consumer_tag, delivery_tag=delivery_tag,
                redelivered=bool(redelivered),
            ))
            return saved["deliver"](self, consumer_tag, delivery_tag, redelivered,
                                    exchange, routing_key, msg)

        def get_ok(self: Any, delivery_tag: int, redelivered: bool, exchange: str,
                   routing_key: str, message_count: int, msg: Any) -> Any:
            props, headers = _split_properties(msg)
            tap._add(TapEvent(
                time=time.time(), kind="get_ok", connection=key(self),
                channel=self.channel_id, exchange=exchange, routing_key=routing_key,
                properties=props, headers=headers, body=_body_bytes(msg),
                vhost=self.connection.virtual_host, delivery_tag=delivery_tag,
                redelivered=bool(redelivered),
            ))
            return saved["get_ok"](self, delivery_tag, redelivered, exchange,
                                   routing_key, message_count, msg)

        def on_return(self: Any, reply_code: int, reply_text: str, exchange: str,
                      routing_key: str, message: Any) -> Any:
            props, headers = _split_properties(message)
            tap._add(TapEvent(
                time=time.time(), kind="return", connection=key(self),
                channel=self.channel_id, exchange=exchange, routing_key=routing_key,
                properties=props, headers=headers, body=_body_bytes(message),
                vhost=self.connection.virtual_host, reply_code=reply_code,
                reply_text=reply_text,
            ))
            return saved["return"](self, reply_code, reply_text, exchange, routing_key,
                                   message)

        def consume(self: Any, queue: str = "", consumer_tag: str = "",
                    *args: Any, **kwargs: Any) -> Any:
            tag = saved["consume"](self, queue, consumer_tag, *args, **kwargs)
            with tap._lock:
                tap._queues[(key(self), self.channel_id, tag or consumer_tag)] = queue
            return tag

        def connect(self: Any, callback: Any = None) -> Any:
            result = saved["connect"](self, callback)
            sock = self.transport.sock
            local = sock.getsockname()
            peer = sock.getpeername()
            name = f"{local[0]}:{local[1]}->{peer[0]}:{peer[1]}"
            self._busdoc_key = name
            with tap._lock:
                if all(c.connection != name for c in tap.connections):
                    tap.connections.append(TapConnection(
                        connection=name, local_port=local[1], vhost=self.virtual_host,
                        user=getattr(self, "_busdoc_user", None),
                        client_properties=dict(self.client_properties),
                    ))
            return result

        chan._basic_publish = publish
        chan.basic_publish = publish
        chan._on_basic_deliver = deliver
        chan._on_get_ok = get_ok
        chan._on_basic_return = on_return
        chan.basic_consume = consume
        conn.connect = connect

    def uninstall(self) -> None:
        chan = amqp.channel.Channel
        conn = amqp.connection.Connection
        chan._basic_publish = self._saved["publish"]
        chan.basic_publish = self._saved["publish"]
        chan._on_basic_deliver = self._saved["deliver"]
        chan._on_get_ok = self._saved["get_ok"]
        chan._on_basic_return = self._saved["return"]
        chan.basic_consume = self._saved["consume"]
        conn.connect = self._saved["connect"]
