"""Several agents starting at once against one new PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys

import pytest
from brokerutil import temp_postgres_db

OPEN = (
    "import sys\n"
    "from busdoc.storage import open_store\n"
    "store = open_store(sys.argv[1])\n"
    "print(store.schema_version)\n"
)


@pytest.mark.postgres
def test_processes_opening_a_new_postgresql_store_together_all_succeed() -> None:
    from busdoc.storage import SCHEMA_VERSION

    with temp_postgres_db() as url:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN, url],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
    assert [(code, out.strip()) for code, out, _ in results] == [(0, str(SCHEMA_VERSION))] * 6, [
        err for _, _, err in results
    ]
