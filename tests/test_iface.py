"""Live interface capture on ``lo`` against real pika traffic."""

from __future__ import annotations

import subprocess
import sys
import threading

import pika
import pytest
from brokerutil import connect, temp_vhost, wait_until

from busdoc.errors import InputError
from busdoc.sniffer.iface import InterfaceCapture, bpf_filter, linktype_for
from busdoc.sniffer.records import Observation, Record

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def test_bpf_filter_joins_ports() -> None:
    assert bpf_filter([5672]) == "tcp port 5672"
    assert bpf_filter([5672, 5673]) == "tcp port 5672 or tcp port 5673"


def test_loopback_and_ethernet_frames_are_ethernet_tun_is_raw_ip() -> None:
    assert linktype_for(772) == 1
    assert linktype_for(1) == 1
    assert linktype_for(0xFFFE) == 101
    with pytest.raises(InputError, match="ARP hardware type 24"):
        linktype_for(24)


def test_capture_on_lo_stores_exact_published_bodies() -> None:
    records: list[Record] = []
    stop = threading.Event()
    with temp_vhost() as vhost, InterfaceCapture("lo", ports=[5672]) as capture:
        done: list[object] = []
        runner = threading.Thread(
            target=lambda: done.append(capture.run(records.extend, stop_event=stop)),
            daemon=True,
        )
        runner.start()  # the socket is open already: nothing published below is missed
        bodies = [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i * 3000)) for i in range(5)]
        conn = connect(vhost, "iface-test")
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("iface-q")
        for body in bodies:
            ch.basic_publish("", "iface-q", body, pika.BasicProperties(message_id="m"))
        got = []
        while len(got) < len(bodies):
            method, _props, body = ch.basic_get("iface-q", auto_ack=True)
            if method is not None:
                got.append(body)
        conn.close()

        def published() -> list[bytes]:
            return [
                r.body for r in list(records)
                if isinstance(r, Observation) and r.kind == "publish" and r.vhost == vhost
            ]

        wait_until(lambda: len(published()) >= len(bodies), 10)
        stop.set()
        runner.join(10)

    assert published() == bodies
    gets = [r for r in records if isinstance(r, Observation) and r.kind == "get_ok"]
    assert [r.body for r in gets] == bodies
    assert all(r.source == "iface" for r in gets)
    stats = done[0]
    assert stats.dropped_duplicates > 0  # type: ignore[attr-defined]
    assert stats.kernel_drops == 0  # type: ignore[attr-defined]


def test_unknown_interface_is_one_line() -> None:
    with pytest.raises(InputError, match="no network interface named 'nosuch0'"):
        InterfaceCapture("nosuch0")


def test_any_interface_is_refused_with_the_tcpdump_alternative() -> None:
    with pytest.raises(InputError, match="tcpdump -i any"):
        InterfaceCapture("any")


def test_without_cap_net_raw_the_error_says_what_is_needed() -> None:
    code = (
        "from busdoc.sniffer.iface import InterfaceCapture\n"
        "from busdoc.errors import InputError\n"
        "try:\n    InterfaceCapture('lo')\n"
        "except InputError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert "needs root or the CAP_NET_RAW capability" in done.stdout, done.stderr
