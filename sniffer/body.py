"""Message body codecs: content-encoding, JSON, the oslo.messaging envelope.

Pure functions over bytes and parsed values, shared by redaction (at the store's write
boundary) and inference. Nothing here knows SQL or schemas.

* ``decode_content`` / ``encode_content``: the AMQP ``content_encoding`` property. Only
  compressions are decoded (gzip, deflate/zlib, bzip2); anything else, including
  ``identity``, an absent property and the charsets Celery puts there (``utf-8``,
  ``binary``), is the body as it is. Decompression stops at a size and ratio limit, so a
  zip bomb on the wire costs at most ``max_output`` bytes and raises ``InputError``.
* ``parse_json``: orjson, with a nesting limit (a hostile body of ten thousand ``[`` must
  not drive recursive walkers in redaction and inference into the ground).
* ``unwrap_oslo`` / ``wrap_oslo``: oslo.messaging's envelope 2.0, a JSON object whose
  ``oslo.message`` member is the real message serialised again as a JSON *string*
  (``oslo_messaging/_drivers/common.py``, ``serialize_msg``).
"""

from __future__ import annotations

import bz2
import zlib
from typing import Any

import orjson

from busdoc.errors import InputError

MAX_OUTPUT = 64 << 20
"""Largest decompressed body accepted (bytes)."""
MAX_RATIO = 200
"""Largest decompressed/compressed size ratio accepted once the output passes 1 MiB;
JSON compresses 5-30×, a bomb 1000× and more."""
MAX_DEPTH = 128
"""Deepest nesting of arrays/objects ``parse_json`` accepts."""


class BodyLimits:
    """The limits in force for this process; the CLI sets them from its flags once.

    Every decoder that reads a body (redaction at capture time, inference, validation)
    goes through this module, so one setting covers them all.
    """

    __slots__ = ("max_depth", "max_output", "max_ratio")

    def __init__(self) -> None:
        self.max_output = MAX_OUTPUT
        self.max_ratio = MAX_RATIO
        self.max_depth = MAX_DEPTH


LIMITS = BodyLimits()


def set_limits(
    *, max_output: int | None = None, max_ratio: int | None = None, max_depth: int | None = None
) -> None:
    """Change the limits in force (None keeps one as it is); each must be at least 1."""
    for name, value in (("max_output", max_output), ("max_ratio", max_ratio),
                        ("max_depth", max_depth)):
        if value is not None:
            if value < 1:
                raise InputError(f"{name.replace('_', ' ')} must be at least 1, not {value}")
            setattr(LIMITS, name, value)

OSLO_VERSION_KEY = "oslo.version"
OSLO_MESSAGE_KEY = "oslo.message"

_GZIP = frozenset({"gzip", "x-gzip"})
_ZLIB = frozenset({"deflate", "zlib", "x-deflate"})
_BZ2 = frozenset({"bzip2", "bz2", "x-bzip2"})
_CHUNK = 1 << 20
_RATIO_FLOOR = 1 << 20


def compression_of(content_encoding: str | None) -> str | None:
    """``"gzip"``, ``"zlib"``, ``"bz2"`` or None (the body is not compressed)."""
    if not content_encoding:
        return None
    name = content_encoding.strip().lower()
    if name in _GZIP:
        return "gzip"
    if name in _ZLIB:
        return "zlib"
    if name in _BZ2:
        return "bz2"
    return None


def decode_content(
    body: bytes,
    content_encoding: str | None,
    *,
    max_output: int | None = None,
    max_ratio: int | None = None,
) -> bytes:
    """The body with its compression removed; the same object when it has none.

    Raises ``InputError`` for corrupt data and for output past ``max_output`` bytes or
    ``max_ratio`` times the input (checked in 1 MiB steps, never holding more).
    """
    if max_output is None:
        max_output = LIMITS.max_output
    if max_ratio is None:
        max_ratio = LIMITS.max_ratio
    kind = compression_of(content_encoding)
    if kind is None:
        return body
    if kind == "bz2":
        return _inflate_bz2(body, max_output, max_ratio)
    if kind == "gzip":
        return _inflate_zlib(body, 16 + zlib.MAX_WBITS, max_output, max_ratio)
    # HTTP taught everyone that "deflate" may mean zlib-wrapped or raw deflate.
    try:
        return _inflate_zlib(body, zlib.MAX_WBITS, max_output, max_ratio)
    except _Corrupt:
        return _inflate_zlib(body, -zlib.MAX_WBITS, max_output, max_ratio)


