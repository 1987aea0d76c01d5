"""Faults while writing the store: kill -9, a full disk, a lock held by another process.

Each fault is injected into the real command line (``python -m busdoc``) writing a real
SQLite store; afterwards the store is opened and checked row by row.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
OSLO = ROOT / "tests" / "captures" / "oslo_rpc.pcap"


def busdoc(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    return subprocess.run([sys.executable, "-m", "busdoc", *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def counts(db: Path) -> dict[str, object]:
    """What a reader sees, and the checks that the store is whole."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            "integrity": con.execute("PRAGMA integrity_check").fetchone()[0],
            "messages": con.execute("SELECT count(*) FROM messages").fetchone()[0],
            "observations": con.execute("SELECT count(*) FROM observations").fetchone()[0],
            # a message without observations, or an observation without its message
            "orphans": con.execute(
                "SELECT (SELECT count(*) FROM messages m WHERE NOT EXISTS "
                " (SELECT 1 FROM observations o WHERE o.message_id = m.id))"
                " + (SELECT count(*) FROM observations o WHERE NOT EXISTS "
                " (SELECT 1 FROM messages m WHERE m.id = o.message_id))"
            ).fetchone()[0],
            # a body cut short without being marked truncated
            "short_bodies": con.execute(
                "SELECT count(*) FROM messages WHERE NOT truncated AND redactions IS NULL"
                " AND length(body) != body_size"
            ).fetchone()[0],
            "duplicates": con.execute(
                "SELECT count(*) FROM (SELECT 1 FROM observations GROUP BY run_id, connection,"
                " channel, kind, time, delivery_tag, message_id HAVING count(*) > 1)"
            ).fetchone()[0],
            "runs": con.execute("SELECT status FROM runs ORDER BY id").fetchall(),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def big_pcap(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A synthetic capture large enough that its import spans several batches."""
    out = tmp_path_factory.mktemp("big") / "big.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_pcap.py"), str(out),
                    "--messages", "12000", "--seed", "3"], check=True, capture_output=True,
                   timeout=300)
    sidecar = json.loads(Path(f"{out}.json").read_text())
    return out, sidecar


@pytest.mark.slow
def test_kill_9_mid_import_leaves_a_whole_store_and_a_rerun_completes_it(
    big_pcap: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    pcap, truth = big_pcap
    db = tmp_path / "s.db"
    env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    proc = subprocess.Popen([sys.executable, "-m", "busdoc", "capture", "pcap", "-q", "--db",
                             str(db), str(pcap)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    committed = 0
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    committed = counts(db)["messages"]  # type: ignore[assignment]
                except sqlite3.OperationalError:
                    committed = 0  # schema not created yet
            if committed:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    assert 0 < committed < truth["distinct_messages"]

    after_kill = counts(db)
    assert after_kill["integrity"] == "ok"
    assert after_kill["runs"] == [("running",)]
    assert after_kill["orphans"] == 0 and after_kill["short_bodies"] == 0
    assert 0 < after_kill["messages"] < truth["distinct_messages"]  # type: ignore[operator]

    result = busdoc("capture", "pcap", "-q", "--json", "--db", str(db), str(pcap), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    final = counts(db)
    assert final["integrity"] == "ok"
    assert final["runs"] == [("complete",)]
    assert final["messages"] == truth["distinct_messages"]
    assert final["observations"] == truth["publish"] + truth["deliver"]
    assert final["orphans"] == final["short_bodies"] == final["duplicates"] == 0

    again = busdoc("capture", "pcap", "-q", "--json", "--db", str(db), str(pcap), cwd=tmp_path)
    assert json.loads(again.stdout)["messages"] == 0
    assert counts(db)["observations"] == truth["publish"] + truth["deliver"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: room for a small store and its WAL (64 KiB pages), not a big one."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.slow
def test_disk_full_is_one_line_exit_2_and_keeps_what_was_committed(
    small_disk: Path, big_pcap: tuple[Path, dict[str, int]]
) -> None:
    first = busdoc("capture", "pcap", "-q", "--db", "s.db", str(OSLO), cwd=small_disk)
    assert first.returncode == 0, first.stderr
    before = counts(small_disk / "s.db")
    assert before["messages"] == 48

    full = busdoc("capture", "pcap", "-q", "--db", "s.db", str(big_pcap[0]), cwd=small_disk)
    assert_one_line_error(full, "disk is full")

    after = counts(small_disk / "s.db")
    assert after["integrity"] == "ok"
    assert after["runs"][0] == ("complete",)
    assert after["orphans"] == 0 and after["short_bodies"] == 0
    oslo_messages = sqlite3.connect(small_disk / "s.db").execute(
        "SELECT count(*) FROM messages WHERE run_id = 1").fetchone()[0]
    assert oslo_messages == 48
    exported = busdoc("export", "--db", "s.db", cwd=small_disk)
    assert exported.returncode == 0
    assert exported.stdout.count("\n") == after["messages"]


HOLD_LOCK = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
con.execute("INSERT INTO meta(key, value) VALUES ('lock-test', 'x')")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
print("released", flush=True)
"""


def _hold_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_store_locked_past_the_busy_timeout_is_one_line_exit_2(tmp_path: Path) -> None:
    assert busdoc("capture", "pcap", "-q", "--db", "s.db", str(OSLO), cwd=tmp_path).returncode == 0
    holder = _hold_lock(tmp_path / "s.db", 60)
    try:
        result = busdoc("capture", "pcap", "-q", "--db", "s.db",
                        str(ROOT / "tests" / "captures" / "any_cooked.pcap"), cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert_one_line_error(result, "locked")
    after = counts(tmp_path / "s.db")
    assert after["integrity"] == "ok" and after["messages"] == 48
    retry = busdoc("capture", "pcap", "-q", "--db", "s.db",
                   str(ROOT / "tests" / "captures" / "any_cooked.pcap"), cwd=tmp_path)
    assert retry.returncode == 0, retry.stderr
    assert counts(tmp_path / "s.db")["messages"] == 52


def test_store_locked_briefly_is_waited_for(tmp_path: Path) -> None:
    assert busdoc("capture", "pcap", "-q", "--db", "s.db", str(OSLO), cwd=tmp_path).returncode == 0
    holder = _hold_lock(tmp_path / "s.db", 1.5)
    try:
        result = busdoc("capture", "pcap", "-q", "--db", "s.db",
                        str(ROOT / "tests" / "captures" / "any_cooked.pcap"), cwd=tmp_path)
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
    assert result.returncode == 0, result.stderr
    assert counts(tmp_path / "s.db")["messages"] == 52
