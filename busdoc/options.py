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


def make_redactor(no_redact: bool, extra_rules: list[str] | None):  # noqa: ANN201
    """The redactor for ``--no-redact`` / ``--redact PATTERN``; warns when turned off."""
    import sys

    from busdoc.storage.redact import DEFAULT_RULES, Redactor

    if no_redact:
        print(
            "busdoc: warning: --no-redact: bodies and headers are stored as captured, "
            "secrets included",
            file=sys.stderr,
        )
    return Redactor([*DEFAULT_RULES, *(extra_rules or [])], enabled=not no_redact)
