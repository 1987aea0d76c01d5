"""Import capture files into the store: the pcap path end to end.

Several files given at once are usually the pieces of one rotated capture
(``tcpdump -C``/``-G``), so they are read in the order of their first packet and one
decoder runs across all of them: a connection that spans two files stays decodable.
Each file is its own capture run, keyed by its content hash, so importing the same file
again adds nothing. When some files were imported before and others were not, the old
ones are still fed to the decoder (their records are dropped) so the TCP and AMQP state
the new ones continue from is there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from busdoc.errors import BusdocError, CaptureFormatError
from busdoc.sniffer.amqp import DEFAULT_FRAME_LIMIT
from busdoc.sniffer.capture import CaptureDecoder
from busdoc.sniffer.pcap import open_capture
from busdoc.sniffer.records import ConnectionInfo, Notice, Observation
from busdoc.storage.redact import Redactor
from busdoc.storage.store import Store

STDIN = "-"
_HASH_CHUNK = 1 << 20
_BULK_GC_THRESHOLD = 50_000


@dataclass(slots=True)
class FileResult:
    """What happened to one input file."""

    name: str
    status: str = "pending"
    """``imported``, ``already imported`` or ``failed``."""
    error: str | None = None
    observations: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    truncated: bool = False
    bytes: int = 0


@dataclass(slots=True)
class ImportSummary:
    """The outcome of one ``busdoc capture pcap`` command."""

    files: list[FileResult]
    messages: int = 0
    """Distinct messages the store gained."""
    notices: Counter[str] = field(default_factory=Counter)
    notice_text: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def observations(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for f in self.files:
            total.update(f.observations)
        return total

    def failed(self) -> bool:
        """True when a file could not be read at all (the command exits 2)."""
        return any(f.status == "failed" for f in self.files)

    def line(self) -> str:
        obs = self.observations
        imported = sum(1 for f in self.files if f.status == "imported")
        skipped = sum(1 for f in self.files if f.status == "already imported")
        parts = [
            f"{self.messages:,} new messages",
            f"{sum(obs.values()):,} observations "
            f"({obs['publish']:,} publish, {obs['deliver']:,} deliver, "
            f"{obs['get_ok']:,} get-ok, {obs['return']:,} return)",
            f"from {imported} file{'s' if imported != 1 else ''}",
        ]
        if skipped:
            parts.append(f"{skipped} already imported")
        return "imported " + ", ".join(parts) + f" in {self.seconds:.1f} s"

    def warnings(self) -> list[str]:
        out = []
        for f in self.files:
            if f.status == "failed":
                out.append(f"{f.name}: {f.error}")
            elif f.truncated:
                out.append(f"{f.name}: file ends inside a packet record (truncated capture)")
        for code, count in sorted(self.notices.items()):
            out.append(f"{self.notice_text.get(code, code)} ({count:,}×)")
        return out

    def as_dict(self) -> dict[str, Any]:
        obs = self.observations
        return {
            "messages": self.messages,
            "observations": dict(sorted(obs.items())),
            "files": [
                {
                    "name": f.name,
                    "status": f.status,
                    "error": f.error,
                    "truncated": f.truncated,
                    "observations": sum(f.observations.values()),
                }
                for f in self.files
            ],
            "notices": dict(sorted(self.notices.items())),
            "seconds": round(self.seconds, 3),
        }


def content_hash(path: str) -> str:
    """sha256 of a file's bytes: the identity of a capture for re-import."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _first_time(path: str) -> float:
    reader = open_capture(path)
    try:
        for record in reader:
            return record.time
        return float("inf")
    finally:
        reader.close()


def _check_readable(path: str) -> None:
    if os.path.isdir(path):
        raise CaptureFormatError(f"{path}: is a directory, not a capture file")
    if not os.path.exists(path):
        raise CaptureFormatError(f"{path}: no such file")


ProgressHook = Callable[[int], None]


