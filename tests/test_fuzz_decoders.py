"""Hostile bytes into every decoder: only busdoc's own errors come out, never a crash.

Bounded so the suite stays fast; ``fuzz/`` holds the atheris targets for long runs. Each
test states the contract of one stage under damaged input:

* the capture reader plus the whole decode pipeline, on a real capture mutated byte by
  byte: records or ``CaptureFormatError``;
* the AMQP connection decoder, on a real client stream mutated and fed in random
  chunks: records only, every body no longer than the bytes fed;
* content decoding: the body, or ``InputError``; output never past the limit;
* JSON parsing: a value or ``InputError`` (no ``RecursionError``);
* redaction: any body under any content-encoding; no value under a secret key survives.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import zlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from busdoc.errors import CaptureFormatError, InputError
from busdoc.sniffer.amqp import AmqpConnection
from busdoc.sniffer.body import decode_content, parse_json
from busdoc.sniffer.capture import CaptureDecoder
from busdoc.sniffer.packet import decode_tcp
from busdoc.sniffer.pcap import CaptureReader, open_capture
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation
from busdoc.storage.redact import REDACTED, Redactor

CAPTURE = Path(__file__).parent / "captures" / "any_cooked.pcap"
RAW = CAPTURE.read_bytes()
FUZZ = settings(max_examples=60, deadline=None)


def _client_stream() -> bytes:
    """The client → server bytes of the fixture's one connection, in capture order."""
    reader = open_capture(CAPTURE)
    out = []
    seen: set[int] = set()
    for rec in reader:
        seg = decode_tcp(rec.linktype, rec.data)
        if seg is None or seg.dport != 5672 or not seg.payload or seg.seq in seen:
            continue
        seen.add(seg.seq)
        out.append(seg.payload)
    return b"".join(out)


CLIENT = _client_stream()

mutation = st.lists(
    st.tuples(st.integers(0, len(RAW) - 1), st.integers(0, 255)), min_size=1, max_size=12
)


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf)


def test_fixture_streams_are_real() -> None:
    assert RAW[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")
    assert CLIENT.startswith(b"AMQP\x00\x00\x09\x01") and len(CLIENT) > 500
    conn = AmqpConnection("c", source="pcap")
    records = conn.feed(CLIENT, from_client=True, time=0.0) + conn.finish(0.0)
    assert sum(isinstance(r, Observation) for r in records) == 4  # the 4 publishes


@FUZZ
@given(edits=mutation, cut=st.integers(0, 400))
def test_mutated_capture_decodes_or_fails_with_capture_format_error(
    edits: list[tuple[int, int]], cut: int
) -> None:
    data = _mutate(RAW, edits)[: len(RAW) - cut]
    decoder = CaptureDecoder()
    try:
        reader = CaptureReader(io.BytesIO(data))
        records = [r for rec in reader for r in decoder.feed(rec)]
    except CaptureFormatError:
        return
    records += decoder.finish()
    for r in records:
        assert isinstance(r, Observation | ConnectionInfo | Notice)
        if isinstance(r, Observation):
            assert len(r.body) <= len(data)


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
    chunks=st.lists(st.integers(1, 300), min_size=1, max_size=20),
    drop=st.integers(0, 200),
)
def test_mutated_amqp_stream_in_random_chunks_never_raises(
    edits: list[tuple[int, int]], chunks: list[int], drop: int
) -> None:
    stream = _mutate(CLIENT, edits)[drop:]
    conn = AmqpConnection("c", source="pcap", mid_stream=drop > 0)
    records = []
    pos = 0
    i = 0
    while pos < len(stream):
        size = chunks[i % len(chunks)]
        records += conn.feed(stream[pos : pos + size], from_client=True, time=float(i))
        pos += size
        i += 1
    records += conn.finish(float(i))
    for r in records:
        assert isinstance(r, Observation | ConnectionInfo | Notice)
        if isinstance(r, Observation):
            assert len(r.body) <= len(stream)


ENCODINGS = st.sampled_from(["gzip", "deflate", "bzip2", "x-gzip", "identity", None, "utf-8"])


