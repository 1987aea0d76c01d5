"""Live capture from a network interface, fed to the same decoder as pcap files.

scapy opens the ``PF_PACKET`` socket and attaches the BPF filter (``tcp port 5672``);
busdoc reads raw frames from it and builds ``PacketRecord`` values, so the TCP and AMQP
decoding is the pcap path's (``CaptureDecoder``), with ``source="iface"``.

Why ``L2ListenSocket`` and not ``L2Socket``: the latter drops every frame this host
sends (``PACKET_OUTGOING``), which on a client machine is half the conversation. On the
loopback device each frame is seen twice, once outgoing and once incoming, so there
(and only there) the outgoing copy is dropped, as libpcap does.

Link types: Linux hands Ethernet and loopback devices' frames with an Ethernet header
(``ARPHRD_LOOPBACK`` frames carry zero MAC addresses), tun-like devices raw IP. The
``any`` pseudo-device needs cooked sockets and is refused: capture with
``tcpdump -i any -w - port 5672 | busdoc capture pcap -`` instead.

Opening the socket needs root or ``CAP_NET_RAW``: without it, one ``InputError`` line.
"""

from __future__ import annotations

import logging
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from busdoc.errors import InputError
from busdoc.sniffer.capture import CaptureDecoder, CaptureStats
from busdoc.sniffer.packet import LINKTYPE_ETHERNET, LINKTYPE_RAW
from busdoc.sniffer.pcap import PacketRecord
from busdoc.sniffer.records import Record

log = logging.getLogger(__name__)

ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE
ARPHRD_IP_RAW = (ARPHRD_NONE, 0xFFFF)
"""tun devices and ``ARPHRD_VOID``: frames are bare IP packets."""

RECV_SIZE = 262_144
"""Larger than any frame: loopback segments reach 65,549 bytes with TSO."""
SOCKET_BUFFER = 32 << 20
"""Kernel receive buffer: scapy asks for 64 KiB, which a burst of large messages on a
busy host overflows in milliseconds (the kernel then drops frames, a TCP gap here)."""
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_SOL_PACKET = 263
_PACKET_STATISTICS = 6

_LINKTYPES = {ARPHRD_ETHER: LINKTYPE_ETHERNET, ARPHRD_LOOPBACK: LINKTYPE_ETHERNET}
_PACKET_OUTGOING = getattr(socket, "PACKET_OUTGOING", 4)


def bpf_filter(ports: Sequence[int]) -> str:
    """``tcp port 5672`` (or several ports joined with ``or``)."""
    return " or ".join(f"tcp port {int(p)}" for p in ports)


def linktype_for(hatype: int) -> int:
    """The pcap LINKTYPE of frames read from a device of ARP hardware type ``hatype``."""
    if hatype in _LINKTYPES:
        return _LINKTYPES[hatype]
    if hatype in ARPHRD_IP_RAW:
        return LINKTYPE_RAW
    raise InputError(
        f"cannot decode frames of this interface (ARP hardware type {hatype}); "
        "capture with tcpdump and import with `busdoc capture pcap -`"
    )


@dataclass(slots=True)
class LiveStats:
    """What a live capture saw."""

    interface: str
    frames: int = 0
    dropped_duplicates: int = 0
    kernel_drops: int = 0
    """Frames the kernel dropped because busdoc did not read them in time."""
    decoder: CaptureStats | None = None


