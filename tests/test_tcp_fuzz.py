"""Properties of TCP reassembly over generated segmentations, orders and losses."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from busdoc.sniffer.packet import ACK, FIN, SYN, TcpSegment
from busdoc.sniffer.tcp import StreamData, StreamEvent, StreamGap, TcpReassembler, TcpStats

FLOW = ("10.0.0.1", 40000, "10.0.0.2", 5672)
FUZZ = settings(max_examples=150, deadline=None)


def segment(seq: int, data: bytes = b"", flags: int = ACK) -> TcpSegment:
    return TcpSegment(FLOW[0], FLOW[2], FLOW[1], FLOW[3], seq & 0xFFFFFFFF, 0, flags, data)


@st.composite
def segmented_streams(draw: st.DrawFn) -> tuple[int, bytes, list[tuple[int, int]]]:
    """An initial sequence number (often near the wrap), the bytes, and cut points."""
    isn = draw(st.one_of(st.integers(0, 2**32 - 1), st.integers(2**32 - 3000, 2**32 - 1)))
    data = draw(st.binary(min_size=1, max_size=3000))
    cuts = (
        sorted(draw(st.sets(st.integers(1, len(data) - 1), max_size=40))) if len(data) > 1 else []
    )
    bounds = [0, *cuts, len(data)]
    return isn, data, list(zip(bounds, bounds[1:], strict=False))


def feed_all(segments: list[TcpSegment], **kw: int) -> list[StreamEvent]:
    reassembler = TcpReassembler(**kw)
    events: list[StreamEvent] = []
    for seg in segments:
        events += reassembler.feed(seg, 0.0)  # no hole may time out here
    return events + reassembler.flush(1e9)


@FUZZ
@given(stream=segmented_streams(), data=st.data())
def test_any_order_with_duplicates_and_overlaps_reassembles_the_exact_bytes(
    stream: tuple[int, bytes, list[tuple[int, int]]], data: st.DataObject
) -> None:
    isn, payload, pieces = stream
    first = isn + 1
    # Retransmissions: the same pieces again, and arbitrary re-cut ranges over the stream.
    extra = data.draw(
        st.lists(st.tuples(st.integers(0, len(payload) - 1), st.integers(1, 2000)), max_size=10)
    )
    ranges = pieces + data.draw(st.lists(st.sampled_from(pieces), max_size=10))
    ranges += [(a, min(len(payload), a + n)) for a, n in extra]
    order = data.draw(st.permutations(ranges))
    segments = [segment(isn, flags=SYN)]
    segments += [segment(first + a, payload[a:b]) for a, b in order]
    segments.append(segment(first + len(payload), flags=FIN | ACK))
    events = feed_all(segments)
    assert not [e for e in events if isinstance(e, StreamGap)]
    assert b"".join(e.data for e in events if isinstance(e, StreamData)) == payload


@FUZZ
@given(stream=segmented_streams(), data=st.data(), bound=st.sampled_from([64, 1000, 8 << 20]))
def test_lost_segments_become_gaps_and_every_delivered_byte_is_in_its_place(
    stream: tuple[int, bytes, list[tuple[int, int]]], data: st.DataObject, bound: int
) -> None:
    isn, payload, pieces = stream
    first = isn + 1
    lost = data.draw(st.sets(st.sampled_from(pieces), max_size=max(0, len(pieces) - 1)))
    kept = [p for p in pieces if p not in lost]
    order = data.draw(st.permutations(kept))
    segments = [segment(isn, flags=SYN)] + [segment(first + a, payload[a:b]) for a, b in order]
    segments.append(segment(first + len(payload), flags=FIN | ACK))
    events = feed_all(segments, max_buffer_per_flow=bound)
    position = 0
    for event in events:
        if isinstance(event, StreamData):
            assert event.data == payload[position : position + len(event.data)]
            position += len(event.data)
        elif isinstance(event, StreamGap):
            assert event.lost > 0
            position += event.lost
    assert position == len(payload)
    missing = sum(b - a for a, b in lost)
    delivered = sum(len(e.data) for e in events if isinstance(e, StreamData))
    # Out-of-order bytes behind a declared gap can be lost too, never more than what is held.
    assert delivered <= len(payload) - missing
    if bound == 8 << 20:
        assert delivered == len(payload) - missing


def _via_fast_path(segments: list[TcpSegment]) -> tuple[list[StreamEvent], TcpStats]:
    """What the capture loop does: ``feed_in_order`` first, ``feed`` when it declines; a
    segment taken in order becomes the ``StreamData`` that ``feed`` would have made."""
    reassembler = TcpReassembler(max_buffer_per_flow=4000)
    events: list[StreamEvent] = []
    for seg in segments:
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        if reassembler.feed_in_order(key, seg.seq, seg.flags, len(seg.payload)):
            if seg.payload:
                events.append(StreamData(key, seg.payload, 0.0))
        else:
            events += reassembler.feed(seg, 0.0)
    return events + reassembler.flush(1e9), reassembler.stats


@FUZZ
@given(
    client=segmented_streams(),
    server=segmented_streams(),
    data=st.data(),
)
def test_the_in_order_fast_path_changes_no_event_and_no_counter(
    client: tuple[int, bytes, list[tuple[int, int]]],
    server: tuple[int, bytes, list[tuple[int, int]]],
    data: st.DataObject,
) -> None:
    """Both directions, interleaved, with losses, retransmissions and acknowledgements
    (which reveal losses): the fast path must be invisible."""
    segments: list[TcpSegment] = []
    streams = ((FLOW, client), ((FLOW[2], FLOW[3], FLOW[0], FLOW[1]), server))
    for (src, sport, dst, dport), (isn, payload, pieces) in streams:
        lost = data.draw(st.sets(st.sampled_from(pieces), max_size=len(pieces) // 2))
        again = data.draw(st.lists(st.sampled_from(pieces), max_size=4))
        mine = [(a, b) for a, b in pieces if (a, b) not in lost] + again
        first = isn + 1
        syn = TcpSegment(src, dst, sport, dport, isn, 0, SYN, b"")
        body = [
            TcpSegment(src, dst, sport, dport, (first + a) & 0xFFFFFFFF, 0, ACK, payload[a:b])
            for a, b in mine
        ]
        acks = [
            TcpSegment(src, dst, sport, dport, (first + len(payload)) & 0xFFFFFFFF,
                       data.draw(st.integers(0, 2**32 - 1)), ACK, b"")
            for _ in range(data.draw(st.integers(0, 3)))
        ]
        segments.append(syn)
        segments += data.draw(st.permutations(body + acks))
    head, rest = segments[:1], segments[1:]
    order = head + data.draw(st.permutations(rest))
    slow = TcpReassembler(max_buffer_per_flow=4000)
    expected: list[StreamEvent] = []
    for seg in order:
        expected += slow.feed(seg, 0.0)
    expected += slow.flush(1e9)
    events, stats = _via_fast_path(order)
    assert events == expected
    assert stats == slow.stats
