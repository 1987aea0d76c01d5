"""The body and frame limits are flags, and the flags reach every decoder."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from busdoc.errors import FrameError, InputError
from busdoc.inference.classify import decode_body
from busdoc.inference.testing import stored
from busdoc.sniffer import body
from busdoc.sniffer.amqp import FrameDecoder

CAPTURES = Path(__file__).parent / "captures"


@pytest.fixture
def restore_limits() -> Iterator[None]:
    saved = (body.LIMITS.max_output, body.LIMITS.max_ratio, body.LIMITS.max_depth)
    yield
    body.set_limits(max_output=saved[0], max_ratio=saved[1], max_depth=saved[2])


def _bomb_message() -> object:
    doc = json.dumps({"padding": "0" * (3 << 20)}).encode()
    packed = gzip.compress(doc)
    assert len(doc) / len(packed) > 500
    return stored(
        packed,
        exchange="ex",
        routing_key="rk",
        properties={"content_type": "application/json", "content_encoding": "gzip"},
    )


def test_inflate_ratio_limit_refuses_by_default_and_can_be_raised(restore_limits: None) -> None:
    message = _bomb_message()
    assert decode_body(message).status == "opaque"
    body.set_limits(max_ratio=5000)
    assert decode_body(message).status == "ok"


def test_json_depth_limit_applies_to_parse_json(restore_limits: None) -> None:
    deep = b'{"a": {"b": {"c": {"d": 1}}}}'
    assert body.parse_json(deep)["a"]["b"]["c"]["d"] == 1
    body.set_limits(max_depth=3)
    with pytest.raises(InputError, match="deeper than 3"):
        body.parse_json(deep)


def test_limits_below_one_are_refused(restore_limits: None) -> None:
    with pytest.raises(InputError, match="at least 1"):
        body.set_limits(max_ratio=0)


def test_frame_limit_before_tune_rejects_larger_frames() -> None:
    frame = bytes([3]) + (1).to_bytes(2, "big") + (10_000).to_bytes(4, "big")
    frame += b"x" * 10_000 + b"\xce"
    assert len(FrameDecoder().feed(frame)) == 1
    with pytest.raises(FrameError):
        FrameDecoder(max_frame=4096).feed(frame)


def _undecodable(tmp_path: Path, *flags: str) -> int:
    tmp_path.mkdir(exist_ok=True)
    db = str(tmp_path / "s.db")
    run = [sys.executable, "-m", "busdoc"]
    subprocess.run([*run, "capture", "pcap", str(CAPTURES / "oslo_rpc.pcap"), "--db", db, "-q"],
                   check=True, capture_output=True, timeout=120)
    out = subprocess.run([*run, *flags, "infer", "--db", db, "--format", "json", "--rebuild"],
                         check=True, capture_output=True, text=True, timeout=120)
    return json.loads(out.stdout)["stats"]["undecodable"]


def test_max_json_depth_flag_reaches_inference(tmp_path: Path) -> None:
    assert _undecodable(tmp_path) == 0
    # oslo bodies nest deeper than two levels: none of them can be read at this limit.
    assert _undecodable(tmp_path / "x", "--max-json-depth", "2") > 0