def encode_content(body: bytes, content_encoding: str | None) -> bytes:
    """Compress ``body`` as ``content_encoding`` says (the inverse of ``decode_content``)."""
    kind = compression_of(content_encoding)
    if kind == "gzip":
        co = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return co.compress(body) + co.flush()
    if kind == "zlib":
        return zlib.compress(body)
    if kind == "bz2":
        return bz2.compress(body)
    return body


class _Corrupt(InputError):
    pass


def _check_size(produced: int, consumed: int, max_output: int, max_ratio: int) -> None:
    if produced > max_output:
        raise InputError(f"compressed body expands past {max_output:,} bytes (refused)")
    if produced > _RATIO_FLOOR and produced > max_ratio * max(consumed, 1):
        raise InputError(
            f"compressed body expands more than {max_ratio}× ({consumed:,} → {produced:,}+ "
            "bytes); refused as a decompression bomb"
        )


def _inflate_zlib(body: bytes, wbits: int, max_output: int, max_ratio: int) -> bytes:
    d = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    produced = 0
    data = body
    try:
        while True:
            chunk = d.decompress(data, _CHUNK)
            produced += len(chunk)
            parts.append(chunk)
            _check_size(produced, len(body) - len(d.unconsumed_tail), max_output, max_ratio)
            if d.eof:
                break
            data = d.unconsumed_tail
            if not data:
                break
        if not d.eof:
            raise _Corrupt("compressed body ends early (truncated stream)")
    except zlib.error as exc:
        raise _Corrupt(f"compressed body is corrupt: {exc}") from exc
    return b"".join(parts)


def _inflate_bz2(body: bytes, max_output: int, max_ratio: int) -> bytes:
    d = bz2.BZ2Decompressor()
    parts: list[bytes] = []
    produced = 0
    data = body
    try:
        while not d.eof:
            chunk = d.decompress(data, _CHUNK)
            data = b""
            produced += len(chunk)
            parts.append(chunk)
            _check_size(produced, len(body), max_output, max_ratio)
            if d.needs_input and not d.eof:
                raise _Corrupt("compressed body ends early (truncated stream)")
    except (OSError, EOFError, ValueError) as exc:
        raise _Corrupt(f"compressed body is corrupt: {exc}") from exc
    return b"".join(parts)


def parse_json(body: bytes | str, *, max_depth: int | None = None) -> Any:
    """Parse a JSON document with orjson; ``InputError`` if invalid or nested too deep."""
    if max_depth is None:
        max_depth = LIMITS.max_depth
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"body is not JSON: {exc}") from exc
    # Counting openers is a C-speed upper bound on depth; walk only when it could exceed.
    raw = body.encode() if isinstance(body, str) else body
    if raw.count(b"[") + raw.count(b"{") > max_depth and _depth(doc) > max_depth:
        raise InputError(f"JSON body nested deeper than {max_depth} levels")
    return doc


def _depth(doc: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in value if isinstance(v, dict | list))
    return deepest


def dump_json(doc: Any) -> bytes:
    """Compact JSON (orjson), used when a redacted document is written back."""
    return orjson.dumps(doc)


def json_in_string(
    value: str, *, max_depth: int | None = None
) -> dict[str, Any] | list[Any] | None:
    """The object or array a string holds as JSON text, or None.

    oslo.messaging nests a JSON document in ``oslo.message``; other services put JSON in
    string fields too (serialised ``extra`` blobs, Celery ``kwargsrepr`` of JSON clients).
    """
    head = value[:1] if value[:1] not in (" ", "\n", "\t", "\r") else value.lstrip()[:1]
    if head not in ("{", "["):
        return None
    try:
        doc = parse_json(value, max_depth=max_depth)
    except InputError:
        return None
    return doc if isinstance(doc, dict | list) else None


def is_oslo_envelope(doc: Any) -> bool:
    """True for ``{"oslo.version": "2.0", "oslo.message": "<JSON string>"}``."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get(OSLO_MESSAGE_KEY), str)
        and OSLO_VERSION_KEY in doc
    )


def unwrap_oslo(doc: Any) -> Any:
    """The inner message of an oslo envelope, or ``doc`` itself when it is not one.

    An envelope whose inner string is not JSON raises ``InputError``.
    """
    if not is_oslo_envelope(doc):
        return doc
    return parse_json(doc[OSLO_MESSAGE_KEY])


def wrap_oslo(inner: Any, version: str = "2.0") -> dict[str, Any]:
    """Put ``inner`` back into an envelope (inner document re-encoded as a string)."""
    return {OSLO_VERSION_KEY: version, OSLO_MESSAGE_KEY: orjson.dumps(inner).decode()}
