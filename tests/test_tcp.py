"""Per-direction TCP reassembly: order, retransmits, overlaps, gaps, wrap, endings, eviction."""

from __future__ import annotations

import pytest

from busdoc.sniffer.packet import ACK, FIN, PSH, RST, SYN, TcpSegment
from busdoc.sniffer.tcp import (
    StreamData,
    StreamEvent,
    StreamGap,
    StreamStart,
    TcpReassembler,
)

CLIENT = ("10.0.0.1", 40000, "10.0.0.2", 5672)
SERVER = ("10.0.0.2", 5672, "10.0.0.1", 40000)


def seg(
    seq: int,
    data: bytes = b"",
    flags: int = ACK | PSH,
    ack: int = 0,
    flow: tuple[str, int, str, int] = CLIENT,
) -> TcpSegment:
    return TcpSegment(flow[0], flow[2], flow[1], flow[3], seq & 0xFFFFFFFF, ack, flags, data)


def run(segments: list[TcpSegment], *, flush: bool = True, **kw: int) -> list[StreamEvent]:
    reassembler = TcpReassembler(**kw)
    events: list[StreamEvent] = []
    for i, segment in enumerate(segments):
        events += reassembler.feed(segment, float(i))
    if flush:
        events += reassembler.flush(99.0)
    return events


def shape(events: list[StreamEvent], flow: tuple[str, int, str, int] = CLIENT) -> list[object]:
    """Events of one direction as plain values: bytes, ("gap", n), ("start", syn), ("end", r)."""
    out: list[object] = []
    for event in events:
        if event.flow != flow:
            continue
        if isinstance(event, StreamData):
            if out and isinstance(out[-1], bytes):
                out[-1] += event.data
            else:
                out.append(event.data)
        elif isinstance(event, StreamGap):
            out.append(("gap", event.lost))
        elif isinstance(event, StreamStart):
            out.append(("start", event.syn))
        else:
            out.append(("end", event.reason))
    return out


def test_in_order_stream_after_syn_then_fin() -> None:
    events = run(
        [seg(100, flags=SYN), seg(101, b"hello "), seg(107, b"world"), seg(112, flags=FIN)]
    )
    assert shape(events) == [("start", True), b"hello world", ("end", "fin")]
    assert all(isinstance(e, StreamData) for e in events[1:3])  # one event per in-order segment


def test_syn_less_start_begins_at_the_first_segment_seen() -> None:
    events = run([seg(5000, b"mid-"), seg(5004, b"stream")])
    assert shape(events) == [("start", False), b"mid-stream", ("end", "eof")]


def test_syn_less_start_is_anchored_by_data_not_by_a_keepalive_probe() -> None:
    # Linux keep-alive: no payload, seq one below the next byte to send.
    events = run(
        [seg(4999, flags=ACK), seg(5000, b"data"), seg(777, flags=ACK, ack=5004, flow=SERVER)]
    )
    assert shape(events) == [("start", False), b"data", ("end", "eof")]


def test_syn_less_direction_ending_before_any_data_has_no_gap() -> None:
    events = run([seg(10, flags=ACK), seg(10, flags=FIN | ACK)])
    assert shape(events) == [("start", False), ("end", "fin")]


def test_out_of_order_segments_are_held_and_delivered_in_order() -> None:
    events = run(
        [seg(0, flags=SYN), seg(11, b"C"), seg(6, b"BBBBB"), seg(1, b"AAAAA")], flush=False
    )
    assert shape(events) == [("start", True), b"AAAAABBBBBC"]


def test_duplicates_are_dropped_and_counted() -> None:
    reassembler = TcpReassembler()
    events: list[StreamEvent] = []
    for segment in [seg(1, b"abc"), seg(1, b"abc"), seg(4, b"def"), seg(1, b"abc")]:
        events += reassembler.feed(segment, 0.0)
    assert shape(events) == [("start", False), b"abcdef"]
    assert reassembler.stats.retransmitted_bytes == 6
    assert reassembler.stats.delivered_bytes == 6