@contextlib.contextmanager
def _bulk_gc() -> Iterator[None]:
    """Cyclic garbage collection tuned for a bulk import, restored afterwards.

    An import makes no reference cycles of its own (a 100k-message import collects
    about 600 objects in all), yet with the default thresholds the collector ran 700
    times and took 5% of the import: young collections every 700 allocations, and full
    ones walking every object loaded at start-up (SQLAlchemy, typer, rich) again and
    again. Freezing moves what exists now out of the collector's sight, and a higher
    first threshold makes the young collections rare; cycles are still collected, so
    memory stays bounded.
    """
    old = gc.get_threshold()
    frozen_by_caller = gc.get_freeze_count() > 0
    gc.freeze()
    gc.set_threshold(max(old[0], _BULK_GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        if not frozen_by_caller:  # a program that froze its own objects keeps them so
            gc.unfreeze()


@_bulk_gc()
def import_captures(
    store: Store,
    paths: Sequence[str | os.PathLike[str]],
    *,
    server_ports: tuple[int, ...] = (5672,),
    redactor: Redactor,
    max_body: int = 16 << 20,
    progress: bool = False,
    max_flows: int = 10_000,
    max_flow_buffer: int = 8 << 20,
    max_frame: int = DEFAULT_FRAME_LIMIT,
) -> ImportSummary:
    """Decode every file and store what it holds; see the module docstring for order."""
    started = time.monotonic()
    paths = [os.fspath(p) for p in paths]
    results = {p: FileResult(name=p) for p in paths}
    ordered: list[tuple[float, str]] = []
    for path in paths:
        if path == STDIN:
            ordered.append((float("-inf"), path))
            continue
        try:
            _check_readable(path)
            ordered.append((_first_time(path), path))
        except BusdocError as exc:
            results[path].status = "failed"
            results[path].error = str(exc).removeprefix(f"{path}: ")
    ordered.sort()

    decoder = CaptureDecoder(
        source="pcap",
        server_ports=server_ports,
        max_flows=max_flows,
        max_flow_buffer=max_flow_buffer,
        max_frame=max_frame,
    )
    summary = ImportSummary(files=[results[p] for p in paths])
    total_bytes = sum(os.path.getsize(p) for _, p in ordered if p != STDIN)
    plan = [(p, None if p == STDIN else content_hash(p)) for _, p in ordered]
    runs = {p: store.begin_run(kind="pcap", name=p, content_hash=h) for p, h in plan}
    needed = [i for i, (p, _) in enumerate(plan) if runs[p] is not None]
    if not needed:
        for p, _ in plan:
            results[p].status = "already imported"
        summary.seconds = time.monotonic() - started
        return summary
    # Files after the last new one need not be read at all.
    plan = plan[: needed[-1] + 1]
    last_needed = plan[-1][0]

    bar = _Progress(total_bytes if STDIN not in paths else None) if progress else None
    try:
        for path, _ in plan:
            result = results[path]
            run = runs[path]
            reader = open_capture(path)
            try:
                if run is None:
                    result.status = "already imported"
                    try:
                        for record in reader:
                            decoder.feed(record)  # state only: its messages are stored
                    except CaptureFormatError:
                        pass  # reported when it was first imported
                    continue
                with store.writer(run, redactor=redactor, max_body=max_body) as writer:
                    add = writer.add_observation
                    kinds = result.observations
                    feed = decoder.feed
                    try:
                        for n, record in enumerate(reader):
                            for item in feed(record):
                                # Nearly every record: counted and stored without a call.
                                if type(item) is Observation:
                                    kinds[item.kind] += 1
                                    add(item)
                                else:
                                    _take(item, writer, result, summary)
                            if bar and n % 256 == 0:
                                bar.update(reader.bytes_read)
                        result.status = "imported"
                    except CaptureFormatError as exc:
                        # Keep everything decoded before the broken record.
                        result.status = "failed"
                        result.error = str(exc).removeprefix(f"{path}: ")
                    if path == last_needed:
                        for item in decoder.finish():
                            _take(item, writer, result, summary)
                summary.messages += writer.messages
                result.truncated = reader.truncated
                result.bytes = reader.bytes_read
                store.finish_run(run, stats=_run_stats(result, decoder))
            finally:
                if bar:
                    bar.finish_file(reader.bytes_read)
                reader.close()
    finally:
        if bar:
            bar.close()
    summary.seconds = time.monotonic() - started
    return summary


def _take(item: object, writer: Any, result: FileResult, summary: ImportSummary) -> None:
    if isinstance(item, Observation):
        result.observations[item.kind] += 1
        writer.add_observation(item)
        return
    if isinstance(item, ConnectionInfo):
        result.connections += 1
    elif isinstance(item, Notice):
        summary.notices[item.code] += item.count
        summary.notice_text.setdefault(item.code, item.message)
    writer.add(item)


def _run_stats(result: FileResult, decoder: CaptureDecoder) -> dict[str, Any]:
    stats = decoder.stats
    decoded = {
        f.name: getattr(stats, f.name)
        for f in dataclasses.fields(stats)
        if isinstance(getattr(stats, f.name), int | float | str)
    }
    return {
        "observations": dict(result.observations),
        "connections": result.connections,
        "truncated_file": result.truncated,
        "bytes": result.bytes,
        "decoder": decoded,
    }


class _Progress:
    """A rich progress bar over the bytes of all input files (stderr)."""

    def __init__(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("importing"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("import", total=total)
        self._done = 0
        self._progress.start()

    def update(self, file_bytes: int) -> None:
        self._progress.update(self._task, completed=self._done + file_bytes)

    def finish_file(self, file_bytes: int) -> None:
        self._done += file_bytes
        self._progress.update(self._task, completed=self._done)

    def close(self) -> None:
        self._progress.stop()
