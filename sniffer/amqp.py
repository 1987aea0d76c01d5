"""Sans-IO AMQP 0-9-1 decoder: bytes of one TCP connection in, typed records out.

Theory of operation
-------------------
``FrameDecoder`` handles one direction of one connection. ``feed(data)`` buffers the
bytes and returns every frame that is now complete; a frame split anywhere (even inside
its 7-byte header) means "wait for more", so feeding a stream whole or one byte at a time
gives the same frames. A frame is ``type(1) channel(2) size(4) payload(size) 0xCE``
(AMQP 0-9-1 §4.2.3); it validates when the type is one of 1, 2, 3, 8, the size is within
``frame_max`` (once Tune-Ok told us) or a sane cap, and the frame-end octet is 0xCE.

A stream begins with the protocol header ``AMQP\\x00\\x00\\x09\\x01`` (client side) or
with a frame (server side). Other ``AMQP....`` headers (0-8, 1.0) are reported, not
decoded; a TLS record (``0x16 0x03``) at the start marks the whole direction as
undecodable.

Resynchronisation: a capture that starts mid-connection, or a TCP gap, leaves the decoder
in the middle of a frame. It then scans forward for an offset where a frame validates
*and* is followed by another plausible frame header (or by the end of the buffer), checks
stricter than in-sync decoding (known method id, class 60 content header, heartbeat on
channel 0), and counts the bytes it skipped. It never emits a frame it did not validate.

Strict decoders (the default) raise ``FrameError`` with the channel and stream offset of
a frame that does not validate. Recovering decoders (``recover=True``, what
``AmqpConnection`` uses) emit a ``Desync`` event instead and start scanning.

``AmqpConnection`` owns the two directions of one connection and turns frames into the
sniffer's records: the handshake into ``ConnectionInfo``, each basic.publish /
basic.deliver / basic.get-ok / basic.return with its content header and body frames into
an ``Observation``, and anything odd into a ``Notice``.

Only the hot path is decoded by hand with ``struct`` (frame split, the arguments of the
four content-carrying methods and basic.ack, the content header, field tables); rare
methods go through ``pika.spec`` (measured: pika's frame decoder 214k frames/s, the hand
decoder 615k frames/s). Field tables are hand-decoded too because pika's decoder turns
floats into integers.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from struct import Struct
from struct import error as StructError
from types import MappingProxyType
from typing import Any

import pika.exceptions
import pika.spec

from busdoc.errors import FrameError
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation, Record

__all__ = [
    "BodyFrame",
    "Desync",
    "Frame",
    "FrameDecoder",
    "HeaderFrame",
    "Heartbeat",
    "MethodFrame",
    "ProtocolHeader",
    "Resync",
    "TlsDetected",
    "AmqpConnection",
    "PROTOCOL_HEADER",
    "decode_properties",
    "decode_table",
]

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"

DEFAULT_FRAME_LIMIT = 1 << 26
"""Largest frame accepted in sync before Tune-Ok is seen (RabbitMQ's own default is 128 KiB)."""
SCAN_FRAME_LIMIT = 1 << 20
"""Largest frame a resynchronising scan will wait for when frame_max is unknown: a false
candidate can make the scan buffer at most this much before it is rejected."""

_FRAME_HEADER = Struct(">BHI")
_U16 = Struct(">H")
_U16U16 = Struct(">HH")
_U64 = Struct(">Q")
_U32 = Struct(">I")
_FRAME_TYPES = frozenset((FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT))

_BASIC = 60
_CONNECTION = 10


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodFrame:
    channel: int
    class_id: int
    method_id: int
    name: str
    """``"Basic.Publish"``: pika's ``NAME`` of the method."""
    arguments: Mapping[str, Any]
    """Method fields by pika's attribute names; secrets (SASL responses) are never kept."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderFrame:
    channel: int
    body_size: int
    properties: Mapping[str, Any]
    """Present basic properties by pika's snake-case names, headers excluded."""
    headers: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyFrame:
    channel: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    channel: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolHeader:
    """The 8-byte protocol header a client sends first (AMQP 0-9-1 §4.2.2)."""

    version: bytes
    """The four bytes after ``AMQP``: ``b"\\x00\\x00\\x09\\x01"`` for 0-9-1."""

    @property
    def supported(self) -> bool:
        return self.version == PROTOCOL_HEADER[4:]


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsDetected:
    """The direction starts with a TLS record; the decoder ignores the rest of it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Desync:
    """A frame failed validation at ``offset``; the decoder is now scanning for the next."""

    offset: int
    channel: int | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Resync:
    """The scan found a frame boundary at ``offset`` after skipping ``skipped`` bytes."""

    offset: int
    skipped: int


Frame = MethodFrame | HeaderFrame | BodyFrame | Heartbeat
Event = Frame | ProtocolHeader | TlsDetected | Desync | Resync


# --------------------------------------------------------------------------- field decoding


def _shortstr(buf: bytes, off: int) -> tuple[str | bytes, int]:
    """A shortstr as pika decodes it: UTF-8 text, or the raw bytes when not UTF-8."""
    n = buf[off]
    off += 1
    raw = buf[off : off + n]
    if len(raw) != n:
        raise StructError("short string runs past the frame")
    try:
        return raw.decode(), off + n
    except UnicodeDecodeError:
        return raw, off + n


_I8 = Struct(">b")
_I16 = Struct(">h")
_I32 = Struct(">i")
_I64 = Struct(">q")
_F32 = Struct(">f")
_F64 = Struct(">d")
_FIXED_FIELDS: dict[int, tuple[Struct, int]] = {
    ord("b"): (_I8, 1),
    ord("B"): (Struct(">B"), 1),
    ord("s"): (_I16, 2),
    ord("U"): (_I16, 2),
    ord("u"): (_U16, 2),
    ord("I"): (_I32, 4),
    ord("i"): (_U32, 4),
    ord("l"): (_I64, 8),
    ord("L"): (_I64, 8),
    ord("f"): (_F32, 4),
    ord("d"): (_F64, 8),
}


def _field_value(buf: bytes, off: int) -> tuple[Any, int]:
    """One field value (AMQP 0-9-1 §4.2.5.5 with RabbitMQ's type letters, as pika reads them).

    Written here rather than taken from ``pika.data.decode_value`` because pika turns
    floats and doubles into integers (``long(2.5) == 2``) and returns 64-bit integers as
    its ``long`` marker subclass, which JSON encoders such as orjson refuse.
    """
    kind = buf[off]
    off += 1
    fixed = _FIXED_FIELDS.get(kind)
    if fixed is not None:
        return fixed[0].unpack_from(buf, off)[0], off + fixed[1]
    if kind == 0x53 or kind == 0x78:  # "S" long string, "x" byte array
        n = _U32.unpack_from(buf, off)[0]
        off += 4
        raw = buf[off : off + n]
        if len(raw) != n:
            raise StructError("long string runs past the frame")
        if kind == 0x53:
            try:
                return raw.decode(), off + n
            except UnicodeDecodeError:
                pass
        return raw, off + n
    if kind == 0x46:  # "F" nested table
        return decode_table(buf, off)
    if kind == 0x41:  # "A" array
        n = _U32.unpack_from(buf, off)[0]
        off += 4
        end = off + n
        items = []
        while off < end:
            value, off = _field_value(buf, off)
            items.append(value)
        return items, off
    if kind == 0x74:  # "t" boolean
        return buf[off] != 0, off + 1
    if kind == 0x44:  # "D" decimal: scale octet, then a signed 32-bit value
        scale = buf[off]
        raw_value = _I32.unpack_from(buf, off + 1)[0]
        return decimal.Decimal(raw_value).scaleb(-scale), off + 5
    if kind == 0x54:  # "T" timestamp, seconds
        seconds = _U64.unpack_from(buf, off)[0]
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC), off + 8
    if kind == 0x56:  # "V" void
        return None, off
    raise StructError(f"unknown field type {chr(kind)!r}")


def decode_table(buf: bytes, off: int) -> tuple[dict[str, Any], int]:
    """A field table at ``buf[off:]`` (4-byte size, then name/value pairs)."""
    n = _U32.unpack_from(buf, off)[0]
    off += 4
    end = off + n
    if end > len(buf):
        raise StructError("field table runs past the frame")
    table: dict[str, Any] = {}
    while off < end:
        name, off = _shortstr(buf, off)
        table[name if isinstance(name, str) else name.decode("latin-1")], off = _field_value(
            buf, off
        )
    if off != end:
        raise StructError("field table size does not match its fields")
    return table, off


_PROPERTY_SHORTSTR = 0
_PROPERTY_OCTET = 1
_PROPERTY_TABLE = 2
_PROPERTY_TIMESTAMP = 3
_PROPERTIES: tuple[tuple[int, str, int], ...] = (
    (1 << 15, "content_type", _PROPERTY_SHORTSTR),
    (1 << 14, "content_encoding", _PROPERTY_SHORTSTR),
    (1 << 13, "headers", _PROPERTY_TABLE),
    (1 << 12, "delivery_mode", _PROPERTY_OCTET),
    (1 << 11, "priority", _PROPERTY_OCTET),
    (1 << 10, "correlation_id", _PROPERTY_SHORTSTR),
    (1 << 9, "reply_to", _PROPERTY_SHORTSTR),
    (1 << 8, "expiration", _PROPERTY_SHORTSTR),
    (1 << 7, "message_id", _PROPERTY_SHORTSTR),
    (1 << 6, "timestamp", _PROPERTY_TIMESTAMP),
    (1 << 5, "type", _PROPERTY_SHORTSTR),
    (1 << 4, "user_id", _PROPERTY_SHORTSTR),
    (1 << 3, "app_id", _PROPERTY_SHORTSTR),
    (1 << 2, "cluster_id", _PROPERTY_SHORTSTR),
)


def decode_properties(buf: bytes, off: int) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """Decode basic properties (AMQP 0-9-1 §4.2.6.1) from ``buf[off:]``.

    Returns the present properties (pika's names, ``timestamp`` as int seconds) and the
    ``headers`` table (decimals, byte arrays, nested tables, arrays; see ``_field_value``).
    """
    flags = _U16.unpack_from(buf, off)[0]
    off += 2
    if flags & 1:
        # Continuation flag words exist in the grammar, but class 60 defines no more
        # properties; skip the extra words as pika does.
        while _U16.unpack_from(buf, off)[0] & 1:
            off += 2
        off += 2
    props: dict[str, Any] = {}
    headers: Mapping[str, Any] | None = None
    plan = _PLANS.get(flags)
    if plan is None:
        plan = _PLANS[flags] = tuple((n, k) for bit, n, k in _PROPERTIES if flags & bit)
    for name, kind in plan:
        if kind == _PROPERTY_SHORTSTR:
            n = buf[off]
            off += 1
            raw = buf[off : off + n]
            if len(raw) != n:
                raise StructError("short string runs past the frame")
            off += n
            try:
                props[name] = raw.decode()
            except UnicodeDecodeError:
                props[name] = raw
        elif kind == _PROPERTY_OCTET:
            props[name] = buf[off]
            off += 1
        elif kind == _PROPERTY_TIMESTAMP:
            props[name] = _U64.unpack_from(buf, off)[0]
            off += 8
        else:
            headers, off = decode_table(buf, off)
    if off > len(buf):
        raise StructError("properties run past the frame")
    return props, headers


_PLANS: dict[int, tuple[tuple[str, int], ...]] = {}
"""Property flags → the (name, kind) of each property present, in wire order."""

_SEEN_PROPERTIES: dict[bytes, tuple[dict[str, Any], bool]] = {}
_SEEN_PROPERTIES_MAX = 1024
_SEEN_PROPERTIES_KEY_MAX = 256


def _header_properties(payload: bytes) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """``decode_properties`` of a content header payload, remembered by its bytes.

    A client library sends the same few property lists over and over (kombu: content
    type, encoding, delivery mode, priority and an empty headers table), and a dict
    lookup plus a copy costs a fraction of decoding them again. Only lists without a
    non-empty headers table are kept, so a copy of the properties (str, int and bytes
    values) and a new empty table give every message its own objects, as decoding does.
    Short lists only, and a bounded number of them: memory stays small on any traffic.
    """
    key = payload[12:]
    seen = _SEEN_PROPERTIES.get(key)
    if seen is not None:
        return dict(seen[0]), ({} if seen[1] else None)
    props, headers = decode_properties(payload, 12)
    if not headers and len(key) <= _SEEN_PROPERTIES_KEY_MAX:
        if len(_SEEN_PROPERTIES) >= _SEEN_PROPERTIES_MAX:
            _SEEN_PROPERTIES.clear()
        _SEEN_PROPERTIES[key] = (dict(props), headers is not None)
    return props, headers


def _decode_publish(p: bytes) -> dict[str, Any]:
    """Basic.Publish: ticket, exchange, routing-key, mandatory/immediate bits (§1.8.3.7)."""
    e = 7 + p[6]
    r = e + 1 + p[e]
    bits = p[r]  # IndexError when the strings run past the frame
    try:
        exchange: str | bytes = p[7:e].decode()
        routing_key: str | bytes = p[e + 1 : r].decode()
    except UnicodeDecodeError:
        exchange, off = _shortstr(p, 6)
        routing_key, off = _shortstr(p, off)
    return {
        "ticket": (p[4] << 8) | p[5],
        "exchange": exchange,
        "routing_key": routing_key,
        "mandatory": bool(bits & 1),
        "immediate": bool(bits & 2),
    }


def _decode_deliver(p: bytes) -> dict[str, Any]:
    """Basic.Deliver: consumer-tag, delivery-tag, redelivered, exchange, routing-key."""
    t = 5 + p[4]
    delivery_tag = _U64.unpack_from(p, t)[0]
    e = t + 10 + p[t + 9]
    r = e + 1 + p[e]
    if r > len(p):
        raise StructError("short string runs past the frame")
    try:
        consumer_tag: str | bytes = p[5:t].decode()
        exchange: str | bytes = p[t + 10 : e].decode()
        routing_key: str | bytes = p[e + 1 : r].decode()
    except UnicodeDecodeError:
        consumer_tag, _ = _shortstr(p, 4)
        exchange, off = _shortstr(p, t + 9)
        routing_key, off = _shortstr(p, off)
    return {
        "consumer_tag": consumer_tag,
        "delivery_tag": delivery_tag,
        "redelivered": bool(p[t + 8] & 1),
        "exchange": exchange,
        "routing_key": routing_key,
    }


def _decode_get_ok(p: bytes) -> dict[str, Any]:
    delivery_tag = _U64.unpack_from(p, 4)[0]
    redelivered = bool(p[12] & 1)
    exchange, off = _shortstr(p, 13)
    routing_key, off = _shortstr(p, off)
    return {
        "delivery_tag": delivery_tag,
        "redelivered": redelivered,
        "exchange": exchange,
        "routing_key": routing_key,
        "message_count": _U32.unpack_from(p, off)[0],
    }


def _decode_return(p: bytes) -> dict[str, Any]:
    reply_code = _U16.unpack_from(p, 4)[0]
    reply_text, off = _shortstr(p, 6)
    exchange, off = _shortstr(p, off)
    routing_key, off = _shortstr(p, off)
    return {
        "reply_code": reply_code,
        "reply_text": reply_text,
        "exchange": exchange,
        "routing_key": routing_key,
    }


def _decode_ack(p: bytes) -> dict[str, Any]:
    return {"delivery_tag": _U64.unpack_from(p, 4)[0], "multiple": bool(p[12] & 1)}


def _sasl_user(mechanism: object, response: bytes) -> str | None:
    """The login in a SASL response; the password is read past, never returned.

    PLAIN is ``authzid NUL authcid NUL passwd`` (RFC 4616); RabbitMQ's AMQPLAIN is a field
    table without its length prefix holding ``LOGIN`` and ``PASSWORD``.
    """
    try:
        if mechanism == "PLAIN":
            parts = response.split(b"\x00")
            if len(parts) == 3:
                return parts[1].decode("utf-8", "replace")
        elif mechanism == "AMQPLAIN":
            table, _ = decode_table(_U32.pack(len(response)) + response, 0)
            login = table.get("LOGIN")
            if isinstance(login, bytes):
                login = login.decode("utf-8", "replace")
            return login if isinstance(login, str) else None
    except _MALFORMED:
        return None
    return None


def _decode_start_ok(p: bytes) -> dict[str, Any]:
    client_properties, off = decode_table(p, 4)
    mechanism, off = _shortstr(p, off)
    length = _U32.unpack_from(p, off)[0]
    off += 4
    response = p[off : off + length]
    off += length
    locale, off = _shortstr(p, off)
    return {
        "client_properties": client_properties,
        "mechanism": mechanism,
        "user": _sasl_user(mechanism, response),
        "locale": locale,
    }


def _decode_update_secret(p: bytes) -> dict[str, Any]:
    """Connection.UpdateSecret (RabbitMQ's OAuth 2 token refresh): the reason only.

    The new secret is a bearer token and is never kept. pika 1.3 cannot decode this
    method: its class needs constructor arguments, and its ``decode`` stores the token
    under ``mechanisms``, where dropping ``new_secret`` would miss it.
    """
    (size,) = _U32.unpack_from(p, 4)
    off = 8 + size
    length = p[off]
    reason = p[off + 1 : off + 1 + length]
    if len(reason) != length:
        raise IndexError("update-secret reason runs past the frame")
    return {"reason": reason.decode()}


def _pika_decoder(cls: type) -> Callable[[bytes], dict[str, Any]]:
    def decode(p: bytes) -> dict[str, Any]:
        return dict(vars(cls().decode(p, 4)))

    return decode


def _drop(
    decode: Callable[[bytes], dict[str, Any]], *secrets: str
) -> Callable[[bytes], dict[str, Any]]:
    def decode_without_secrets(p: bytes) -> dict[str, Any]:
        args = decode(p)
        for name in secrets:
            args.pop(name, None)
        return args

    return decode_without_secrets


_HAND_DECODERS: dict[int, Callable[[bytes], dict[str, Any]]] = {
    pika.spec.Basic.Publish.INDEX: _decode_publish,
    pika.spec.Basic.Deliver.INDEX: _decode_deliver,
    pika.spec.Basic.GetOk.INDEX: _decode_get_ok,
    pika.spec.Basic.Return.INDEX: _decode_return,
    pika.spec.Basic.Ack.INDEX: _decode_ack,
    pika.spec.Connection.StartOk.INDEX: _decode_start_ok,
    pika.spec.Connection.SecureOk.INDEX: _drop(
        _pika_decoder(pika.spec.Connection.SecureOk), "response"
    ),
    pika.spec.Connection.UpdateSecret.INDEX: _decode_update_secret,
}

_METHODS: dict[bytes, tuple[int, int, str, Callable[[bytes], dict[str, Any]]]] = {
    _U32.pack(index): (
        index >> 16,
        index & 0xFFFF,
        cls.NAME,
        _HAND_DECODERS.get(index) or _pika_decoder(cls),
    )
    for index, cls in pika.spec.methods.items()
}


# --------------------------------------------------------------------------- frame decoder

_MALFORMED = (
    StructError,
    IndexError,
    KeyError,
    ValueError,  # UnicodeDecodeError, datetime out of range
    ArithmeticError,  # OverflowError, decimal errors
    OSError,  # fromtimestamp on some platforms
    pika.exceptions.InvalidFieldTypeException,
)
"""What decoding the arguments of a well-framed but malformed frame can raise."""

_START, _SYNC, _SCAN, _DEAD = range(4)
_WAIT = -1
_REJECT = -2


class FrameDecoder:
    """Split one direction of an AMQP connection into frames (sans-IO).

    ``synced=False`` when the stream may start mid-frame (capture began mid-connection):
    the decoder scans for a frame boundary before emitting anything.

    ``raw=True`` is ``AmqpConnection``'s fast path: frames come out as plain tuples
    (``(3, channel, payload)``, ``(1, channel, name, arguments)``,
    ``(2, channel, body_size, properties, headers)``, ``(8, channel)``) instead of frame
    objects, which saves an object per frame on the hot path; other events are unchanged.
    """

    def __init__(
        self,
        *,
        frame_max: int | None = None,
        synced: bool = True,
        recover: bool = False,
        raw: bool = False,
        max_frame: int = DEFAULT_FRAME_LIMIT,
    ) -> None:
        self.max_frame = max_frame
        """Largest frame accepted while no (or a zero) frame_max was negotiated."""
        self.frame_max = frame_max
        self._raw = raw
        self.recover = recover
        self.skipped_bytes = 0
        """Bytes skipped while resynchronising (garbage, partial frames after a gap)."""
        self.frames = 0
        self._state = _START
        self._scan_after_start = not synced
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._need = 1
        self._offset = 0  # stream offset of the first buffered byte
        self._scan_from: int | None = None  # stream offset where the current scan began

    @property
    def frame_max(self) -> int | None:
        return self._frame_max

    @frame_max.setter
    def frame_max(self, value: int | None) -> None:
        """Tune-Ok's frame_max; 0 means "no limit" (§4.2.3), so keep the sane cap."""
        self._frame_max = value or None
        self._limit = value + 8 if value else self.max_frame
        self._scan_limit = value + 8 if value else SCAN_FRAME_LIMIT

    @property
    def offset(self) -> int:
        """Stream offset of the next byte not yet consumed into a frame."""
        return self._offset

    @property
    def buffered(self) -> int:
        return self._buffered

    @property
    def scanning(self) -> bool:
        return self._state == _SCAN

    def resync(self, *, drop_buffered: bool) -> int:
        """Start scanning for the next frame boundary (after a TCP gap or bad frame).

        With ``drop_buffered`` the bytes held for a partial frame are thrown away (they
        precede the gap); the count dropped is returned and added to ``skipped_bytes``.
        """
        dropped = 0
        if self._state == _DEAD:
            return 0
        if drop_buffered:
            dropped = self._buffered
            self.skipped_bytes += dropped
            self._offset += dropped
            self._chunks = []
            self._buffered = 0
        self._state = _SCAN
        self._scan_from = self._offset
        self._need = 1
        return dropped

    def stop(self) -> None:
        """Ignore the rest of this direction (TLS, another protocol version)."""
        self._state = _DEAD
        self._chunks = []
        self._buffered = 0

    def feed(self, data: bytes) -> list[Event]:
        """Buffer ``data``; return every frame (and event) it completes."""
        if self._state == _DEAD or not data:
            return []
        self._buffered += len(data)
        if self._buffered < self._need:
            self._chunks.append(data)
            return []
        if self._chunks:
            self._chunks.append(data)
            buf = b"".join(self._chunks)
            self._chunks = []
        else:
            buf = data
        out: list[Any] = []
        n = len(buf)
        if self._state == _SYNC:
            # In sync (nearly every segment): straight to the frame loop, one call less.
            pos, stop = self._decode(buf, 0, n, out)
            self.frames += stop >> 1
            if not stop & 1:
                pos = self._run(buf, pos, out)
        else:
            pos = self._run(buf, 0, out)
        self._offset += pos
        self._buffered = n - pos
        if pos < n and self._state != _DEAD:
            self._chunks = [buf[pos:] if pos else buf]
        else:
            self._chunks = []
            self._buffered = 0
        return out

    # The loop below is the hot path: one struct call per frame, no copies but payloads.
    def _run(self, buf: bytes, pos: int, out: list[Any]) -> int:
        """Decode from ``pos`` in any state; returns the position reached."""
        n = len(buf)
        if self._state == _START:
            pos = self._start(buf, out)
            if pos < 0:
                return 0
            if self._state == _DEAD:
                return n
        frames = 0
        try:
            while True:  # scan (if out of sync), then decode until the buffer runs out
                if self._state == _SCAN:
                    pos = self._scan(buf, pos, out)
                    if self._state == _SCAN:
                        return pos
                pos, stop = self._decode(buf, pos, n, out)
                frames += stop >> 1
                if stop & 1:
                    return pos
        finally:
            self.frames += frames

    def _decode(self, buf: bytes, pos: int, n: int, out: list[Any]) -> tuple[int, int]:
        """Decode frames in sync from ``pos``: returns (pos, frames << 1 | must_return)."""
        append = out.append
        unpack_header = _FRAME_HEADER.unpack_from
        unpack_body_size = _U64.unpack_from
        methods = _METHODS
        raw = self._raw
        limit = self._limit
        frames = 0
        while True:
            if n - pos < 7:
                self._need = 8
                return pos, frames << 1 | 1
            ftype, channel, size = unpack_header(buf, pos)
            if ftype not in _FRAME_TYPES:
                reason = f"frame type {ftype} is not 1, 2, 3 or 8"
                return self._fail(out, pos, channel, reason, frames)
            if size > limit:
                reason = f"frame size {size} exceeds the limit {limit}"
                return self._fail(out, pos, channel, reason, frames)
            end = pos + 7 + size
            if end >= n:
                self._need = end + 1 - pos
                return pos, frames << 1 | 1
            if buf[end] != FRAME_END:
                reason = f"frame-end octet is {buf[end]:#04x}, not 0xce"
                return self._fail(out, pos, channel, reason, frames)
            try:
                if ftype == FRAME_BODY:
                    if raw:
                        append((FRAME_BODY, channel, buf[pos + 7 : end]))
                    else:
                        append(BodyFrame(channel=channel, payload=buf[pos + 7 : end]))
                elif ftype == FRAME_METHOD:
                    payload = buf[pos + 7 : end]
                    method = methods.get(payload[:4])
                    if method is None:
                        cls, mid = _U16U16.unpack_from(payload, 0)
                        reason = f"unknown method {cls}.{mid}"
                        return self._fail(out, pos, channel, reason, frames)
                    arguments = method[3](payload)
                    if raw:
                        append((FRAME_METHOD, channel, method[2], arguments))
                    else:
                        append(
                            MethodFrame(
                                channel=channel,
                                class_id=method[0],
                                method_id=method[1],
                                name=method[2],
                                arguments=arguments,
                            )
                        )
                    if channel == 0 and method[2] == "Connection.TuneOk":
                        # The next frame in this very buffer is already bound by it.
                        self.frame_max = arguments["frame_max"]
                        limit = self._limit
                elif ftype == FRAME_HEADER:
                    payload = buf[pos + 7 : end]
                    body_size = unpack_body_size(payload, 4)[0]
                    props, headers = _header_properties(payload)
                    if raw:
                        append((FRAME_HEADER, channel, body_size, props, headers))
                    else:
                        append(
                            HeaderFrame(
                                channel=channel,
                                body_size=body_size,
                                properties=props,
                                headers=headers,
                            )
                        )
                elif raw:
                    append((FRAME_HEARTBEAT, channel))
                else:
                    append(Heartbeat(channel=channel))
            except _MALFORMED as exc:
                reason = f"cannot decode frame arguments: {exc}"
                return self._fail(out, pos, channel, reason, frames)
            frames += 1
            pos = end + 1

    def _start(self, buf: bytes, out: list[Event]) -> int:
        """Recognise a protocol header or a TLS record at the very start of the stream."""
        n = len(buf)
        if buf[0] == 0x16:
            if n < 2:
                self._need = 2
                return -1
            if buf[1] == 0x03:
                self._state = _DEAD
                out.append(TlsDetected())
                return n
        head = buf[:4]
        if b"AMQP".startswith(head) if n < 4 else head == b"AMQP":
            if n < 8:
                self._need = 8
                return -1
            header = ProtocolHeader(version=buf[4:8])
            out.append(header)
            if not header.supported:  # AMQP 0-8, 0-10, 1.0: another grammar entirely
                self._state = _DEAD
                return n
            self._state = _SCAN if self._scan_after_start else _SYNC
            self._scan_from = self._offset + 8
            return 8
        self._state = _SCAN if self._scan_after_start else _SYNC
        self._scan_from = self._offset
        return 0

    def _fail(
        self, out: list[Any], pos: int, channel: int, reason: str, frames: int
    ) -> tuple[int, int]:
        """``_decode``'s exit on a bad frame: stop here, or rescan from the next byte."""
        if self._invalid(out, pos, channel, reason):
            return pos, frames << 1 | 1
        self.skipped_bytes += 1
        return pos + 1, frames << 1

    def _invalid(self, out: list[Any], pos: int, channel: int, reason: str) -> bool:
        """A frame at ``pos`` failed validation: raise, or note it and start scanning.

        Returns True when the caller must stop (frames already decoded in this call are
        returned first; the next feed meets the same bad frame and raises).
        """
        offset = self._offset + pos
        if not self.recover:
            if out:
                self._need = 1
                return True
            raise FrameError(f"invalid AMQP frame: {reason}", channel=channel, offset=offset)
        out.append(Desync(offset=offset, channel=channel, reason=reason))
        self._state = _SCAN
        self._scan_from = offset
        return False

    def _scan(self, buf: bytes, pos: int, out: list[Event]) -> int:
        """Scan for a frame boundary; leaves ``_SCAN`` when one is found."""
        n = len(buf)
        check = self._candidate
        while pos < n:
            verdict = check(buf, pos, n)
            if verdict == _WAIT:
                return pos
            if verdict >= 0:
                start = self._offset + pos
                skipped = start - (self._scan_from if self._scan_from is not None else start)
                if skipped > 0:
                    out.append(Resync(offset=start, skipped=skipped))
                self._state = _SYNC
                self._scan_from = None
                return pos
            self.skipped_bytes += 1
            pos += 1
        self._need = 1
        return pos

    def _candidate(self, buf: bytes, i: int, n: int) -> int:
        """Does a frame start at ``i``? Returns its end offset, ``_WAIT`` or ``_REJECT``."""
        if buf[i] not in _FRAME_TYPES:
            return _REJECT
        plausible = self._plausible_header(buf, i, n)
        if plausible != 0:
            return plausible
        size = _U32.unpack_from(buf, i + 3)[0]
        end = i + 7 + size
        if end >= n:
            self._need = end + 1 - i
            return _WAIT
        if buf[end] != FRAME_END:
            return _REJECT
        nxt = end + 1
        if nxt == n:
            return end
        if self._plausible_header(buf, nxt, n) == _REJECT:
            return _REJECT
        return end

    def _plausible_header(self, buf: bytes, i: int, n: int) -> int:
        """Stricter-than-sync checks on a frame header: 0 if plausible, else a verdict.

        Near the end of the buffer (not all of the header there) the bytes present must
        agree; what is missing counts as plausible only for the follower of a candidate.
        """
        ftype = buf[i]
        if ftype not in _FRAME_TYPES:
            return _REJECT
        if n - i < 7:
            self._need = 7 + (4 if ftype == FRAME_METHOD else 0)
            return _WAIT
        channel, size = _U16.unpack_from(buf, i + 1)[0], _U32.unpack_from(buf, i + 3)[0]
        if size > self._scan_limit:
            return _REJECT
        if ftype == FRAME_HEARTBEAT:
            return 0 if channel == 0 and size == 0 else _REJECT
        if ftype == FRAME_BODY:
            return 0 if channel != 0 else _REJECT
        if ftype == FRAME_HEADER:
            if channel == 0 or size < 14:
                return _REJECT
            if n - i < 11:
                self._need = 11
                return _WAIT
            class_id, weight = _U16U16.unpack_from(buf, i + 7)
            return 0 if class_id == _BASIC and weight == 0 else _REJECT
        if size < 4:
            return _REJECT
        if n - i < 11:
            self._need = 11
            return _WAIT
        class_id, method_id = _U16U16.unpack_from(buf, i + 7)
        if buf[i + 7 : i + 11] not in _METHODS:
            return _REJECT
        if (class_id == _CONNECTION) != (channel == 0):
            return _REJECT
        return 0


# --------------------------------------------------------------------------- connection

_CONTENT_METHODS_CLIENT = {"Basic.Publish": "publish"}
_CONTENT_METHODS_SERVER = {
    "Basic.Deliver": "deliver",
    "Basic.GetOk": "get_ok",
    "Basic.Return": "return",
}


class _Content:
    """A message being assembled on one channel: method, then header, then bodies.

    A plain slotted class rather than a dataclass: one is made per message, and the
    dataclass ``__init__`` built an empty properties dict and parts list for each, which
    the content header replaces and a one-frame body never uses.
    """

    __slots__ = (
        "kind",
        "arguments",
        "body_size",
        "properties",
        "headers",
        "parts",
        "kept",
        "received",
    )

    def __init__(self, kind: str, arguments: Mapping[str, Any]) -> None:
        self.kind = kind
        self.arguments = arguments
        self.body_size = -1
        """-1 until the content header arrives."""
        self.properties: Mapping[str, Any] = _NO_PROPERTIES
        self.headers: Mapping[str, Any] | None = None
        self.parts: list[bytes] | None = None
        """Body frames kept so far, when the body comes in several."""
        self.kept = 0
        self.received = 0


_NO_PROPERTIES: Mapping[str, Any] = MappingProxyType({})


@dataclass(slots=True)
class _Direction:
    decoder: FrameDecoder
    content: dict[int, _Content] = field(default_factory=dict)
    ignored: bool = False
    """TLS or another protocol version: nothing more is decoded on this direction."""
    resynced: bool = False
    seen_since_resync: set[int] = field(default_factory=set)
    lost_bytes: int = 0


class AmqpConnection:
    """Both directions of one AMQP connection → Observation / ConnectionInfo / Notice.

    The caller says which side is the client (SYN, protocol header, or server port).
    ``mid_stream=True`` when the capture began after the connection was opened: both
    directions resynchronise first and the vhost stays unknown.
    """

    def __init__(
        self,
        connection: str,
        *,
        source: str = "pcap",
        max_body: int = 256 << 20,
        mid_stream: bool = False,
        max_frame: int = DEFAULT_FRAME_LIMIT,
    ) -> None:
        self.connection = connection
        self.source = source
        self.max_body = max_body
        self.client = _Direction(
            FrameDecoder(synced=not mid_stream, recover=True, raw=True, max_frame=max_frame)
        )
        self.server = _Direction(
            FrameDecoder(synced=not mid_stream, recover=True, raw=True, max_frame=max_frame)
        )
        self.frames = 0
        self.messages = 0
        self.client_properties: Mapping[str, Any] = {}
        self.user: str | None = None
        self.vhost: str | None = None
        self.frame_max: int | None = None
        self.tls = False
        self._info_sent = False
        self.notices: dict[str, int] = {}
        """Notices emitted, by code."""
        self.infos = 0
        self._handshake_seen = False
        self._consumers: dict[tuple[int, str], str] = {}
        self._pending_consume: dict[int, list[str]] = {}
        self._pending_get: dict[int, list[str]] = {}

    @property
    def skipped_bytes(self) -> int:
        return self.client.decoder.skipped_bytes + self.server.decoder.skipped_bytes

    def feed(self, data: bytes, *, from_client: bool, time: float) -> list[Record]:
        """Decode bytes of one direction; return the records they complete."""
        return self.feed_direction(data, from_client, time)

    def feed_direction(self, data: bytes, from_client: bool, time: float) -> list[Record]:
        """``feed`` with positional arguments: the capture loop calls this per segment."""
        side = self.client if from_client else self.server
        if side.ignored:
            return []
        records: list[Record] = []
        for event in side.decoder.feed(data):
            if type(event) is not tuple:
                self._event(side, event, time, records)
                continue
            ftype = event[0]
            if ftype == FRAME_BODY:
                self._body(side, event[1], event[2], time, records)
            elif ftype == FRAME_METHOD:
                self._method(side, event[1], event[2], event[3], from_client, time, records)
            elif ftype == FRAME_HEADER:
                self._header(side, event[1], event[2], event[3], event[4], time, records)
            else:
                self.frames += 1
        return records

    def gap(self, *, from_client: bool, lost: int, time: float) -> list[Record]:
        """Bytes lost in one direction (a TCP gap): drop what was in flight and rescan."""
        side = self.client if from_client else self.server
        if side.ignored:
            return []
        dropped = side.decoder.resync(drop_buffered=True)
        in_flight = len(side.content)
        side.content.clear()
        side.resynced = True
        side.seen_since_resync.clear()
        side.lost_bytes += lost + dropped
        direction = "client" if from_client else "server"
        extra = f", {in_flight} message(s) in flight dropped" if in_flight else ""
        return [
            self._notice(
                code="tcp_gap",
                message=f"{lost} bytes lost in the {direction} stream{extra}",
            )
        ]

    def finish(self, time: float) -> list[Record]:
        """End of input: report content never completed, and the handshake if unreported."""
        records: list[Record] = []
        for side in (self.client, self.server):
            for channel in sorted(side.content):
                records.append(
                    self._notice(
                        code="incomplete_content",
                        message=f"message on channel {channel} cut off by the end of capture",
                    )
                )
            side.content.clear()
        if self._handshake_seen and not self._info_sent:
            records.append(self._info(time))
        return records

    # ---------------------------------------------------------------- frames

    def _notice(self, *, code: str, message: str, count: int = 1) -> Notice:
        self.notices[code] = self.notices.get(code, 0) + 1
        return Notice(code=code, message=message, connection=self.connection, count=count)

    def _info(self, time: float) -> ConnectionInfo:
        self._info_sent = True
        self.infos += 1
        return ConnectionInfo(
            connection=self.connection,
            time=time,
            client_properties=self.client_properties,
            user=self.user,
            vhost=self.vhost,
        )

    def _event(self, side: _Direction, event: Event, time: float, records: list[Record]) -> None:
        if isinstance(event, ProtocolHeader):
            if not event.supported:
                version = ".".join(str(b) for b in event.version)
                records.append(
                    self._notice(
                        code="amqp_version",
                        message=f"protocol header AMQP {version} is not 0-9-1, not decoded",
                    )
                )
                side.decoder.stop()
                side.ignored = True
        elif isinstance(event, TlsDetected):
            side.ignored = True
            if not self.tls:
                self.tls = True
                records.append(
                    self._notice(
                        code="tls",
                        message="encrypted (TLS), cannot decode",
                    )
                )
        elif isinstance(event, Desync):
            dropped = len(side.content)
            side.content.clear()
            side.resynced = True
            side.seen_since_resync.clear()
            records.append(
                self._notice(
                    code="garbage",
                    message=f"undecodable bytes at offset {event.offset}: {event.reason}"
                    + (f", {dropped} message(s) in flight dropped" if dropped else ""),
                )
            )
        elif isinstance(event, Resync):
            side.resynced = True
            side.seen_since_resync.clear()
            records.append(
                self._notice(
                    code="resync",
                    message=f"skipped {event.skipped} bytes to the next frame at offset "
                    f"{event.offset}",
                    count=event.skipped,
                )
            )

    def _method(
        self,
        side: _Direction,
        channel: int,
        name: str,
        args: Mapping[str, Any],
        from_client: bool,
        time: float,
        records: list[Record],
    ) -> None:
        self.frames += 1
        if side.resynced:
            side.seen_since_resync.add(channel)
        kind = (_CONTENT_METHODS_CLIENT if from_client else _CONTENT_METHODS_SERVER).get(name)
        if kind is not None:
            if channel in side.content:
                records.append(self._incomplete(channel))
            side.content[channel] = _Content(kind, args)
            return
        if name == "Basic.Ack" or name == "Basic.Nack":
            return
        if name == "Basic.Consume":
            # A tag the client chose is known at once (and is all we get with no-wait);
            # otherwise Consume-Ok brings the one the server made up.
            if args["consumer_tag"]:
                self._consumers[(channel, args["consumer_tag"])] = args["queue"]
            if not args["nowait"]:
                self._pending_consume.setdefault(channel, []).append(args["queue"])
        elif name == "Basic.ConsumeOk":
            pending = self._pending_consume.get(channel)
            if pending:
                self._consumers[(channel, args["consumer_tag"])] = pending.pop(0)
        elif name == "Basic.Get":
            self._pending_get.setdefault(channel, []).append(args["queue"])
        elif name == "Basic.GetEmpty":
            pending = self._pending_get.get(channel)
            if pending:
                pending.pop(0)
        elif name == "Basic.CancelOk":
            self._consumers.pop((channel, args["consumer_tag"]), None)
        elif name == "Connection.StartOk":
            self._handshake_seen = True
            self.client_properties = args["client_properties"]
            self.user = args["user"]
        elif name == "Connection.TuneOk":
            self.frame_max = args["frame_max"] or None
            self.client.decoder.frame_max = self.frame_max
            self.server.decoder.frame_max = self.frame_max
        elif name == "Connection.Open":
            self._handshake_seen = True
            self.vhost = args["virtual_host"]
            records.append(self._info(time))
        elif name in ("Channel.Close", "Channel.CloseOk", "Channel.Open"):
            self._reset_channel(channel, records)
        elif name in ("Connection.Close", "Connection.CloseOk"):
            for ch in sorted({*self.client.content, *self.server.content, *self._pending_get}):
                self._reset_channel(ch, records)
            self._consumers.clear()
            self._pending_consume.clear()
            if self._handshake_seen and not self._info_sent:
                records.append(self._info(time))

    def _reset_channel(self, channel: int, records: list[Record]) -> None:
        for side in (self.client, self.server):
            if side.content.pop(channel, None) is not None:
                records.append(self._incomplete(channel))
        self._pending_consume.pop(channel, None)
        self._pending_get.pop(channel, None)
        for key in [k for k in self._consumers if k[0] == channel]:
            del self._consumers[key]

    def _incomplete(self, channel: int) -> Notice:
        return self._notice(
            code="incomplete_content",
            message=f"message on channel {channel} abandoned before its body was complete",
        )

    def _orphan(self, side: _Direction, channel: int, what: str, records: list[Record]) -> None:
        """Content with no method before it: expected right after a resync, else odd."""
        if side.resynced and channel not in side.seen_since_resync:
            return
        records.append(
            self._notice(
                code="orphan_content",
                message=f"{what} frame on channel {channel} without a content method",
            )
        )

    def _header(
        self,
        side: _Direction,
        channel: int,
        body_size: int,
        properties: Mapping[str, Any],
        headers: Mapping[str, Any] | None,
        time: float,
        records: list[Record],
    ) -> None:
        self.frames += 1
        content = side.content.get(channel)
        if content is None or content.body_size >= 0:
            if content is not None:
                del side.content[channel]
            self._orphan(side, channel, "content header", records)
            return
        content.body_size = body_size
        content.properties = properties
        content.headers = headers
        if body_size == 0:
            del side.content[channel]
            records.append(self._observation(channel, content, b"", time))

    def _body(
        self, side: _Direction, channel: int, payload: bytes, time: float, records: list[Record]
    ) -> None:
        self.frames += 1
        content = side.content.get(channel)
        if content is None or content.body_size < 0:
            if content is not None:
                del side.content[channel]
            self._orphan(side, channel, "body", records)
            return
        size = len(payload)
        if size == content.body_size and not content.received and size <= self.max_body:
            # The common case: the whole body in one frame.
            del side.content[channel]
            records.append(self._observation(channel, content, payload, time))
            return
        received = content.received = content.received + size
        if received > content.body_size:
            del side.content[channel]
            records.append(
                self._notice(
                    code="body_overflow",
                    message=f"body on channel {channel} exceeds the announced "
                    f"{content.body_size} bytes; message skipped",
                )
            )
            return
        room = self.max_body - content.kept
        if room > 0:
            if len(payload) > room:
                payload = payload[:room]
            if content.parts is None:
                content.parts = [payload]
            else:
                content.parts.append(payload)
            content.kept += len(payload)
        if received == content.body_size:
            del side.content[channel]
            parts = content.parts
            body = b"" if parts is None else parts[0] if len(parts) == 1 else b"".join(parts)
            records.append(self._observation(channel, content, body, time))

    def _observation(
        self, channel: int, content: _Content, body: bytes, time: float
    ) -> Observation:
        self.messages += 1
        args = content.arguments
        kind = content.kind
        queue = None
        consumer_tag = None
        if kind == "deliver":
            consumer_tag = args["consumer_tag"]
            queue = self._consumers.get((channel, consumer_tag))
        elif kind == "get_ok":
            pending = self._pending_get.get(channel)
            if pending:
                queue = pending.pop(0)
        return Observation(
            time=time,
            source=self.source,
            connection=self.connection,
            channel=channel,
            kind=kind,  # type: ignore[arg-type]
            exchange=args["exchange"],
            routing_key=args["routing_key"],
            properties=content.properties,
            headers=content.headers,
            body=body,
            vhost=self.vhost,
            queue=queue,
            redelivered=args.get("redelivered", False),
            consumer_tag=consumer_tag,
            delivery_tag=args.get("delivery_tag"),
            reply_code=args.get("reply_code"),
            reply_text=args.get("reply_text"),
            body_size=content.body_size,
        )