@FUZZ
@given(body=st.binary(max_size=512), encoding=ENCODINGS)
def test_random_compressed_body_decodes_or_is_input_error(body: bytes, encoding: str) -> None:
    try:
        out = decode_content(body, encoding, max_output=1 << 16)
    except InputError:
        return
    assert len(out) <= 1 << 16


@FUZZ
@given(plain=st.binary(max_size=2048), edits=st.lists(st.tuples(st.integers(0, 4096),
       st.integers(0, 255)), max_size=4), codec=st.sampled_from(["gzip", "deflate", "bzip2"]))
def test_damaged_compressed_body_decodes_or_is_input_error(
    plain: bytes, edits: list[tuple[int, int]], codec: str
) -> None:
    packed = {"gzip": gzip.compress, "deflate": zlib.compress, "bzip2": bz2.compress}[codec](plain)
    damaged = _mutate(packed, edits) if edits else packed
    try:
        out = decode_content(damaged, codec)
    except InputError:
        assert edits  # an intact body always decodes
        return
    if not edits:
        assert out == plain


def test_zip_bomb_in_a_body_is_refused_at_the_ratio_limit() -> None:
    bomb = gzip.compress(b"{" + b" " * (20 << 20) + b"}")
    try:
        decode_content(bomb, "gzip")
    except InputError as exc:
        assert "decompression bomb" in str(exc)
    else:
        raise AssertionError("a 1000x bomb was inflated")


json_text = st.one_of(
    st.text(max_size=200),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(1, 3000).map(lambda n: "[" * n),
)


@FUZZ
@given(text=json_text)
def test_parse_json_returns_a_value_or_input_error(text: str) -> None:
    try:
        parse_json(text)
    except InputError:
        pass


SECRET_KEYS = ["password", "new_pass", "auth_token", "secret", "adminPass", "private_key"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["a", "name", "args", *SECRET_KEYS]), children, max_size=4),
    max_leaves=20,
)


def _secret_values(doc: object, out: list[object]) -> None:
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in SECRET_KEYS and v is not None and not isinstance(v, bool):
                out.append(v)
            else:
                _secret_values(v, out)
    elif isinstance(doc, list):
        for v in doc:
            _secret_values(v, out)


@FUZZ
@given(doc=json_values, nest=st.booleans(), encoding=st.sampled_from([None, "gzip", "bzip2"]))
def test_redaction_leaves_no_value_under_a_secret_key(
    doc: object, nest: bool, encoding: str | None
) -> None:
    if nest:  # the oslo envelope: JSON inside a JSON string
        doc = {"oslo.version": "2.0", "oslo.message": json.dumps(doc)}
    plain = json.dumps(doc).encode()  # stdlib: integers past 64 bits too
    body = {None: lambda b: b, "gzip": gzip.compress, "bzip2": bz2.compress}[encoding](plain)
    out = Redactor().redact_body(body, content_encoding=encoding)
    result = json.loads(decode_content(out, encoding))
    if nest:
        result = json.loads(result["oslo.message"])
        doc = json.loads(doc["oslo.message"])  # type: ignore[index]
    leaked: list[object] = []
    _secret_values(result, leaked)
    assert all(v == REDACTED for v in leaked), leaked
    original: list[object] = []
    _secret_values(doc, original)
    if not original:
        assert out is body  # nothing to redact: stored byte-exact


@FUZZ
@given(body=st.binary(max_size=512), encoding=ENCODINGS)
def test_redaction_of_arbitrary_bytes_never_raises(body: bytes, encoding: str | None) -> None:
    found: list = []
    out = Redactor().redact_body(b'{"password":' + body, found, content_encoding=encoding)
    assert isinstance(out, bytes)
    Redactor().redact_body(body, content_encoding=encoding)


def test_redaction_of_a_deeply_nested_body_does_not_recurse_into_the_ground() -> None:
    deep = b'{"password":"x","a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    found: list = []
    out = Redactor().redact_body(deep, found)
    assert isinstance(out, bytes)
