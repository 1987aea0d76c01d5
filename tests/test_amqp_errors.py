"""Frames that fail validation, garbage, mid-stream starts, TCP gaps: resynchronisation."""

from __future__ import annotations

import random

import pika.frame
import pika.spec
import pytest

from busdoc.errors import FrameError
from busdoc.sniffer.amqp import (
    AmqpConnection,
    BodyFrame,
    Desync,
    FrameDecoder,
    Heartbeat,
    MethodFrame,
    Resync,
)
from busdoc.sniffer.records import Notice, Observation

CONN = "[fe80::1]:41234->[fe80::2]:5672"


def publish(channel: int, payload: bytes, frame_max: int = 4096, **props: object) -> bytes:
    out = pika.frame.Method(
        channel, pika.spec.Basic.Publish(exchange="ex", routing_key=f"rk.{channel}")
    ).marshal()
    out += pika.frame.Header(channel, len(payload), pika.spec.BasicProperties(**props)).marshal()
    for i in range(0, len(payload), frame_max - 8):
        out += pika.frame.Body(channel, payload[i : i + frame_max - 8]).marshal()
    return out


def bodies(n: int, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    return [
        (f'{{"seq": {i}, "pad": "' + "x" * rnd.randrange(0, 9000) + '"}').encode() for i in range(n)
    ]


def test_bad_frame_end_raises_frame_error_with_channel_and_offset() -> None:
    good = pika.frame.Heartbeat().marshal()
    bad = b"\x03\x00\x07\x00\x00\x00\x02ab\x00"
    with pytest.raises(FrameError) as info:
        FrameDecoder().feed(bad)
    assert (info.value.channel, info.value.offset) == (7, 0)
    assert "frame-end" in str(info.value)
    decoder = FrameDecoder()
    assert decoder.feed(good + good + bad) == [Heartbeat(channel=0), Heartbeat(channel=0)]
    with pytest.raises(FrameError) as info:
        decoder.feed(b"")
        decoder.feed(b"more")
    assert info.value.offset == 16


@pytest.mark.parametrize(
    ("wire", "words"),
    [
        (b"\x05\x00\x01\x00\x00\x00\x00\xce", "frame type 5"),
        (b"\x03\x00\x01\x7f\xff\xff\xff", "exceeds the limit"),
        (b"\x01\x00\x00\x00\x00\x00\x04\x00\x63\x00\x01\xce", "unknown method 99.1"),
        (b"\x01\x00\x01\x00\x00\x00\x05\x00\x3c\x00\x28\x00\xce", "cannot decode"),
    ],
    ids=["type", "size", "method", "truncated-arguments"],
)
def test_invalid_frames_raise_frame_error(wire: bytes, words: str) -> None:
    with pytest.raises(FrameError, match=words):
        FrameDecoder().feed(wire)


def test_frame_larger_than_tuned_frame_max_is_invalid() -> None:
    big = pika.frame.Body(1, b"z" * 5000).marshal()
    with pytest.raises(FrameError, match="exceeds"):
        FrameDecoder(frame_max=4096).feed(big)


def test_recovering_decoder_skips_garbage_and_counts_it() -> None:
    frames = b"".join(pika.frame.Body(1, bytes([i]) * 30).marshal() for i in range(5))
    garbage = b"\x01\x02garbage\x00\xce\xff" * 3
    decoder = FrameDecoder(recover=True)
    events = decoder.feed(frames[:76] + garbage + frames[76:])
    kinds = [type(e) for e in events]
    assert kinds == [BodyFrame, BodyFrame, Desync, Resync, BodyFrame, BodyFrame, BodyFrame]
    assert decoder.skipped_bytes == len(garbage)
    resync = events[3]
    assert resync.skipped == len(garbage)
    assert [e.payload[0] for e in events if isinstance(e, BodyFrame)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("seed", range(25))
def test_resync_from_random_offset_never_emits_garbage(seed: int) -> None:
    msgs = bodies(40, seed)
    wires = [publish(1 + i % 3, b, content_type="application/json") for i, b in enumerate(msgs)]
    stream = b"".join(wires)
    rnd = random.Random(seed)
    start = rnd.randrange(1, len(stream) // 2)
    starts = [sum(map(len, wires[:i])) for i in range(len(wires))]
    first_whole = next(i for i, s in enumerate(starts) if s >= start)
    conn = AmqpConnection(CONN, mid_stream=True)
    records = []
    pos = start
    while pos < len(stream):  # TCP-ish segments
        step = rnd.randrange(1, 3000)
        records += conn.feed(stream[pos : pos + step], from_client=True, time=1.0)
        pos += step
    got = [r.body for r in records if isinstance(r, Observation)]
    # Exactly the messages whose method frame lies after the cut, in order: the cut
    # message is dropped whole, nothing after it is lost, nothing invented.
    assert got == msgs[first_whole:]
    assert not any(
        isinstance(r, Notice) and r.code in ("garbage", "orphan_content") for r in records
    )


def test_mid_stream_start_inside_a_body_skips_to_next_method() -> None:
    one, two = b"A" * 3000, b"B" * 100
    stream = publish(1, one) + publish(1, two)
    conn = AmqpConnection(CONN, mid_stream=True)
    records = conn.feed(stream[200:], from_client=True, time=0)
    assert [r.body for r in records if isinstance(r, Observation)] == [two]
    (resync,) = [r for r in records if isinstance(r, Notice)]
    assert resync.code == "resync"
    # Skipped bytes are the rest of the cut frame; the body frames after it are valid
    # but belong to a message whose method we never saw, and are dropped silently.
    assert conn.skipped_bytes == resync.count > 0


def test_tcp_gap_drops_in_flight_message_and_recovers() -> None:
    msgs = bodies(10, 7)
    frames = [publish(1, b) for b in msgs]
    conn = AmqpConnection(CONN)
    records = conn.feed(b"".join(frames[:3]) + frames[3][:500], from_client=True, time=0)
    lost = len(frames[3]) - 500 - 20  # the gap eats all of message 3 but its last 20 bytes
    assert lost > 0
    records += conn.gap(from_client=True, lost=lost, time=1)
    records += conn.feed(frames[3][-20:] + b"".join(frames[4:]), from_client=True, time=2)
    got = [r.body for r in records if isinstance(r, Observation)]
    assert got[:3] == msgs[:3]
    assert got[3:] == msgs[4:]
    codes = [r.code for r in records if isinstance(r, Notice)]
    assert codes[0] == "tcp_gap"
    assert "garbage" not in codes


def test_garbage_between_messages_is_one_notice_and_later_messages_survive() -> None:
    stream = publish(1, b"first") + b"\x00\x01\x02\x03" * 50 + publish(1, b"second")
    records = AmqpConnection(CONN).feed(stream, from_client=True, time=0)
    assert [r.body for r in records if isinstance(r, Observation)] == [b"first", b"second"]
    assert [r.code for r in records if isinstance(r, Notice)] == ["garbage", "resync"]


def test_random_bytes_never_become_observations() -> None:
    rnd = random.Random(42)
    noise = bytes(rnd.randrange(256) for _ in range(200_000))
    conn = AmqpConnection(CONN, mid_stream=True)
    records = []
    for i in range(0, len(noise), 1460):
        records += conn.feed(noise[i : i + 1460], from_client=True, time=0)
    assert not any(isinstance(r, Observation) for r in records)


def test_other_amqp_version_header_is_a_notice() -> None:
    conn = AmqpConnection(CONN)
    records = conn.feed(b"AMQP\x00\x01\x00\x00" + b"\x00" * 30, from_client=True, time=0)
    assert [(r.code, "1.0.0" in r.message) for r in records] == [("amqp_version", True)]
    assert conn.feed(publish(1, b"x"), from_client=True, time=0) == []


def test_method_frame_after_error_in_strict_decoder_is_not_lost() -> None:
    m = pika.frame.Method(1, pika.spec.Basic.Ack(delivery_tag=5)).marshal()
    decoder = FrameDecoder()
    (frame,) = decoder.feed(m + b"\x09")
    assert isinstance(frame, MethodFrame) and frame.arguments["delivery_tag"] == 5
    with pytest.raises(FrameError):
        decoder.feed(b"\x00" * 8)


def test_frame_whose_arguments_do_not_decode_is_skipped_not_looped_on() -> None:
    # A well-framed Basic.Publish whose exchange shortstr claims 200 bytes: framing
    # validates, arguments do not. The recovering decoder must move past it.
    bad = b"\x01\x00\x01\x00\x00\x00\x07\x00\x3c\x00\x28\x00\x00\xc8\xce"
    good = pika.frame.Method(1, pika.spec.Basic.Ack(delivery_tag=3)).marshal()
    decoder = FrameDecoder(recover=True)
    events = decoder.feed(bad + good)
    assert [type(e) for e in events] == [Desync, Resync, MethodFrame]
    assert "cannot decode" in events[0].reason
    assert events[-1].arguments["delivery_tag"] == 3
    assert decoder.skipped_bytes == len(bad)


def test_frame_over_the_negotiated_frame_max_is_garbage_after_tune_ok() -> None:
    tune_ok = pika.frame.Method(
        0, pika.spec.Connection.TuneOk(channel_max=10, frame_max=4096, heartbeat=0)
    ).marshal()
    too_big = publish(1, b"q" * 6000, frame_max=8192)  # one 6000-byte body frame
    fits = publish(1, b"ok", frame_max=4096)
    conn = AmqpConnection(CONN)
    records = conn.feed(tune_ok + too_big + fits, from_client=True, time=0)
    assert conn.frame_max == 4096
    assert [r.body for r in records if isinstance(r, Observation)] == [b"ok"]
    codes = [r.code for r in records if isinstance(r, Notice)]
    assert codes[0] == "garbage" and "exceeds the limit" in records[0].message


@pytest.mark.parametrize("seed", range(40))
def test_corrupted_stream_never_raises_from_a_recovering_connection(seed: int) -> None:
    import struct

    rnd = random.Random(seed)
    table = b"\x01Td" + struct.pack(">d", 1.5) + b"\x01tT" + struct.pack(">Q", 1700000000)
    header_payload = struct.pack(">HHQH", 60, 0, 5, 0x2000) + struct.pack(">I", len(table)) + table
    header = b"\x02\x00\x01" + struct.pack(">I", len(header_payload)) + header_payload + b"\xce"
    method = pika.frame.Method(1, pika.spec.Basic.Publish(exchange="e", routing_key="k")).marshal()
    one = method + header + pika.frame.Body(1, b"hello").marshal()
    stream = bytearray(one * 30)
    for _ in range(rnd.randrange(1, 30)):
        stream[rnd.randrange(len(stream))] = rnd.randrange(256)
    conn = AmqpConnection(CONN)
    records = []
    for i in range(0, len(stream), 97):
        records += conn.feed(bytes(stream[i : i + 97]), from_client=True, time=0)
    observed = [r for r in records if isinstance(r, Observation)]
    assert all(o.body_size == len(o.body) for o in observed)
    assert {o.body for o in observed} <= {bytes(stream[j : j + 5]) for j in range(len(stream))}
