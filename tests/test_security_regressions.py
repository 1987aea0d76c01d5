"""Replay every input under ``tests/regressions/`` that once found a bug.

Redaction inputs are oslo envelopes whose secrets are the values containing
``regression-`` plus ``token``/``secret``: none may survive, and the body must still
be JSON that parses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from busdoc.storage.redact import Redactor

REGRESSIONS = Path(__file__).parent / "regressions"
SECRET = re.compile(rb"regression-(?:token|secret)-\d+")


def test_every_regression_input_is_listed_in_the_readme() -> None:
    listed = (REGRESSIONS / "README.md").read_text()
    files = sorted(p.name for p in REGRESSIONS.iterdir() if p.name != "README.md")
    assert files
    for name in files:
        assert f"`{name}`" in listed


@pytest.mark.parametrize(
    "path", sorted(REGRESSIONS.glob("redact-*.json")), ids=lambda p: p.name
)
def test_redaction_regression_leaves_no_secret(path: Path) -> None:
    body = path.read_bytes()
    assert SECRET.search(body)  # the input really holds one
    found: list = []
    out = Redactor().redact_body(body, found)
    assert not SECRET.search(out), out
    assert found
    inner = json.loads(json.loads(out)["oslo.message"])
    assert inner["method"]


def _feed_like_fuzz_amqp(data: bytes) -> list[object]:
    """What ``fuzz/fuzz_amqp.py`` does with one input (first byte: direction, chunking)."""
    from busdoc.sniffer.amqp import AmqpConnection

    flags, stream = data[0], data[1:]
    conn = AmqpConnection("fuzz", mid_stream=bool(flags & 2))
    step = 16 + (flags >> 2) * 61
    records: list[object] = []
    for i in range(0, len(stream), step):
        records += conn.feed(stream[i : i + step], from_client=bool(flags & 1), time=float(i))
    return records + conn.finish(float(len(stream)))


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("amqp-*.bin")), ids=lambda p: p.name)
def test_amqp_regression_decodes_without_raising(path: Path) -> None:
    _feed_like_fuzz_amqp(path.read_bytes())


def test_update_secret_is_decoded_and_its_token_never_kept() -> None:
    """RabbitMQ's OAuth 2 refresh (Connection.UpdateSecret, 10.70) crashed the decoder."""
    import struct

    import pika.spec

    from busdoc.sniffer.amqp import FrameDecoder

    token = b"eyJhbGciOi.regression-token-5.sig"
    method_cls = pika.spec.Connection.UpdateSecret
    payload = struct.pack(">I", method_cls.INDEX) + b"".join(
        method_cls(token, "refresh").encode())
    frame = struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"
    frames = FrameDecoder().feed(b"AMQP\x00\x00\x09\x01" + frame)
    (method,) = [f for f in frames if getattr(f, "name", None) == "Connection.UpdateSecret"]
    assert dict(method.arguments) == {"reason": "refresh"}  # type: ignore[attr-defined]
    assert b"regression-token-5" not in repr(frames).encode()
