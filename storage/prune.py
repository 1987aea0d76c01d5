"""Delete old messages from the store (``busdoc prune --older-than 7d``).

A long-running agent on a busy deployment keeps every message's metadata; pruning
bounds the store. A message goes with all its observations when it was first seen
before the cut-off (its deliveries never precede its publish, so nothing newer is left
dangling). Runs and connections stay: they are small and say what was captured when.
The inference catalog already read the pruned messages, so ``infer`` keeps documenting
them; ids are never reused (``Store._allocate`` keeps a high-water mark), so its
"read up to id N" bookmark stays right.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from busdoc.errors import InputError
from busdoc.storage import schema
from busdoc.storage.store import Store

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class PruneResult:
    cutoff: float
    messages: int
    observations: int


def parse_age(text: str) -> float:
    """``"7d"`` → seconds; units s, m, h, d, w."""
    match = _AGE.match(text.lower())
    if match is None:
        raise InputError(f"cannot read age {text!r}: use a number and a unit, e.g. 7d, 12h, 30m")
    return float(match.group(1)) * _UNITS[match.group(2)]


def prune(store: Store, *, older_than: float, now: float | None = None) -> PruneResult:
    """Delete messages first seen more than ``older_than`` seconds before ``now``.

    Deletes in chunks of a few thousand messages, one transaction each, so a big prune
    on a store that agents are writing to never holds the write lock for long.
    """
    cutoff = (time.time() if now is None else now) - older_than
    m, o = schema.messages, schema.observations
    messages = observations = 0
    while True:
        with store._write("prune old messages") as conn:
            ids = [
                row[0]
                for row in conn.execute(
                    select(m.c.id).where(m.c.first_seen < cutoff).order_by(m.c.id).limit(_CHUNK)
                )
            ]
            if not ids:
                break
            observations += conn.execute(delete(o).where(o.c.message_id.in_(ids))).rowcount
            messages += conn.execute(delete(m).where(m.c.id.in_(ids))).rowcount
    return PruneResult(cutoff=cutoff, messages=messages, observations=observations)


def count_older(store: Store, *, older_than: float, now: float | None = None) -> int:
    """How many messages ``prune`` would delete."""
    cutoff = (time.time() if now is None else now) - older_than
    m = schema.messages
    with store._read("count old messages") as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(m).where(m.c.first_seen < cutoff)
            ).scalar_one()
        )


__all__ = ["PruneResult", "count_older", "parse_age", "prune"]
