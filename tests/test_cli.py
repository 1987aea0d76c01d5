"""The command line contract: help that teaches, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BUSDOC = [sys.executable, "-m", "busdoc"]
COMMANDS = [
    ["capture"],
    ["capture", "pcap"],
    ["capture", "firehose"],
    ["capture", "iface"],
    ["capture", "tracing-log"],
    ["stats"],
    ["export"],
    ["infer"],
    ["dashboard"],
    ["diff"],
    ["validate"],
    ["doctor"],
    ["prune"],
]


def run(*args: str, cwd: Path | None = None, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    full_env.update(env or {})
    return subprocess.run(
        [*BUSDOC, *args], cwd=cwd, input=stdin.decode("latin-1") if stdin else None,
        capture_output=True, text=True, env=full_env, timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_version_names_the_store_schema() -> None:
    from busdoc.storage import SCHEMA_VERSION

    result = run("--version")
    assert result.returncode == 0
    assert f"store schema {SCHEMA_VERSION}" in result.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_a_description(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    # A sentence of its own beyond the usage line and the options.
    body = result.stdout.split("Options")[0]
    assert len(body.split()) > 8


def test_capture_pcap_help_shows_the_stdin_example() -> None:
    assert "busdoc capture pcap -" in run("capture", "pcap", "--help").stdout


def test_non_capture_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not a capture\n" * 10)
    result = run("capture", "pcap", str(junk), "--db", str(tmp_path / "s.db"), "-q")
    assert_one_line_error(result, "notes.txt")


def test_empty_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    result = run("capture", "pcap", str(empty), "--db", str(tmp_path / "s.db"), "-q")
    assert_one_line_error(result, "empty.pcap")


def test_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("capture", "pcap", str(tmp_path), "--db", str(tmp_path / "s.db"), "-q")
    assert_one_line_error(result, "directory")


def test_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("capture", "pcap", str(tmp_path / "nope.pcap"), "--db",
                 str(tmp_path / "s.db"), "-q")
    assert_one_line_error(result, "nope.pcap")


def test_unwritable_store_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("stats", "--db", str(tmp_path / "missing-dir" / "sub" / "s.db"))
    assert_one_line_error(result)


def test_stats_json_on_an_empty_store_counts_zero(tmp_path: Path) -> None:
    result = run("stats", "--db", str(tmp_path / "s.db"), "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    for key in ("messages", "publishes", "deliveries"):
        assert counts[key] == 0


def test_db_comes_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "from-env.db"
    result = run("stats", "--json", env={"BUSDOC_DB": str(db)})
    assert result.returncode == 0, result.stderr
    assert db.exists()


def test_infer_on_an_empty_store_says_what_to_run_first(tmp_path: Path) -> None:
    result = run("infer", "--db", str(tmp_path / "s.db"))
    assert result.returncode == 0, result.stderr
    assert "busdoc capture pcap" in result.stdout
