"""Command-line options shared by several commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="BUSDOC_DB",
        help="Store: a SQLite file path (default ./busdoc.db) or a SQLAlchemy URL "
        "(postgresql://user@host/db uses psycopg 3).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
