"""Live capture commands: ``capture firehose``, ``capture iface``, ``capture tracing-log``,
``doctor`` and ``prune``.

Each command opens the store, hands a sink to a capture source from ``busdoc.sniffer``
and reports. The sink is where a capture meets the store: records pass the filters and
the body sampler, are added to the run's writer, and ``flush()`` commits them before the
firehose agent acknowledges anything. pika, scapy and SQLAlchemy are imported inside the
commands, so ``busdoc --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from busdoc.errors import BusdocError, InputError
from busdoc.options import DbOption, make_redactor
from busdoc.sniffer.urls import DEFAULT_AMQP_URL, URL_ENV, resolve_urls, tls_options

if TYPE_CHECKING:
    from busdoc.sniffer.records import Record


UrlOption = Annotated[
    list[str] | None,
    typer.Option(
        "--url",
        metavar="URL",
        help=f"Broker AMQP URL, amqp:// or amqps:// (repeatable: one per cluster node). "
        f"Default ${URL_ENV}, else {DEFAULT_AMQP_URL}. Prefer ${URL_ENV} or --url-file "
        "so the password is not on the command line.",
        show_default=False,
    ),
]
UrlFileOption = Annotated[
    Path | None,
    typer.Option("--url-file", help="Read broker URLs from this file, one a line ('#' comments)."),
]
NoRedact = Annotated[
    bool, typer.Option("--no-redact", help="Store bodies byte-exact, secrets included.")
]
RedactOption = Annotated[
    list[str] | None,
    typer.Option(
        "--redact",
        help="Also redact values under keys matching this pattern (regex, case-insensitive; "
        "repeatable).",
    ),
]


class TracingChoice(StrEnum):
    auto = "auto"
    management = "management"
    rabbitmqctl = "rabbitmqctl"
    assume = "assume"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _err(message: str) -> None:
    print(f"busdoc: {message}", file=sys.stderr)


# -- shared plumbing -----------------------------------------------------------------------


def setup_logging(log_file: Path | None, level: LogLevel) -> None:
    """Log to a file (a service's journal reads stderr, where the status goes)."""
    root = logging.getLogger("busdoc")
    root.setLevel(level.value.upper())
    if log_file is not None:
        try:
            handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot write --log-file {log_file}: {e.strerror or e}") from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("busdoc: %(levelname)s: %(message)s"))
        handler.setLevel(max(logging.WARNING, root.level))
    root.addHandler(handler)
    # pika logs connection parameters at debug level; keep it quiet and to warnings.
    logging.getLogger("pika").setLevel(logging.WARNING)


# -- capture firehose ----------------------------------------------------------------------


def capture_firehose(
    url: UrlOption = None,
    url_file: UrlFileOption = None,
    vhost: Annotated[
        list[str] | None,
        typer.Option("--vhost", help="Vhost to trace (repeatable; default: the URL's vhost)."),
    ] = None,
    db: DbOption = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", help="Stop after this many trace messages.")
    ] = None,
    tracing: Annotated[
        TracingChoice,
        typer.Option(
            "--tracing",
            help="How to switch tracing: auto (management API, else local rabbitmqctl), "
            "management, rabbitmqctl, or assume (an operator turned it on; the agent only "
            "declares, binds and reads its own queue).",
        ),
    ] = TracingChoice.auto,
    management_url: Annotated[
        str | None,
        typer.Option("--management-url", help="Management API base (default http://HOST:15672)."),
    ] = None,
    max_queue_bytes: Annotated[
        int,
        typer.Option(
            "--max-queue-bytes",
            help="Bound of the agent's trace queue on the broker; above it the broker drops "
            "the oldest trace messages and a gap is recorded.",
        ),
    ] = 64 << 20,
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            metavar="NAME",
            help="Consume from this durable queue, kept on the broker between runs (NAME.N "
            "for several URLs or vhosts), instead of a private one that goes with the agent: "
            "what was not stored when the agent stopped or failed waits there for the next "
            "run. Tracing stays on for it. Delete the queue when you retire the agent.",
            show_default=False,
        ),
    ] = None,
    include_exchange: Annotated[
        list[str] | None,
        typer.Option("--include-exchange", help="Keep only these exchanges (glob; repeatable)."),
    ] = None,
    exclude_exchange: Annotated[
        list[str] | None,
        typer.Option("--exclude-exchange", help="Drop these exchanges (glob; repeatable)."),
    ] = None,
    include_routing_key: Annotated[
        list[str] | None,
        typer.Option("--include-routing-key", help="Keep only these routing keys (glob)."),
    ] = None,
    exclude_routing_key: Annotated[
        list[str] | None,
        typer.Option("--exclude-routing-key", help="Drop these routing keys (glob)."),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            help="Store the body of at most N messages per method per minute; the others "
            "keep their metadata and size, with an empty (cut) body.",
        ),
    ] = None,
    no_redact: NoRedact = False,
    redact: RedactOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live status.")] = False,
    log_file: Annotated[Path | None, typer.Option("--log-file", help="Append logs here.")] = None,
    log_level: Annotated[LogLevel, typer.Option("--log-level")] = LogLevel.info,
    ca_cert: Annotated[Path | None, typer.Option("--ca-cert", help="CA bundle (amqps).")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="Client certificate (amqps).")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Client key (amqps).")] = None,
) -> None:
    """Capture a live broker through RabbitMQ's firehose tracer (amq.rabbitmq.trace).

    Tracing is switched on for each vhost while the agent runs, and off again at the end
    if the agent turned it on and no other queue listens. Stop with Ctrl-C or SIGTERM:
    what was received is stored first. If the store cannot be written (a full disk) the
    agent stops with exit 2, having acknowledged only what it stored; with --queue the
    rest waits on the broker for the next run. Example:

      BUSDOC_AMQP_URL=amqp://busdoc:PASS@rabbit1/nova busdoc capture firehose --duration 600
    """
    from busdoc.sniffer.agent import FirehoseAgent
    from busdoc.sniffer.firehose import BodySampler, RecordFilter
    from busdoc.sniffer.tracing import mask_url
    from busdoc.storage import open_store
    from busdoc.storage.sink import BatchSink

    urls = resolve_urls(url, url_file)
    if queue is not None and not queue.strip():
        raise InputError("--queue needs a queue name")
    ssl_options = tls_options(urls, ca_cert, cert, key)
    setup_logging(log_file, log_level)
    log = logging.getLogger("busdoc.capture")
    record_filter = RecordFilter(
        include_exchanges=include_exchange or [],
        exclude_exchanges=exclude_exchange or [],
        include_routing_keys=include_routing_key or [],
        exclude_routing_keys=exclude_routing_key or [],
    )
    sampler = BodySampler(sample) if sample is not None else None
    redactor = make_redactor(no_redact, redact)
    masked = [mask_url(u) for u in urls]

    store = open_store(db)
    try:
        run = store.begin_run(
            kind="firehose", name=" ".join(masked) + (f" {','.join(vhost)}" if vhost else ""),
            content_hash=None,
        )
        assert run is not None
        stages: list[Callable[[list[Record]], list[Record]]] = [record_filter]
        if sampler is not None:
            stages.append(sampler)
        sink = BatchSink(store, run, redactor, stages=stages)
        display = _StatusDisplay(quiet=quiet, log=log)
        stats: dict[str, Any] = {"urls": masked, "vhosts": list(vhost or [])}
        agent = None
        try:
            agent = FirehoseAgent(
                urls, list(vhost or []), sink,
                max_queue_bytes=max_queue_bytes, duration=duration, max_messages=max_messages,
                tracing=tracing.value, management_url=management_url,  # type: ignore[arg-type]
                status=display.update, ssl_options=ssl_options, queue=queue,
            )
            with display:
                final = agent.run()
        except BaseException as e:
            stats["error"] = str(e) if isinstance(e, BusdocError) else type(e).__name__
            raise
        finally:
            if agent is not None:
                stats.update(
                    total=agent.total,
                    gaps=[dataclasses.asdict(g) for g in agent.gaps],
                    tracing=[
                        {"vhost": t.vhost, "url": t.masked,
                         "method": t.state.method if t.state else None}
                        for t in agent.taps
                    ],
                )
            stats["filtered_out"] = record_filter.dropped
            if sampler is not None:
                stats["sampled_out"] = sampler.sampled_out
                stats["sample_per_minute"] = sample
            try:
                store.finish_run(run, stats=stats)
            except Exception as e:  # the original error (often the store itself) wins
                # One line on stderr (the traceback only at debug level): a full disk
                # that failed the batch may fail this update too.
                log.warning("could not mark the capture run finished: %s", e)
                log.debug("finishing the capture run failed", exc_info=True)
    finally:
        store.close()
    gaps = len(stats.get("gaps", []))
    print(
        f"{final.total:,} trace messages into run {run.id} of {store.url_for_display}; "
        f"{gaps} gap{'s' if gaps != 1 else ''}"
        + (f", {record_filter.dropped:,} observations filtered out" if record_filter.active
           else "")
        + (f", {sampler.sampled_out:,} bodies sampled out" if sampler is not None else "")
    )


