"""``busdoc dashboard``: browse the inferred interface in the terminal.

Textual is imported inside the command, so ``busdoc --help`` stays fast. A dashboard
needs a terminal on both ends: piped or redirected, it refuses in one line and points
to ``busdoc infer``, which writes the same catalog as text.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from busdoc.errors import InputError
from busdoc.options import DbOption


def dashboard(
    db: DbOption = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="Keep inferring: fold messages a capture writes into the catalog every "
            "few seconds (the same incremental pass as busdoc infer).",
        ),
    ] = False,
    light: Annotated[
        bool, typer.Option("--light", help="Start with the light theme (d toggles).")
    ] = False,
) -> None:
    """Browse services, topics and methods with their schemas, failures and samples.

    Reads the catalog busdoc infer keeps in the store. Keys: / filter, s sort,
    r reverse, t tree, Enter open, Esc back, d theme, q quit.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError(
            "busdoc dashboard needs a terminal; for text output run `busdoc infer` "
            "(--format markdown, json, html)"
        )
    from busdoc.reports.dashboard.app import DashboardApp
    from busdoc.storage import open_store

    store = open_store(db, create=False)
    try:
        DashboardApp(store, watch=watch, dark=not light).run()
    finally:
        store.close()


def register(app: typer.Typer, capture_app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