class InterfaceCapture:
    """A capture socket on one interface; ``run()`` feeds every frame to the decoder."""

    def __init__(
        self,
        interface: str,
        *,
        ports: Sequence[int] = (5672,),
        max_body: int = 256 << 20,
    ) -> None:
        if interface == "any":
            raise InputError(
                "the 'any' pseudo-interface is not supported for live capture; name one "
                "interface, or run `tcpdump -i any -w - port 5672 | busdoc capture pcap -`"
            )
        self.interface = interface
        self.ports = tuple(ports) or (5672,)
        self.decoder = CaptureDecoder(source="iface", server_ports=self.ports, max_body=max_body)
        self.stats = LiveStats(interface=interface)
        self._socket = _open_socket(interface, bpf_filter(self.ports))
        hatype = self._socket.ins.getsockname()[3]
        self.linktype = linktype_for(hatype)
        self._loopback = hatype == ARPHRD_LOOPBACK

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> InterfaceCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        sink: Callable[[list[Record]], None],
        *,
        duration: float | None = None,
        stop_event: threading.Event | None = None,
        flush_seconds: float = 0.5,
    ) -> LiveStats:
        """Capture until ``duration`` passes or ``stop_event`` is set.

        Records go to ``sink`` in batches at least every ``flush_seconds`` (the sink
        stores them); at the end the decoder is finished, so messages whose last frame
        was captured are not held back.
        """
        stop = stop_event or threading.Event()
        started = time.monotonic()
        last_flush = started
        batch: list[Record] = []
        sock = self._socket
        linktype = self.linktype
        feed = self.decoder.feed
        while not stop.is_set():
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                break
            ready, _, _ = select.select([sock.ins], [], [], 0.1)
            if ready:
                for _ in range(256):
                    frame = self._recv()
                    if frame is None:
                        break
                    data, when = frame
                    batch += feed(PacketRecord(when, linktype, data, len(data)))
            if batch and time.monotonic() - last_flush >= flush_seconds:
                sink(batch)
                batch = []
                last_flush = time.monotonic()
        batch += self.decoder.finish()
        if batch:
            sink(batch)
        self.stats.decoder = self.decoder.stats
        self.stats.kernel_drops += _kernel_drops(sock.ins)
        return self.stats

    def _recv(self) -> tuple[bytes, float] | None:
        try:
            data, sa_ll, ts = self._socket._recv_raw(self._socket.ins, RECV_SIZE)
        except BlockingIOError:
            return None
        if not data:
            return None
        self.stats.frames += 1
        if self._loopback and sa_ll and sa_ll[2] == _PACKET_OUTGOING:
            self.stats.dropped_duplicates += 1
            return self._recv()
        return data, float(ts) if ts is not None else time.time()


def _open_socket(interface: str, bpf: str) -> Any:
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.arch.linux import L2ListenSocket
    from scapy.error import Scapy_Exception

    try:
        sock = L2ListenSocket(iface=interface, filter=bpf)
    except PermissionError:
        raise InputError(
            f"capturing on {interface} needs root or the CAP_NET_RAW capability "
            "(e.g. sudo setcap cap_net_raw+ep on the Python binary)"
        ) from None
    except OSError as e:
        if e.errno == 19:  # ENODEV
            raise InputError(f"no network interface named {interface!r}") from None
        raise InputError(f"cannot capture on {interface}: {e.strerror or e}") from None
    except Scapy_Exception as e:
        raise InputError(f"cannot capture on {interface}: {e}") from None
    except ValueError:  # scapy's interface lookup
        raise InputError(f"no network interface named {interface!r}") from None
    sock.ins.setblocking(False)
    try:  # beyond net.core.rmem_max: needs CAP_NET_ADMIN, which root has
        sock.ins.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, SOCKET_BUFFER)
    except OSError:
        sock.ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
    _kernel_drops(sock.ins)  # reading the counters resets them
    return sock


def _kernel_drops(raw: socket.socket) -> int:
    """``PACKET_STATISTICS``: (received, dropped) since the last read."""
    try:
        data = raw.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
    except OSError:
        return 0
    return int.from_bytes(data[4:8], sys.byteorder)


def default_interface() -> str:
    """scapy's idea of the main interface (the one with the default route)."""
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.config import conf

    return str(conf.iface)


__all__ = [
    "InterfaceCapture",
    "LiveStats",
    "bpf_filter",
    "default_interface",
    "linktype_for",
]