class _StatusDisplay:
    """rich live status on a terminal; a status line every 30 s otherwise (a service)."""

    def __init__(self, *, quiet: bool, log: logging.Logger, every: float = 30.0) -> None:
        from busdoc.sniffer.agent import StatusLines

        self.quiet = quiet
        self.log = log
        self._lines = StatusLines(every=every)
        self._live: Any = None
        self._tty = sys.stderr.isatty()

    def __enter__(self) -> _StatusDisplay:
        if not self.quiet and self._tty:
            from rich.console import Console

            self._live = Console(stderr=True).status("connecting…")
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, status: Any) -> None:
        line = self._lines.announce(status)
        if line is not None:
            self.log.info(line)
            if not self.quiet:
                print(f"busdoc: {line}", file=sys.stderr, flush=True)
        if self.quiet:
            return
        if self._live is not None:
            self._live.update(status.line())
        elif (line := self._lines.due(status, time.monotonic())) is not None:
            print(f"busdoc: {line}", file=sys.stderr, flush=True)


def gap_lines(runs: list[Any]) -> list[str]:
    """One line per recorded gap of the given capture runs (``RunInfo``), for ``stats``."""
    from busdoc.sniffer.agent import GAP_REASONS

    def when(t: float | None) -> str:
        return "?" if t is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))

    lines = []
    for run in runs:
        for gap in run.stats.get("gaps", []) or []:
            code = gap.get("reason") or "unknown"
            reason = GAP_REASONS.get(code, code)
            lines.append(
                f"run {run.id}: gap ({reason}) in vhost {gap.get('vhost')} on {gap.get('url')} "
                f"from {when(gap.get('start'))} to {when(gap.get('end'))}: messages may be missing"
            )
    return lines


