"""Body codecs: content-encoding with bomb limits, JSON with a depth limit, oslo envelopes."""

from __future__ import annotations

import bz2
import gzip
import zlib

import orjson
import pytest

from busdoc.errors import InputError
from busdoc.sniffer.body import (
    decode_content,
    encode_content,
    is_oslo_envelope,
    json_in_string,
    parse_json,
    unwrap_oslo,
    wrap_oslo,
)

PLAIN = b'{"method": "ping", "args": {"n": 1}}' * 50


@pytest.mark.parametrize(
    ("encoding", "compressed"),
    [
        ("gzip", gzip.compress(PLAIN)),
        ("x-gzip", gzip.compress(PLAIN)),
        ("GZIP ", gzip.compress(PLAIN)),
        ("deflate", zlib.compress(PLAIN)),
        ("zlib", zlib.compress(PLAIN)),
        ("bzip2", bz2.compress(PLAIN)),
    ],
)
def test_decode_content_removes_each_compression(encoding: str, compressed: bytes) -> None:
    assert decode_content(compressed, encoding) == PLAIN


def test_decode_content_accepts_raw_deflate_without_zlib_header() -> None:
    co = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = co.compress(PLAIN) + co.flush()
    assert decode_content(raw, "deflate") == PLAIN


@pytest.mark.parametrize("encoding", [None, "", "identity", "utf-8", "binary", "x-unknown"])
def test_non_compression_encodings_return_the_same_bytes_object(encoding: str | None) -> None:
    # Celery puts the charset in content_encoding: that is not a compression.
    assert decode_content(PLAIN, encoding) is PLAIN


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "bzip2"])
def test_encode_content_round_trips(encoding: str) -> None:
    assert decode_content(encode_content(PLAIN, encoding), encoding) == PLAIN


def test_gzip_bomb_is_refused_by_ratio() -> None:
    bomb = gzip.compress(b"\0" * (50 << 20))  # ~50 KB that expand 1000×
    with pytest.raises(InputError, match="decompression bomb"):
        decode_content(bomb, "gzip")


def test_bz2_bomb_is_refused_by_output_size() -> None:
    bomb = bz2.compress(b"a" * (3 << 20))
    with pytest.raises(InputError, match="expands past"):
        decode_content(bomb, "bzip2", max_output=1 << 20, max_ratio=10**9)


def test_highly_compressible_small_body_is_accepted() -> None:
    # Under 1 MiB of output the ratio is not checked: small repetitive JSON is normal.
    body = b"[" + b"0," * 200_000 + b"0]"
    assert decode_content(gzip.compress(body), "gzip") == body


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "bzip2"])
def test_corrupt_compressed_body_raises_input_error(encoding: str) -> None:
    with pytest.raises(InputError):
        decode_content(b"this is not compressed at all", encoding)


def test_truncated_gzip_raises_input_error() -> None:
    with pytest.raises(InputError, match="ends early"):
        decode_content(gzip.compress(PLAIN)[:-30], "gzip")


def test_parse_json_rejects_invalid_json() -> None:
    with pytest.raises(InputError, match="not JSON"):
        parse_json(b"{nope")


def test_parse_json_rejects_nesting_past_the_limit() -> None:
    deep = b"[" * 20 + b"]" * 20
    assert parse_json(deep, max_depth=20) is not None
    with pytest.raises(InputError, match="deeper than 19"):
        parse_json(deep, max_depth=19)


def test_parse_json_counts_brackets_inside_strings_but_does_not_reject_them() -> None:
    body = orjson.dumps({"text": "[" * 500})
    assert parse_json(body, max_depth=5) == {"text": "[" * 500}


def test_oslo_envelope_unwraps_and_rewraps() -> None:
    inner = {"method": "ping", "_context_request_id": "req-1", "args": {}}
    envelope = {"oslo.version": "2.0", "oslo.message": orjson.dumps(inner).decode()}
    assert is_oslo_envelope(envelope)
    assert unwrap_oslo(envelope) == inner
    assert unwrap_oslo(wrap_oslo(inner)) == inner
    assert wrap_oslo(inner)["oslo.version"] == "2.0"


def test_unwrap_oslo_leaves_other_documents_alone() -> None:
    doc = {"method": "ping"}
    assert not is_oslo_envelope(doc)
    assert unwrap_oslo(doc) is doc
    assert not is_oslo_envelope({"oslo.message": "{}"})  # no version key


def test_unwrap_oslo_with_broken_inner_string_raises_input_error() -> None:
    with pytest.raises(InputError):
        unwrap_oslo({"oslo.version": "2.0", "oslo.message": "{broken"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2]", [1, 2]),
        ("[not json", None),
        ('"just a string"', None),
        ("42", None),
        ("plain words", None),
    ],
)
def test_json_in_string_finds_only_objects_and_arrays(text: str, expected: object) -> None:
    assert json_in_string(text) == expected