def test_overlapping_retransmit_keeps_the_bytes_seen_first() -> None:
    events = run([seg(0, b"0123456789"), seg(5, b"XXXXXabcde")], flush=False)
    assert shape(events) == [("start", False), b"0123456789abcde"]


def test_overlaps_among_held_segments_keep_the_bytes_seen_first() -> None:
    events = run(
        [
            seg(0, b"s"),
            seg(20, b"0123456789"),  # [20, 30)
            seg(25, b"XXXXXabcde"),  # [25, 35): only [30, 35) is new
            seg(20, b"YYYYYYYYYYYYYYYYf"),  # same start, longer: only [35, 37) is new
            seg(1, b"." * 19),  # fills [1, 20)
        ],
        flush=False,
    )
    assert shape(events) == [("start", False), b"s" + b"." * 19 + b"0123456789abcdeYf"]


def test_sequence_numbers_wrap_around_2_to_the_32() -> None:
    isn = 2**32 - 6
    segments = [
        seg(isn, flags=SYN),
        seg(isn + 7, b"world!"),  # wrapped: seq 1
        seg(isn + 1, b"hello "),  # seq 2**32 - 5 .. 2**32 - 1, then 0
        seg(isn + 4, b"LO WO"),  # a retransmit straddling the wrap, already delivered
        seg(isn + 13, flags=FIN),
    ]
    events = run(segments)
    assert shape(events) == [("start", True), b"hello world!", ("end", "fin")]


def test_buffer_bound_declares_the_hole_lost_and_delivers_what_was_held() -> None:
    events = run([seg(0, b"a"), seg(11, b"x" * 60), seg(71, b"y" * 60)], max_buffer_per_flow=100)
    assert shape(events) == [
        ("start", False),
        b"a",
        ("gap", 10),
        b"x" * 60 + b"y" * 60,
        ("end", "eof"),
    ]


def test_bytes_held_longer_than_max_hold_declare_the_hole_lost() -> None:
    # One segment per second of capture time; the hole opens at t=1.
    segments = [seg(0, b"a"), seg(11, b"x"), seg(12, b"y"), seg(13, b"z"), seg(14, b"!")]
    events = run(segments, flush=False, max_hold=1.5)
    assert shape(events) == [("start", False), b"a", ("gap", 10), b"xyz!"]
    gap = next(e for e in events if isinstance(e, StreamGap))
    assert gap.time == 3.0


def test_late_copy_of_bytes_declared_lost_is_dropped() -> None:
    events = run(
        [seg(0, b"a"), seg(11, b"x" * 200), seg(1, b"LATE LATE."), seg(211, b"z")],
        max_buffer_per_flow=100,
    )
    assert shape(events) == [("start", False), b"a", ("gap", 10), b"x" * 200 + b"z", ("end", "eof")]


def test_peer_acknowledging_unseen_bytes_declares_them_lost() -> None:
    events = run(
        [
            seg(0, b"req"),
            seg(13, b"after the hole"),
            seg(500, b"", flags=ACK, ack=27, flow=SERVER),  # the server got all 27 bytes
        ],
        flush=False,
    )
    assert shape(events) == [("start", False), b"req", ("gap", 10), b"after the hole"]


def test_acknowledgement_inside_a_hole_only_declares_the_bytes_before_it() -> None:
    reassembler = TcpReassembler()
    events: list[StreamEvent] = []
    for segment in [
        seg(0, b"req"),
        seg(13, b"tail"),
        seg(500, b"", flags=ACK, ack=8, flow=SERVER),  # [3, 8) lost for sure; [8, 13) may come
        seg(8, b"later"),
    ]:
        events += reassembler.feed(segment, 0.0)
    assert shape(events) == [("start", False), b"req", ("gap", 5), b"latertail"]
    assert reassembler.stats.gaps == 1 and reassembler.stats.lost_bytes == 5


def test_fin_after_a_hole_declares_it_and_ends_the_direction() -> None:
    events = run([seg(0, b"ab"), seg(10, b"cd"), seg(12, flags=FIN | ACK)], flush=False)
    assert shape(events) == [("start", False), b"ab", ("gap", 8), b"cd", ("end", "fin")]