# -- capture iface -------------------------------------------------------------------------


def capture_iface(
    interface: Annotated[
        str | None,
        typer.Argument(help="Network interface (default: the one with the default route).",
                       show_default=False),
    ] = None,
    port: Annotated[
        list[int] | None,
        typer.Option("--port", help="AMQP server port to capture (repeatable; default 5672)."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    db: DbOption = None,
    no_redact: NoRedact = False,
    redact: RedactOption = None,
) -> None:
    """Capture AMQP 0-9-1 from a network interface (needs root or CAP_NET_RAW).

    Stop with Ctrl-C or SIGTERM. Example: sudo busdoc capture iface eth0 --duration 60
    """
    import signal
    import threading

    from busdoc.sniffer.iface import InterfaceCapture, default_interface
    from busdoc.storage import open_store
    from busdoc.storage.sink import BatchSink

    name = interface or default_interface()
    capture = InterfaceCapture(name, ports=port or [5672])
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    store = open_store(db)
    try:
        run = store.begin_run(kind="iface", name=name, content_hash=None)
        assert run is not None
        sink = BatchSink(store, run, make_redactor(no_redact, redact))
        _err(f"capturing on {name} ({' or '.join(f'tcp port {p}' for p in capture.ports)})")
        try:
            stats = capture.run(sink, duration=duration, stop_event=stop)
        finally:
            capture.close()
            decoder = dataclasses.asdict(capture.decoder.stats)
            store.finish_run(run, stats={"interface": name, "frames": capture.stats.frames,
                                         "kernel_drops": capture.stats.kernel_drops,
                                         "decoder": decoder})
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        store.close()
    if stats.kernel_drops:
        _err(f"warning: the kernel dropped {stats.kernel_drops:,} frames busdoc could not "
             "read in time; messages around them may be missing")
    d = stats.decoder
    print(f"{d.messages if d else 0:,} observations from {stats.frames:,} frames on {name} "
          f"into run {run.id}")


# -- capture tracing-log -------------------------------------------------------------------


def capture_tracing_log(
    files: Annotated[
        list[Path],
        typer.Argument(help="JSON log files of the rabbitmq_tracing plugin "
                       "(/var/tmp/rabbitmq-tracing/*.log).", show_default=False),
    ],
    db: DbOption = None,
    no_redact: NoRedact = False,
    redact: RedactOption = None,
) -> None:
    """Import traces written by RabbitMQ's rabbitmq_tracing plugin (format json).

    Each file is a capture run keyed by its content hash: importing it again adds nothing.
    """
    import hashlib

    from busdoc.sniffer.records import Notice, Observation
    from busdoc.sniffer.tracing_log import read_tracing_log
    from busdoc.storage import open_store

    for path in files:
        if not path.is_file():
            raise InputError(f"cannot read {path}: no such file")
    redactor = make_redactor(no_redact, redact)
    store = open_store(db)
    total = skipped_files = 0
    notices: dict[str, str] = {}
    try:
        for path in files:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            run = store.begin_run(kind="tracing_log", name=str(path), content_hash=digest)
            if run is None:
                skipped_files += 1
                continue
            count = 0
            with store.writer(run, redactor=redactor) as writer, path.open("rb") as f:
                for record in read_tracing_log(f):
                    writer.add(record)
                    if isinstance(record, Observation):
                        count += 1
                    elif isinstance(record, Notice):
                        notices.setdefault(record.code, record.message)
            store.finish_run(run, stats={"observations": count})
            total += count
    finally:
        store.close()
    for message in notices.values():
        _err(f"warning: {message} (and maybe more; see busdoc stats)")
    already = f", {skipped_files} already imported" if skipped_files else ""
    print(f"{total:,} observations from {len(files) - skipped_files} files{already}")


# -- doctor --------------------------------------------------------------------------------


def doctor(
    url: UrlOption = None,
    url_file: UrlFileOption = None,
    vhost: Annotated[
        list[str] | None,
        typer.Option("--vhost", help="Vhost to check (repeatable; default: every vhost "
                     "the user can see)."),
    ] = None,
    db: DbOption = None,
    tracing: Annotated[TracingChoice, typer.Option("--tracing")] = TracingChoice.auto,
    fix: Annotated[
        bool,
        typer.Option("--fix", help="Turn off tracing left on with nobody listening "
                     "(an agent killed with kill -9)."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check what the capture agent needs: broker, credentials, tracing, permissions, store.

    Exit 0 when nothing failed (warnings included), 1 when a check failed.
    """
    from busdoc.sniffer.tracing import Check, broker_checks

    checks: list[Check] = []
    for u in resolve_urls(url, url_file):
        checks += broker_checks(u, vhost or [], mode=tracing.value, fix=fix)  # type: ignore[arg-type]
    checks.append(store_check(db))
    failed = any(c.status == "fail" for c in checks)
    if json_out:
        print(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]},
                         sort_keys=True))
    else:
        marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
        for c in checks:
            print(f"{marks[c.status]} {c.name}: {c.detail}")
            if c.fix and c.status != "ok":
                print(f"     fix: {c.fix}")
    if failed:
        raise typer.Exit(1)


def store_check(db: str | None) -> Any:
    """Open the store, read its schema version, and prove a write goes through."""
    from busdoc.errors import StoreError
    from busdoc.sniffer.tracing import Check
    from busdoc.storage import SCHEMA_VERSION, open_store

    try:
        store = open_store(db)
    except StoreError as e:
        return Check("store", "fail", str(e), "check --db / $BUSDOC_DB and its permissions")
    try:
        store.put_state("doctor.checked", str(time.time()).encode())
    except StoreError as e:
        return Check("store", "fail", f"{store.url_for_display} is not writable: {e}",
                     "the agent's user needs write access to the store")
    finally:
        store.close()
    return Check("store", "ok", f"{store.url_for_display}: schema {store.schema_version} "
                 f"(this busdoc writes {SCHEMA_VERSION}), writable")


# -- prune ---------------------------------------------------------------------------------


def prune_command(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Age: a number and s, m, h, d or w (7d).")
    ],
    db: DbOption = None,
) -> None:
    """Delete messages (and their observations) first seen longer ago than --older-than."""
    from busdoc.storage import open_store
    from busdoc.storage.prune import parse_age, prune

    age = parse_age(older_than)
    store = open_store(db, create=False)
    try:
        result = prune(store, older_than=age)
    finally:
        store.close()
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.cutoff))
    print(f"deleted {result.messages:,} messages and {result.observations:,} observations "
          f"first seen before {cutoff}")


def register(app: typer.Typer, capture_app: typer.Typer) -> None:
    capture_app.command("firehose")(capture_firehose)
    capture_app.command("iface")(capture_iface)
    capture_app.command("tracing-log")(capture_tracing_log)
    app.command("doctor")(doctor)
    app.command("prune")(prune_command)
