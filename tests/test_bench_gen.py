"""The benchmark's pcap generator writes what its sidecar says, as tshark reads it.

The benchmark's correctness check (decoded == generated) is only as good as the
generator, so an independent dissector, tshark, must find every message with its
exchange and routing key, valid checksums and clean TCP sequence analysis.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gen_pcap", BENCH / "gen_pcap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen_pcap = _load_generator()


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("gen") / "oslo.pcap"
    sidecar = gen_pcap.generate(path, messages=500, seed=7)
    return path, sidecar


def _tshark(*args: str) -> str:
    done = subprocess.run(
        ["tshark", *args], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout


def test_checksum_matches_rfc1071_worked_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2
    assert gen_pcap._ones_complement_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert gen_pcap._checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    gen_pcap.generate(a, messages=60, seed=3)
    gen_pcap.generate(b, messages=60, seed=3)
    gen_pcap.generate(c, messages=60, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_sidecar_states_the_exact_counts_and_is_written_next_to_the_pcap(
    capture: tuple[Path, dict],
) -> None:
    path, sidecar = capture
    assert json.loads(gen_pcap.sidecar_path(path).read_text()) == sidecar
    assert sidecar["messages"] == 500
    assert sidecar["publish"] + sidecar["deliver"] == 500
    assert sidecar["deliver"] > 0 and sidecar["publish"] > sidecar["deliver"]
    assert sidecar["pcap_bytes"] == path.stat().st_size


@needs_tshark
def test_tshark_finds_every_message_with_its_exchange_and_routing_key(
    capture: tuple[Path, dict],
) -> None:
    path, sidecar = capture
    out = _tshark(
        "-r", str(path), "-Y", "amqp", "-T", "fields", "-E", "occurrence=a",
        "-e", "amqp.method.class", "-e", "amqp.method.method",
        "-e", "amqp.method.arguments.exchange", "-e", "amqp.method.arguments.routing_key",
    )  # fmt: skip
    seen: list[tuple[str, str, str]] = []
    for line in out.splitlines():
        classes, methods, exchanges, keys = line.split("\t")
        # basic.publish (60.40) and basic.deliver (60.60) are the only methods written
        # that carry an exchange, so the lists line up once the others are dropped
        kinds = [
            {"40": "publish", "60": "deliver"}[m]
            for c, m in zip(classes.split(","), methods.split(","), strict=True)
            if c == "60" and m in ("40", "60")
        ]
        if not kinds:
            continue
        exchange_list, key_list = exchanges.split(","), keys.split(",")
        assert len(kinds) == len(exchange_list) == len(key_list), line
        seen.extend(zip(kinds, exchange_list, key_list, strict=True))
    assert len(seen) == sidecar["messages"]
    assert sum(kind == "deliver" for kind, _, _ in seen) == sidecar["deliver"]
    assert gen_pcap.routing_digest(seen) == sidecar["routing_digest"]
    assert any(key == "notifications.info" for _, _, key in seen)
    assert any(exchange == "" and key.startswith("reply_") for _, exchange, key in seen)


@needs_tshark
def test_tshark_sees_valid_checksums_and_no_malformed_or_tcp_trouble(
    capture: tuple[Path, dict],
) -> None:
    path, _ = capture
    problems = _tshark(
        "-r", str(path),
        "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
        "-Y", "_ws.malformed || _ws.expert.severity >= 6291456 || tcp.analysis.flags"
        " || tcp.checksum.status == 0 || ip.checksum.status == 0",
    )  # fmt: skip
    assert problems == ""
    good = _tshark(
        "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-Y", "tcp.checksum.status == 1",
    )  # fmt: skip
    assert len(good.splitlines()) == len(_tshark("-r", str(path)).splitlines())


@needs_tshark
def test_capture_mixes_segmentations_as_the_benchmark_promises(
    capture: tuple[Path, dict],
) -> None:
    path, _ = capture
    out = _tshark(
        "-r", str(path), "-T", "fields", "-e", "tcp.len", "-e", "amqp.method.method",
        "-e", "tcp.segments", "-e", "amqp.type",
    )  # fmt: skip
    lengths, several_methods, reassembled = [], 0, 0
    frame_types: list[str] = []
    for line in out.splitlines():
        length, methods, segments, types = line.split("\t")
        lengths.append(int(length))
        several_methods += methods.count(",") >= 1
        reassembled += bool(segments)
        frame_types += types.split(",")
    assert max(lengths) > gen_pcap.MSS  # coalesced segments
    assert any(0 < n < 200 for n in lengths)  # small odd ones
    assert several_methods > 0  # several messages in one segment
    assert reassembled > 0  # a message over several segments
    assert frame_types.count("3") > frame_types.count("2")  # a body over several frames
    assert "8" in frame_types  # heartbeats


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_bench_pcap", BENCH / "bench_pcap.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench_pcap = _load_harness()


def test_tshark_count_reads_routing_keys_because_the_default_exchange_is_empty(
    tmp_path: Path,
) -> None:
    tsv = tmp_path / "out.tsv"
    tsv.write_text(
        "\treply_0a\t7b7d\n"  # the default exchange prints as nothing
        "nova,\tcompute.cmp-001,reply_1b\t7b,7d\n"  # two messages in one packet
        "\t\t7b7d\n"  # a body frame alone: no message
    )
    assert bench_pcap.count_tshark_messages(tsv) == 3


def test_peak_rss_is_each_child_own_not_the_largest_so_far() -> None:
    # Linux counts a child's pages from before its exec in ru_maxrss, so a child forked
    # from this (large) pytest process would report pytest's size. The harness runs from
    # a small process, as bench_pcap.py does: measure from one.
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('b', {str(BENCH / 'bench_pcap.py')!r})\n"
        "b = importlib.util.module_from_spec(spec); sys.modules['b'] = b\n"
        "spec.loader.exec_module(b)\n"
        "big = b.run_measured([sys.executable, '-c', 'x = bytearray(300 << 20); x[-1] = 1'])\n"
        "small = b.run_measured([sys.executable, '-c', 'pass'])\n"
        "print(json.dumps([big.returncode, small.returncode,\n"
        "                  big.peak_rss_mb, small.peak_rss_mb]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    big_rc, small_rc, big_mb, small_mb = json.loads(out.stdout)
    assert big_rc == small_rc == 0
    assert big_mb > 300
    assert small_mb < 100


def test_decode_stage_fails_when_the_decoder_output_differs_from_the_sidecar(
    capture: tuple[Path, dict],
) -> None:
    pytest.importorskip("busdoc.sniffer.capture")
    path, sidecar = capture
    assert bench_pcap.bench_decode(path, sidecar).ok
    wrong = dict(sidecar, messages=sidecar["messages"] + 1, body_digest="0" * 16)
    stage = bench_pcap.bench_decode(path, wrong)
    assert not stage.ok
    assert "decoded 500 of 501" in stage.detail and "bodies differ" in stage.detail
