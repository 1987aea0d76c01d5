"""The import as a user runs it: several files, rotated captures, re-imports."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from busdoc.sniffer.pcap import open_capture
from busdoc.storage import open_store
from busdoc.storage.ingest import import_captures
from busdoc.storage.redact import Redactor
from busdoc.storage.store import Store

CAPTURES = Path(__file__).parent / "captures"
OSLO = CAPTURES / "oslo_rpc.pcap"


def _manifest(name: str) -> dict:
    return json.loads((CAPTURES / f"{name}.json").read_text())


def _rotate(source: Path, out_dir: Path, parts: int) -> list[Path]:
    """Cut a pcap into ``parts`` files of consecutive packets, as ``tcpdump -C`` would."""
    records = list(open_capture(source))
    linktype = records[0].linktype
    size = -(-len(records) // parts)
    files = []
    for n in range(parts):
        path = out_dir / f"rotated{n}.pcap"
        with open(path, "wb") as fh:
            fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
            for rec in records[n * size:(n + 1) * size]:
                sec = int(rec.time)
                usec = round((rec.time - sec) * 1e6)
                fh.write(struct.pack("<IIII", sec, usec, len(rec.data), rec.orig_len))
                fh.write(rec.data)
        files.append(path)
    return files


def _bodies(store: Store) -> list[tuple[str, str, bytes, int]]:
    return sorted(
        (m.exchange, m.routing_key, m.body, len(m.observations)) for m in store.iter_messages()
    )


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(str(tmp_path / "s.db"))
    yield s
    s.close()


def test_paths_may_be_path_objects_and_counts_match_what_clients_sent(store: Store) -> None:
    summary = import_captures(store, [OSLO], redactor=Redactor())
    counts = _manifest("oslo_rpc")["counts"]
    assert summary.observations["publish"] == counts["publish"]
    assert summary.observations["deliver"] == counts["deliver"]
    assert store.stats()["messages"] == len(_manifest("oslo_rpc")["messages"])


def test_rotated_files_in_any_order_give_the_same_messages_as_one_file(
    tmp_path: Path, store: Store
) -> None:
    whole = open_store(str(tmp_path / "whole.db"))
    try:
        import_captures(whole, [OSLO], redactor=Redactor())
        expected = _bodies(whole)
    finally:
        whole.close()
    parts = _rotate(OSLO, tmp_path, 3)
    summary = import_captures(store, [parts[2], parts[0], parts[1]], redactor=Redactor())
    assert [f.status for f in summary.files] == ["imported"] * 3
    assert _bodies(store) == expected
    assert not summary.notices.get("tcp_gap")


def test_reimport_adds_nothing_and_a_new_piece_continues_from_the_old_ones(
    tmp_path: Path, store: Store
) -> None:
    parts = _rotate(OSLO, tmp_path, 3)
    import_captures(store, parts[:2], redactor=Redactor())
    again = import_captures(store, parts[:2], redactor=Redactor())
    assert again.messages == 0
    assert [f.status for f in again.files] == ["already imported"] * 2
    # The third piece alone still decodes: the first two feed the decoder's state.
    import_captures(store, parts, redactor=Redactor())
    whole = open_store(str(tmp_path / "whole.db"))
    try:
        import_captures(whole, [OSLO], redactor=Redactor())
        assert _bodies(store) == _bodies(whole)
    finally:
        whole.close()


def test_a_bad_file_among_good_ones_fails_the_command_but_keeps_the_rest(
    tmp_path: Path, store: Store
) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all" * 10)
    summary = import_captures(store, [junk, OSLO], redactor=Redactor())
    assert summary.failed()
    assert {f.name: f.status for f in summary.files} == {
        str(junk): "failed",
        str(OSLO): "imported",
    }
    assert store.stats()["publishes"] == _manifest("oslo_rpc")["counts"]["publish"]


def test_the_import_leaves_garbage_collection_as_it_found_it(store: Store, tmp_path: Path) -> None:
    import gc

    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    import_captures(store, [OSLO], redactor=Redactor())
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)
    # Also when the import fails half way.
    broken = tmp_path / "cut.pcap"
    broken.write_bytes(OSLO.read_bytes()[:-100])
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\xff" * 200)
    import_captures(store, [broken, garbage], redactor=Redactor())
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, frozen)
