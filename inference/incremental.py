"""Incremental inference over a store: only messages not read before are folded in.

The catalog's mergeable state and the id of the last message it has read are kept in
the store (``Store.put_state``), so ``busdoc infer`` over a store a capture agent keeps
writing to costs time proportional to what is new. Observations attached later to an
already-read message (a delivery seen in the next capture file) do not reach the catalog
until ``rebuild=True``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from busdoc.inference.catalog import Catalog
from busdoc.storage.records import StoredMessage
from busdoc.storage.store import Store

STATE_KEY = "catalog.state"
LAST_ID_KEY = "catalog.last_message_id"


def update_catalog(
    store: Store,
    *,
    rebuild: bool = False,
    on_message: Callable[[int], None] | None = None,
) -> Catalog:
    """Fold every message newer than the persisted catalog into it, persist, return it."""
    state = None if rebuild else store.get_state(STATE_KEY)
    catalog = Catalog.loads_state(state) if state else Catalog()
    last_id = 0 if rebuild or state is None else int(store.get_state(LAST_ID_KEY) or b"0")
    seen = 0

    def messages() -> Iterator[StoredMessage]:
        nonlocal last_id, seen
        for message in store.iter_messages(after_id=last_id):
            yield message
            last_id = message.id
            seen += 1
            if on_message is not None:
                on_message(seen)

    for message in messages():
        catalog.add(message)
    if seen or state is None:
        store.put_state(STATE_KEY, catalog.dumps_state())
        store.put_state(LAST_ID_KEY, str(last_id).encode())
    return catalog