def test_fin_beyond_everything_seen_counts_the_missing_tail() -> None:
    events = run([seg(0, b"ab"), seg(9, flags=FIN | ACK)], flush=False)
    assert shape(events) == [("start", False), b"ab", ("gap", 7), ("end", "fin")]


def test_flush_delivers_held_data_after_its_gap_and_ends_every_direction() -> None:
    events = run([seg(0, b"ab"), seg(5, b"ef"), seg(700, b"pong", flow=SERVER)])
    assert shape(events) == [("start", False), b"ab", ("gap", 3), b"ef", ("end", "eof")]
    assert shape(events, SERVER) == [("start", False), b"pong", ("end", "eof")]


def test_rst_ends_both_directions() -> None:
    events = run(
        [
            seg(0, b"ab"),
            seg(700, b"pong", flow=SERVER),
            seg(2, flags=RST),
            seg(704, b"x", flow=SERVER),
        ],
        flush=False,
    )
    assert shape(events) == [("start", False), b"ab", ("end", "rst")]
    assert shape(events, SERVER) == [("start", False), b"pong", ("end", "rst")]


def test_segments_after_fin_do_not_start_a_new_stream() -> None:
    events = run(
        [seg(0, b"ab"), seg(2, flags=FIN | ACK), seg(2, flags=FIN | ACK), seg(3, flags=ACK)]
    )
    assert shape(events) == [("start", False), b"ab", ("end", "fin")]


def test_retransmitted_syn_does_not_restart_the_stream() -> None:
    events = run([seg(50, flags=SYN), seg(50, flags=SYN), seg(51, b"x")], flush=False)
    assert shape(events) == [("start", True), b"x"]


def test_new_syn_on_a_live_flow_is_port_reuse() -> None:
    events = run([seg(50, flags=SYN), seg(51, b"old"), seg(9000, flags=SYN), seg(9001, b"new")])
    assert shape(events) == [
        ("start", True),
        b"old",
        ("end", "reused"),
        ("start", True),
        b"new",
        ("end", "eof"),
    ]


def test_new_syn_after_fin_starts_a_new_stream() -> None:
    events = run(
        [seg(50, flags=SYN), seg(51, b"old", flags=FIN | ACK), seg(7, flags=SYN), seg(8, b"new")]
    )
    assert shape(events) == [
        ("start", True),
        b"old",
        ("end", "fin"),
        ("start", True),
        b"new",
        ("end", "eof"),
    ]


def test_least_recently_seen_flow_is_evicted_with_its_held_bytes() -> None:
    flows = [("10.0.0.1", 40000 + i, "10.0.0.2", 5672) for i in range(3)]
    reassembler = TcpReassembler(max_flows=2)
    events: list[StreamEvent] = []
    events += reassembler.feed(seg(0, b"a", flow=flows[0]), 0.0)
    events += reassembler.feed(seg(5, b"held", flow=flows[0]), 1.0)
    events += reassembler.feed(seg(0, b"b", flow=flows[1]), 2.0)
    events += reassembler.feed(seg(1, b"b", flow=flows[1]), 3.0)
    events += reassembler.feed(seg(0, b"c", flow=flows[2]), 4.0)  # evicts flows[0]
    assert shape(events, flows[0]) == [
        ("start", False),
        b"a",
        ("gap", 4),
        b"held",
        ("end", "evicted"),
    ]
    assert shape(events, flows[1]) == [("start", False), b"bb"]
    assert len(reassembler) == 2 and reassembler.stats.evicted_flows == 1


def test_directions_are_independent_streams() -> None:
    events = run(
        [
            seg(0, flags=SYN),
            seg(900, flags=SYN | ACK, ack=1, flow=SERVER),
            seg(1, b"call"),
            seg(901, b"reply", flow=SERVER),
        ],
        flush=False,
    )
    assert shape(events) == [("start", True), b"call"]
    assert shape(events, SERVER) == [("start", True), b"reply"]


def test_invalid_bounds_are_rejected() -> None:
    with pytest.raises(ValueError):
        TcpReassembler(max_flows=0)
