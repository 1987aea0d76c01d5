"""busdoc.storage: the store (SQLite or PostgreSQL), message identity and redaction.

``open_store`` and ``Store`` live in ``busdoc.storage.store``; they are imported on first
use so that ``busdoc --version`` (which reads ``SCHEMA_VERSION``) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from busdoc.storage.version import SCHEMA_VERSION

if TYPE_CHECKING:
    from busdoc.storage.store import Run, RunInfo, Store, Writer, open_store

__all__ = ["SCHEMA_VERSION", "Run", "RunInfo", "Store", "Writer", "open_store"]


def __getattr__(name: str) -> Any:
    if name in {"Run", "RunInfo", "Store", "Writer", "open_store"}:
        from busdoc.storage import store

        return getattr(store, name)
    raise AttributeError(f"module 'busdoc.storage' has no attribute {name!r}")
