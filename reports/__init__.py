"""busdoc.reports: pure renderers from a catalog (``docs/catalog.schema.json``) to files.

Every format is a function ``catalog dict -> {relative file name: text}``; one-document
formats return a single file, which the CLI prints or writes to ``-o FILE``; several
files (one JSON Schema per method) go under ``-o DIRECTORY``. Renderers are looked up
here by name and imported on first use, so the CLI stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

# format name -> (module, function) returning {file name: text}
FORMATS: dict[str, tuple[str, str]] = {
    "markdown": ("busdoc.reports.markdown", "markdown_files"),
    "json": ("busdoc.reports.catalog_json", "json_files"),
    "jsonschema": ("busdoc.reports.json_schema", "jsonschema_files"),
    "asyncapi": ("busdoc.reports.asyncapi", "asyncapi_files"),
    "html": ("busdoc.reports.html", "html_files"),
}


def render_files(catalog: Mapping[str, Any], fmt: str) -> dict[str, str]:
    """Render ``catalog`` in format ``fmt``: file name -> text (deterministic)."""
    try:
        module, function = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown report format {fmt!r}; known: {', '.join(FORMATS)}") from None
    renderer = getattr(importlib.import_module(module), function)
    files: dict[str, str] = renderer(catalog)
    return files
