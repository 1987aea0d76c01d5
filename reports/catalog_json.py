"""The catalog itself as JSON: the contract other tools read (``docs/catalog.schema.json``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def render_json(catalog: Mapping[str, Any]) -> str:
    """Indented, key-sorted JSON, so two catalogs diff line by line."""
    return json.dumps(catalog, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def json_files(catalog: Mapping[str, Any]) -> dict[str, str]:
    return {"catalog.json": render_json(catalog)}
