"""``busdoc diff`` and ``busdoc validate``: the interface as a contract, checked in CI.

Exit codes: 0 no breaking change / no violation, 1 found, 2 bad input (one line on
stderr). The rules live in ``busdoc.reports.diff`` and ``busdoc.reports.validate``.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from busdoc.errors import InputError


class Format(StrEnum):
    markdown = "markdown"
    json = "json"


FormatOption = Annotated[
    Format, typer.Option("--format", help="markdown for people, json for scripts.")
]
_SQLITE_MAGIC = b"SQLite format 3\x00"


def load_catalog(source: str) -> dict[str, Any]:
    """A catalog document from a ``busdoc infer --format json`` file, or inferred from a
    store (a SQLite file or a database URL) with the same incremental pass as ``infer``."""
    if "://" not in source:
        try:
            with open(source, "rb") as fh:
                head = fh.read(16)
        except FileNotFoundError:
            raise InputError(f"{source}: no such catalog file or store") from None
        except IsADirectoryError:
            raise InputError(f"{source}: a directory, not a catalog file or store") from None
        if head != _SQLITE_MAGIC:
            return _read_catalog_file(source)
    from busdoc.inference.incremental import update_catalog
    from busdoc.storage import open_store

    store = open_store(source, create=False)
    try:
        return update_catalog(store).to_json()
    finally:
        store.close()


def _read_catalog_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON catalog or a store ({exc})") from None
    if not (isinstance(doc, dict) and isinstance(doc.get("entries"), list)
            and "catalog_version" in doc):
        raise InputError(f"{path}: JSON but not a busdoc catalog (no catalog_version/entries)")
    if doc["catalog_version"] != 1:
        raise InputError(f"{path}: catalog_version {doc['catalog_version']!r}, "
                         "this busdoc reads version 1")
    return doc


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def diff(
    old: Annotated[str, typer.Argument(help="Catalog .json file, or a store (path or URL).",
                                       show_default=False)],
    new: Annotated[str, typer.Argument(help="Catalog .json file, or a store (path or URL).",
                                       show_default=False)],
    fmt: FormatOption = Format.markdown,
) -> None:
    """Compare two interface catalogs: what changed and whom it breaks.

    Each change is labelled for senders (OLD senders to NEW receivers) and receivers
    (NEW senders to OLD receivers); shapes changed without a version bump are called
    out. Exit 1 when any change is breaking.
    """
    from busdoc.reports.diff import diff_catalogs, render_markdown

    result = diff_catalogs(load_catalog(old), load_catalog(new),
                           old_label=os.path.basename(old.rstrip("/")) or old,
                           new_label=os.path.basename(new.rstrip("/")) or new)
    if fmt is Format.json:
        _emit(json.dumps(result.to_json(), indent=1, sort_keys=True))
    else:
        _emit(render_markdown(result))
    if result.breaking:
        raise typer.Exit(1)


def validate(
    catalog: Annotated[str, typer.Option("--catalog", help="The contract: a catalog .json "
                                         "file (or a store to infer it from).",
                                         show_default=False)],
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="BUSDOC_DB", show_default=False,
                     help="Store holding the traffic to check: a SQLite file path "
                     "(default ./busdoc.db) or a SQLAlchemy URL."),
    ] = None,
    fmt: FormatOption = Format.markdown,
) -> None:
    """Check stored traffic against a catalog: violations per method, with examples.

    Values never seen before are warnings; they become violations only where the
    catalog marks the field "x-busdoc-closed": true. Exit 1 on any violation.
    """
    from busdoc.reports.validate import render_markdown, validate_messages
    from busdoc.storage import open_store

    contract = load_catalog(catalog)
    store = open_store(db, create=False)
    try:
        report = validate_messages(contract, store.iter_messages())
    finally:
        store.close()
    if fmt is Format.json:
        _emit(json.dumps(report.to_json(), indent=1, sort_keys=True))
    else:
        _emit(render_markdown(report, os.path.basename(catalog)))
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer, capture_app: typer.Typer) -> None:
    app.command("diff")(diff)
    app.command("validate")(validate)
