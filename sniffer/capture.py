"""The capture pipeline: captured packets in, sniffer records out.

``PacketRecord`` (pcap.py) → ``decode_tcp`` (packet.py) → ``TcpReassembler`` (tcp.py) →
one ``AmqpConnection`` (amqp.py) per TCP connection → ``Observation`` /
``ConnectionInfo`` / ``Notice``. No I/O here: the caller iterates a capture file (or a live
socket) and feeds each packet, so the same decoder takes several rotated files in a row
(``tcpdump -C``) with connections carried across them.

Which side is the client, in order of trust:

1. the segment with SYN and no ACK was sent by the client (SYN-ACK by the server);
2. the side whose stream begins with the protocol header ``AMQP`` is the client;
3. the endpoint whose port is in ``server_ports`` is the server.

A connection is decoded as AMQP only when 2 or 3 holds; anything else on the capture
(HTTP, DNS over TCP...) is counted and ignored, so a capture filtered loosely does not
turn into a stream of garbage notices. Port 5671 is AMQPS: one "tls" notice per
connection, nothing decoded. A connection whose opening was not captured is decoded from
the first frame boundary found (``AmqpConnection(mid_stream=True)``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from busdoc.sniffer.amqp import DEFAULT_FRAME_LIMIT, AmqpConnection
from busdoc.sniffer.packet import ACK, TcpSegment, UnsupportedLinkType, decode_tcp_fields
from busdoc.sniffer.pcap import PacketRecord
from busdoc.sniffer.records import Notice, Record
from busdoc.sniffer.tcp import (
    FlowKey,
    StreamData,
    StreamEnd,
    StreamEvent,
    StreamGap,
    StreamStart,
    TcpReassembler,
)

__all__ = ["CaptureDecoder", "CaptureStats", "TLS_PORTS", "connection_key"]

_new = tuple.__new__

TLS_PORTS = frozenset({5671})
"""AMQP over TLS (IANA ``amqps``)."""

Endpoint = tuple[str, int]


def _endpoint_text(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def connection_key(client: Endpoint, server: Endpoint) -> str:
    """``"10.0.0.5:41234->10.0.0.9:5672"``; IPv6 addresses in brackets."""
    return f"{_endpoint_text(*client)}->{_endpoint_text(*server)}"


@dataclass(slots=True)
class CaptureStats:
    """Counters for one capture run (several files fed to one decoder add up)."""

    packets: int = 0
    tcp_segments: int = 0
    bytes: int = 0
    """Captured packet bytes."""
    amqp_connections: int = 0
    non_amqp_connections: int = 0
    tls_connections: int = 0
    frames: int = 0
    messages: int = 0
    """Observations emitted."""
    connection_infos: int = 0
    skipped_bytes: int = 0
    """Bytes the AMQP decoders skipped to resynchronise (garbage, cut frames)."""
    gaps: int = 0
    lost_bytes: int = 0
    """TCP payload bytes the capture never saw (from the reassembler's gaps)."""
    notices: dict[str, int] = field(default_factory=dict)
    """Notices emitted, by code."""
    first_time: float | None = None
    last_time: float | None = None


_UNDECIDED, _AMQP, _IGNORED = range(3)


class _Connection:
    """What the pipeline knows about one TCP connection (both directions)."""

    __slots__ = ("state", "client", "server", "amqp", "syn_seen", "ended", "key")

    def __init__(self) -> None:
        self.state = _UNDECIDED
        self.client: Endpoint | None = None
        self.server: Endpoint | None = None
        self.amqp: AmqpConnection | None = None
        self.syn_seen = False
        self.ended: set[Endpoint] = set()
        """Senders whose direction has ended."""
        self.key: str | None = None


class CaptureDecoder:
    """Feed captured packets one at a time; get the records they complete."""

    def __init__(
        self,
        *,
        source: str = "pcap",
        server_ports: Collection[int] = (5672,),
        max_body: int = 256 << 20,
        max_flows: int = 10_000,
        max_flow_buffer: int = 8 << 20,
        max_frame: int = DEFAULT_FRAME_LIMIT,
    ) -> None:
        """``max_flows`` and ``max_flow_buffer`` bound TCP state (directions tracked, bytes
        held behind a hole per direction): a hostile capture cannot grow memory past them."""
        self.source = source
        self.server_ports = frozenset(server_ports)
        self.max_body = max_body
        self.max_frame = max_frame
        self._stats = CaptureStats()
        self._reassembler = TcpReassembler(
            max_flows=max_flows, max_buffer_per_flow=max_flow_buffer
        )
        self._connections: dict[tuple[Endpoint, Endpoint], _Connection] = {}
        # flow (one direction) -> (connection, from_client); the hot-path lookup
        self._flows: dict[FlowKey, tuple[_Connection, bool]] = {}
        self._early_gaps: dict[FlowKey, StreamGap] = {}
        self._done_frames = 0
        self._done_skipped = 0
        self._done_messages = 0
        self._done_infos = 0
        self._done_notices: dict[str, int] = {}
        self._bad_linktypes: set[int] = set()

    @property
    def stats(self) -> CaptureStats:
        """Counters so far, including connections still open."""
        s = self._stats
        live = [c.amqp for c in self._connections.values() if c.amqp is not None]
        s.frames = self._done_frames + sum(a.frames for a in live)
        s.skipped_bytes = self._done_skipped + sum(a.skipped_bytes for a in live)
        s.messages = self._done_messages + sum(a.messages for a in live)
        s.connection_infos = self._done_infos + sum(a.infos for a in live)
        notices = dict(self._done_notices)
        for a in live:
            for code, count in a.notices.items():
                notices[code] = notices.get(code, 0) + count
        s.notices = notices
        tcp = self._reassembler.stats
        s.tcp_segments = tcp.segments
        s.gaps = tcp.gaps
        s.lost_bytes = tcp.lost_bytes
        return s

    def feed(self, rec: PacketRecord) -> list[Record]:
        """One captured packet in; the records it completes out."""
        time, linktype, data, _ = rec  # unpacking beats three attribute reads
        stats = self._stats
        stats.packets += 1
        stats.bytes += len(data)
        if stats.first_time is None:
            stats.first_time = time
        stats.last_time = time
        try:
            fields = decode_tcp_fields(linktype, data)
        except UnsupportedLinkType as exc:
            return self._unsupported(exc)
        if fields is None:
            return []
        src, dst, sport, dport, seq, _, flags, payload = fields
        key = (src, sport, dst, dport)
        if payload:
            entry = self._flows.get(key)
            if entry is not None and self._reassembler.feed_in_order(
                key, seq, flags, len(payload)
            ):
                amqp = entry[0].amqp
                return [] if amqp is None else amqp.feed_direction(payload, entry[1], time)
        elif self._reassembler.feed_in_order(key, seq, flags, 0):
            return []
        seg = _new(TcpSegment, fields)
        events = self._reassembler.feed(seg, time)
        if not events:
            return []
        out: list[Record] = []
        flows = self._flows
        for event in events:
            if type(event) is StreamData:
                entry = flows.get(event.flow)
                if entry is None:
                    entry = self._classify(event.flow, event.data, out)
                amqp = entry[0].amqp
                if amqp is not None:
                    records = amqp.feed_direction(event.data, entry[1], event.time)
                    if records:
                        if out:
                            out += records
                        else:
                            out = records
            elif type(event) is StreamStart:
                if event.syn:
                    self._note_syn(event.flow, bool(seg.flags & ACK))
            else:
                self._control(event, out)
        return out

    def finish(self) -> list[Record]:
        """End of input: flush the reassembler, report content never completed."""
        time = self._stats.last_time or 0.0
        out: list[Record] = []
        for event in self._reassembler.flush(time):
            if type(event) is StreamData:
                entry = self._flows.get(event.flow) or self._classify(event.flow, event.data, out)
                if entry[0].amqp is not None:
                    out += entry[0].amqp.feed(event.data, from_client=entry[1], time=event.time)
            else:
                self._control(event, out)
        for pair in list(self._connections):
            self._close(pair, time, out)
        return out

    # ---------------------------------------------------------------- internals

    def _unsupported(self, exc: UnsupportedLinkType) -> list[Record]:
        """A pcapng interface busdoc cannot take apart (USB, 802.11...): skip its packets.

        One notice per link type, so one odd interface among several does not abort the
        read of the others, nor repeat itself on every packet.
        """
        if exc.linktype in self._bad_linktypes:
            return []
        self._bad_linktypes.add(exc.linktype)
        notices = self._done_notices
        notices["unsupported_linktype"] = notices.get("unsupported_linktype", 0) + 1
        return [Notice(code="unsupported_linktype", message=str(exc))]


    def _connection(
        self, a: Endpoint, b: Endpoint
    ) -> tuple[tuple[Endpoint, Endpoint], _Connection]:
        pair = (a, b) if a <= b else (b, a)
        conn = self._connections.get(pair)
        if conn is None:
            conn = self._connections[pair] = _Connection()
        return pair, conn

    def _note_syn(self, flow: FlowKey, ack: bool) -> None:
        """SYN from the client, SYN-ACK from the server: the surest sign of who is who."""
        src, sport, dst, dport = flow
        _, conn = self._connection((src, sport), (dst, dport))
        if conn.state != _UNDECIDED:
            return  # a retransmitted SYN on a connection already under way
        conn.syn_seen = True
        if ack:
            conn.server, conn.client = (src, sport), (dst, dport)
        else:
            conn.client, conn.server = (src, sport), (dst, dport)

    def _classify(self, flow: FlowKey, data: bytes, out: list[Record]) -> tuple[_Connection, bool]:
        """First bytes of a direction: decide whether the connection is AMQP, and its roles."""
        src, sport, dst, dport = flow
        pair, conn = self._connection((src, sport), (dst, dport))
        sender = (src, sport)
        if conn.state == _UNDECIDED:
            self._decide(conn, sender, (dst, dport), data, out)
        from_client = conn.client == sender
        entry = (conn, from_client)
        self._flows[flow] = entry
        gap = self._early_gaps.pop(flow, None)
        if gap is not None and conn.amqp is not None:
            out += conn.amqp.gap(from_client=from_client, lost=gap.lost, time=gap.time)
        return entry

    def _decide(
        self,
        conn: _Connection,
        sender: Endpoint,
        receiver: Endpoint,
        data: bytes,
        out: list[Record],
    ) -> None:
        stats = self._stats
        if sender[1] in TLS_PORTS or receiver[1] in TLS_PORTS:
            conn.state = _IGNORED
            stats.tls_connections += 1
            client, server = (
                (conn.client, conn.server)
                if conn.client is not None and conn.server is not None
                else ((receiver, sender) if sender[1] in TLS_PORTS else (sender, receiver))
            )
            conn.key = connection_key(client, server)
            self._done_notices["tls"] = self._done_notices.get("tls", 0) + 1
            out.append(
                Notice(code="tls", message="encrypted (TLS), cannot decode", connection=conn.key)
            )
            return
        header = data.startswith(b"AMQP") if len(data) >= 4 else b"AMQP".startswith(data)
        if header and conn.client is None:
            conn.client, conn.server = sender, receiver
        elif conn.client is None:
            if receiver[1] in self.server_ports:
                conn.client, conn.server = sender, receiver
            elif sender[1] in self.server_ports:
                conn.client, conn.server = receiver, sender
        ports_match = conn.server is not None and conn.server[1] in self.server_ports
        if conn.client is None or not (header or ports_match):
            conn.state = _IGNORED
            stats.non_amqp_connections += 1
            return
        conn.state = _AMQP
        stats.amqp_connections += 1
        conn.key = connection_key(conn.client, conn.server)  # type: ignore[arg-type]
        conn.amqp = AmqpConnection(
            conn.key,
            source=self.source,
            max_body=self.max_body,
            max_frame=self.max_frame,
            mid_stream=not (conn.syn_seen or (header and sender == conn.client)),
        )

    def _control(self, event: StreamEvent, out: list[Record]) -> None:
        if isinstance(event, StreamGap):
            entry = self._flows.get(event.flow)
            if entry is None:
                # Lost before the first byte we saw: the direction starts mid-frame.
                self._early_gaps[event.flow] = event
            elif entry[0].amqp is not None:
                out += entry[0].amqp.gap(from_client=entry[1], lost=event.lost, time=event.time)
        elif isinstance(event, StreamEnd):
            src, sport, dst, dport = event.flow
            pair, conn = self._connection((src, sport), (dst, dport))
            conn.ended.add((src, sport))
            self._flows.pop(event.flow, None)
            if len(conn.ended) == 2 or event.reason in ("rst", "reused", "evicted"):
                self._close(pair, event.time, out)

    def _close(self, pair: tuple[Endpoint, Endpoint], time: float, out: list[Record]) -> None:
        conn = self._connections.pop(pair, None)
        if conn is None:
            return
        a, b = pair
        for flow in ((a[0], a[1], b[0], b[1]), (b[0], b[1], a[0], a[1])):
            self._flows.pop(flow, None)
            self._early_gaps.pop(flow, None)
        if conn.amqp is not None:
            out += conn.amqp.finish(time)
            amqp = conn.amqp
            self._done_frames += amqp.frames
            self._done_skipped += amqp.skipped_bytes
            self._done_messages += amqp.messages
            self._done_infos += amqp.infos
            for code, count in amqp.notices.items():
                self._done_notices[code] = self._done_notices.get(code, 0) + count
