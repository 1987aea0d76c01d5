"""busdoc.inference: stored messages → the interface catalog.

``build_catalog(messages, state=None) -> Catalog`` is the entry point; ``Catalog`` keeps
mergeable, bounded state (``add``, ``merge``, ``dumps_state``/``loads_state``) and renders
the contract of ``docs/catalog.schema.json`` with ``to_json()``. Field inference alone
lives in ``busdoc.inference.schema`` (``FieldSchema``, ``infer``, ``merge``).
"""

from busdoc.inference.catalog import CATALOG_VERSION, Catalog, build_catalog

__all__ = ["CATALOG_VERSION", "Catalog", "build_catalog"]
