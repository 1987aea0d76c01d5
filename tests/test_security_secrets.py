"""Secrets stay out: the store's raw bytes and every output format, scanned.

The oslo capture fixture (``tests/captures/oslo_rpc.pcap``) carries the secrets a real
OpenStack bus does: a Keystone token in every context, an ``admin_password`` argument and
a cell ``transport_url`` with a password. Its manifest lists them; none may reach the
SQLite file (nor its ``-wal``/``-shm``), ``busdoc export`` or any report format. The
``--no-redact`` run is the control that proves the scan finds them when they are there.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from busdoc.reports import FORMATS
from busdoc.storage import open_store
from busdoc.storage.ingest import import_captures
from busdoc.storage.redact import DEFAULT_RULES, Redactor
from busdoc.storage.schema import messages

CAPTURES = Path(__file__).parent / "captures"
OSLO = CAPTURES / "oslo_rpc.pcap"
SECRETS: list[str] = json.loads((CAPTURES / "oslo_rpc.json").read_text())["secrets"]
USER_ID = "c0ffee00c0ffee00c0ffee00c0ffee00"  # the oslo context's user id: not a secret


def busdoc(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "BUSDOC_DB"}
    return subprocess.run(
        [sys.executable, "-m", "busdoc", *args],
        cwd=cwd, capture_output=True, env=env, timeout=120,
    )


def secrets_in(data: bytes) -> list[str]:
    """Every secret found in ``data``, plain or as the JSON-in-JSON escaping writes it."""
    found = []
    for secret in SECRETS:
        forms = {secret.encode(), json.dumps(secret)[1:-1].encode(),
                 json.dumps(json.dumps(secret)[1:-1])[1:-1].encode()}
        if any(form in data for form in forms):
            found.append(secret)
    return found


def store_files(db: Path) -> list[Path]:
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


@pytest.fixture(scope="module")
def redacted_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("redacted")
    result = busdoc("capture", "pcap", "-q", "--db", "s.db", str(OSLO), cwd=work)
    assert result.returncode == 0, result.stderr
    return work


def test_manifest_lists_the_secrets_the_capture_carries() -> None:
    raw = OSLO.read_bytes()
    assert len(SECRETS) >= 3
    assert secrets_in(raw) == SECRETS  # the capture really holds every one


def test_store_bytes_hold_no_secret_while_the_wal_is_live(tmp_path: Path) -> None:
    """Scanned with the store still open, so the -wal and -shm files exist too."""
    db = tmp_path / "s.db"
    store = open_store(str(db))
    try:
        summary = import_captures(store, [str(OSLO)], redactor=Redactor(DEFAULT_RULES))
        assert summary.messages == 48
        files = store_files(db)
        assert {p.name for p in files} >= {"s.db", "s.db-wal"}
        for path in files:
            assert secrets_in(path.read_bytes()) == [], path.name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    finally:
        store.close()
    for path in store_files(db):
        assert secrets_in(path.read_bytes()) == [], path.name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_store_is_owner_only_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = open_store(str(tmp_path / "open.db"))
        try:
            store.stats()
            modes = {p.name: stat.S_IMODE(p.stat().st_mode)
                     for p in store_files(tmp_path / "open.db")}
        finally:
            store.close()
    finally:
        os.umask(old)
    assert modes and set(modes.values()) == {0o600}, modes


def test_export_holds_no_secret(redacted_store: Path) -> None:
    result = busdoc("export", "--db", "s.db", cwd=redacted_store)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(b"\n") == 48
    assert secrets_in(result.stdout + result.stderr) == []
    assert b'"redacted":[{"path":' in result.stdout


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_report_format_holds_no_secret(redacted_store: Path, fmt: str) -> None:
    out = redacted_store / f"out-{fmt}"
    result = busdoc("infer", "--db", "s.db", "--format", fmt, "-o", str(out), cwd=redacted_store)
    assert result.returncode == 0, result.stderr
    files = [out] if out.is_file() else [p for p in out.rglob("*") if p.is_file()]
    assert files
    data = b"".join(p.read_bytes() for p in files)
    assert len(data) > 1000
    assert secrets_in(data + result.stdout + result.stderr) == []


def test_markdown_marks_redacted_fields_with_type_format_and_length_class(
    redacted_store: Path,
) -> None:
    result = busdoc("infer", "--db", "s.db", "--format", "markdown", cwd=redacted_store)
    text = result.stdout.decode()
    rows = {line.split("`")[1]: line for line in text.splitlines()
            if line.startswith(("| `admin_password`", "| `transport_url`", "| `auth_token`"))}
    assert "redacted (secret): 16-31 chars" in rows["admin_password"]
    assert "redacted (secret): URL, 32-63 chars" in rows["transport_url"]
    assert "redacted (secret): fernet token, 64-127 chars" in rows["auth_token"]
    for row in rows.values():
        assert "| string |" in row


def test_store_keeps_the_shape_of_each_secret_not_its_length(redacted_store: Path) -> None:
    store = open_store(str(redacted_store / "s.db"), create=False)
    try:
        shapes = {(r.path.rsplit("/", 1)[-1], r.json_type, r.format, r.length_class)
                  for m in store.iter_messages() for r in m.redactions}
        with store.engine.connect() as conn:
            raw = conn.execute(select(messages.c.redactions)
                               .where(messages.c.redactions.is_not(None))).scalars().all()
    finally:
        store.close()
    # The token is a Keystone fernet token (100 characters in this capture), the
    # password has no format, the transport URL is one.
    assert shapes == {
        ("_context_auth_token", "string", "fernet", "64-127"),
        ("admin_password", "string", None, "16-31"),
        ("transport_url", "string", "url", "32-63"),
    }
    rows = [row for column in raw for row in json.loads(column)]
    # 24 request contexts, 4 + 3 admin passwords, 2 transport URLs.
    assert len(rows) == 33 and all(len(row) == 4 for row in rows)
    # No number at all in the column: nothing that could be a length.
    assert not [v for row in rows for v in row if isinstance(v, int)]


def test_export_shows_shape_hints_and_no_length(redacted_store: Path) -> None:
    result = busdoc("export", "--db", "s.db", cwd=redacted_store)
    entries = [r for line in result.stdout.splitlines() for r in json.loads(line)["redacted"]]
    assert entries
    assert {tuple(sorted(r)) for r in entries} == {("format", "length_class", "path", "type")}
    assert {r["format"] for r in entries} == {"fernet", None, "url"}


def test_catalog_has_no_exact_length_for_a_redacted_field(redacted_store: Path) -> None:
    result = busdoc("infer", "--db", "s.db", "--format", "json", cwd=redacted_store)
    redacted: list[dict] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("x-busdoc-redacted"):
                redacted.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(result.stdout))
    assert len(redacted) >= 4
    for node in redacted:
        assert "x-busdoc-min-length" not in node and "x-busdoc-max-length" not in node
        assert node["x-busdoc-redacted-length"] in ("16-31", "32-63", "64-127")



def test_json_catalog_counts_redactions(redacted_store: Path) -> None:
    result = busdoc("infer", "--db", "s.db", "--format", "json", cwd=redacted_store)
    assert result.stdout.count(b'"x-busdoc-redacted"') >= 4


def test_no_redact_keeps_secrets_and_warns(tmp_path: Path) -> None:
    """The control: the same scan finds every secret when redaction is off."""
    result = busdoc("capture", "pcap", "-q", "--no-redact", "--db", "raw.db", str(OSLO),
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert b"warning: --no-redact" in result.stderr
    exported = busdoc("export", "--db", "raw.db", cwd=tmp_path).stdout
    assert secrets_in(exported) == SECRETS
    assert secrets_in((tmp_path / "raw.db").read_bytes()) == SECRETS


def test_redact_option_adds_a_rule(tmp_path: Path) -> None:
    plain = busdoc("capture", "pcap", "-q", "--db", "a.db", str(OSLO), cwd=tmp_path)
    extra = busdoc("capture", "pcap", "-q", "--redact", "user_id$", "--db", "b.db", str(OSLO),
                   cwd=tmp_path)
    assert plain.returncode == extra.returncode == 0
    assert USER_ID.encode() in busdoc("export", "--db", "a.db", cwd=tmp_path).stdout
    exported = busdoc("export", "--db", "b.db", cwd=tmp_path).stdout
    assert USER_ID.encode() not in exported
    assert b"/_context_user_id" in exported
    assert USER_ID.encode() not in (tmp_path / "b.db").read_bytes()


def test_bad_redact_pattern_is_one_line_error(tmp_path: Path) -> None:
    result = busdoc("capture", "pcap", "-q", "--redact", "(", "--db", "c.db", str(OSLO),
                    cwd=tmp_path)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
