"""A sink for live capture: each batch of records is stored and committed before it returns.

The firehose agent and the interface capture hand records over in batches and
acknowledge (or forget) them only once the sink returns, so returning means "durable".
Optional stages (filters, a body sampler) run on each batch first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from busdoc.sniffer.records import Record
from busdoc.storage.redact import Redactor
from busdoc.storage.store import Run, Store

Stage = Callable[[list[Record]], list[Record]]


class BatchSink:
    """Records → stages → the run's writer → one commit per batch."""

    def __init__(
        self,
        store: Store,
        run: Run,
        redactor: Redactor,
        *,
        max_body: int = 16 << 20,
        stages: Sequence[Stage] = (),
    ) -> None:
        self.writer = store.writer(run, redactor=redactor, max_body=max_body)
        self.stages = list(stages)
        self.flushes = 0

    def __call__(self, records: list[Record]) -> None:
        for stage in self.stages:
            records = stage(records)
        add = self.writer.add
        for record in records:
            add(record)
        self.writer.flush()
        self.flushes += 1
