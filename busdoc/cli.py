"""The ``busdoc`` command line: a few lines per command over the library.

Every command opens what it needs, makes one or two library calls and prints. Errors
from the library are ``BusdocError`` subclasses; ``main()`` turns them into one line on
stderr and exit code 2. Heavy modules (scapy, SQLAlchemy, pika) are imported inside the
commands that use them, so ``busdoc --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from busdoc import __version__
from busdoc.commands import register_all
from busdoc.errors import BusdocError
from busdoc.options import DbOption, JsonOption, make_redactor
from busdoc.reports import FORMATS as REPORT_FORMATS

app = typer.Typer(
    name="busdoc",
    help=(
        "Document the RPC and event interfaces of RabbitMQ applications from their traffic.\n\n"
        "Typical use: capture traffic into a store, then infer the interface:\n\n"
        "  busdoc capture pcap traffic.pcap\n\n"
        "  busdoc infer -o interface.md\n\n"
        "The store is ./busdoc.db unless --db or $BUSDOC_DB names another SQLite file "
        "or a database URL (postgresql://user@host/db)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
capture_app = typer.Typer(
    help="Capture AMQP traffic into the store (pcap files, a live interface, the firehose).",
    no_args_is_help=True,
)
app.add_typer(capture_app, name="capture")



def _err(message: str) -> None:
    print(f"busdoc: {message}", file=sys.stderr)


def _fail(message: str, code: int = 2) -> NoReturn:
    _err(message)
    raise typer.Exit(code)


def _version_callback(value: bool) -> None:
    if value:
        from busdoc.storage import SCHEMA_VERSION

        print(f"busdoc {__version__} (store schema {SCHEMA_VERSION})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the version and the store schema version.",
        ),
    ] = False,
    max_inflate: Annotated[
        int,
        typer.Option(
            "--max-inflate",
            min=1,
            help="Largest decompressed body (bytes) read from a gzip/deflate/bz2 "
            "content-encoding; larger ones are kept as captured and not parsed.",
        ),
    ] = 64 << 20,
    max_inflate_ratio: Annotated[
        int,
        typer.Option(
            "--max-inflate-ratio",
            min=1,
            help="Largest decompressed/compressed ratio accepted past 1 MiB (zip bombs).",
        ),
    ] = 200,
    max_json_depth: Annotated[
        int,
        typer.Option(
            "--max-json-depth", min=1, help="Deepest JSON nesting parsed in a body."
        ),
    ] = 128,
) -> None:
    """Limits given before the command apply to every body it reads."""
    from busdoc.sniffer.body import set_limits

    set_limits(max_output=max_inflate, max_ratio=max_inflate_ratio, max_depth=max_json_depth)


def _open_store(db: str | None):  # noqa: ANN202 - returns busdoc.storage.Store
    from busdoc.storage import open_store

    return open_store(db)


@capture_app.command("pcap")
def capture_pcap(
    files: Annotated[
        list[str],
        typer.Argument(
            help="pcap or pcapng files (gzipped too), read in time order with TCP state "
            "carried across; '-' reads a capture streamed on stdin.",
            show_default=False,
        ),
    ],
    db: DbOption = None,
    port: Annotated[
        list[int] | None,
        typer.Option(
            "--port",
            help="Server port, to tell client from server in streams caught mid-connection "
            "(repeatable; default 5672). Connections that start with the AMQP header are "
            "decoded on any port.",
        ),
    ] = None,
    no_redact: Annotated[
        bool, typer.Option("--no-redact", help="Store bodies byte-exact, secrets included.")
    ] = False,
    redact: Annotated[
        list[str] | None,
        typer.Option(
            "--redact",
            help="Also redact values under keys matching this pattern (regex, case-insensitive; "
            "repeatable).",
        ),
    ] = None,
    max_body: Annotated[
        int,
        typer.Option(
            "--max-body",
            help="Largest body stored whole, in bytes; larger ones are stored cut, "
            "with their full size and hash.",
        ),
    ] = 16 << 20,
    max_flows: Annotated[
        int,
        typer.Option(
            "--max-flows",
            min=1,
            help="TCP directions tracked at once; the least recently seen is dropped first.",
        ),
    ] = 10_000,
    max_flow_buffer: Annotated[
        int,
        typer.Option(
            "--max-flow-buffer",
            min=1,
            help="Bytes held per TCP direction behind a lost segment before the hole is "
            "declared lost.",
        ),
    ] = 8 << 20,
    max_frame: Annotated[
        int,
        typer.Option(
            "--max-frame",
            min=4096,
            help="Largest AMQP frame accepted before a connection's frame_max is seen "
            "(streams caught mid-connection); larger frames are treated as garbage.",
        ),
    ] = 64 << 20,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Import AMQP 0-9-1 messages from capture files.

    Example: tcpdump -i any -w - port 5672 | busdoc capture pcap -
    """
    from busdoc.storage.ingest import import_captures

    store = _open_store(db)
    try:
        summary = import_captures(
            store,
            files,
            server_ports=tuple(port or (5672,)),
            redactor=make_redactor(no_redact, redact),
            max_body=max_body,
            progress=not quiet and not json_out,
            max_flows=max_flows,
            max_flow_buffer=max_flow_buffer,
            max_frame=max_frame,
        )
    finally:
        store.close()
    if json_out:
        import json

        print(json.dumps(summary.as_dict(), sort_keys=True))
    else:
        for line in summary.warnings():
            _err(f"warning: {line}")
        print(summary.line())
    if summary.failed():
        raise typer.Exit(2)


@app.command()
def stats(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Count what the store holds: messages, publishes, deliveries, runs."""
    store = _open_store(db)
    try:
        counts = store.stats()
        runs = store.runs()
    finally:
        store.close()
    gaps = [gap for run in runs for gap in (run.stats.get("gaps") or [])]
    if json_out:
        import json

        print(json.dumps({**counts, "gaps": len(gaps)}, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"store {store.url_for_display}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        table.add_row(key, f"{value:,}")
    console = Console()
    console.print(table)
    if runs:
        run_table = Table(title="capture runs")
        for col in ("id", "kind", "name", "status", "messages"):
            run_table.add_column(col)
        for run in runs:
            run_table.add_row(
                str(run.id), run.kind, run.name, run.status, str(run.counts.get("messages", ""))
            )
        console.print(run_table)
    if gaps:
        from busdoc.commands.live import gap_lines

        for line in gap_lines(runs):
            console.print(line)


class ExportFormat(StrEnum):
    jsonl = "jsonl"


@app.command()
def export(
    db: DbOption = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Output format.")] = (
        ExportFormat.jsonl
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Export every stored message, one JSON object per line (redacted as stored)."""
    from busdoc.storage.export import message_to_json

    store = _open_store(db)
    out = open(output, "wb") if output else sys.stdout.buffer  # noqa: SIM115
    try:
        for message in store.iter_messages():
            out.write(message_to_json(message))
            out.write(b"\n")
        out.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        store.close()
        if output:
            out.close()


InferFormat = StrEnum("InferFormat", {name: name for name in REPORT_FORMATS})  # type: ignore[misc]


@app.command()
def infer(
    db: DbOption = None,
    fmt: Annotated[
        InferFormat,
        typer.Option("--format", help="Output format."),
    ] = InferFormat["markdown"],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write here (a directory for formats of several files)."
        ),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Forget the kept catalog and read every message.")
    ] = False,
) -> None:
    """Infer the interface (RPC methods, notifications, objects) from stored messages.

    Only messages not read by an earlier run of infer are read; the catalog is kept in
    the store, and every format renders from it.
    """
    from busdoc.inference.incremental import update_catalog
    from busdoc.reports import render_files

    store = _open_store(db)
    try:
        catalog = update_catalog(store, rebuild=rebuild)
    finally:
        store.close()
    files = render_files(catalog.to_json(), fmt.value)
    if output is None:
        if len(files) != 1:
            _fail(f"--format {fmt.value} writes {len(files)} files: give -o DIRECTORY")
        sys.stdout.write(next(iter(files.values())))
        return
    if len(files) == 1 and not output.is_dir():
        output.write_text(next(iter(files.values())), encoding="utf-8")
        _err(f"wrote {output}")
        return
    output.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        target = output / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    _err(f"wrote {len(files)} files under {output}")


register_all(app, capture_app)


def main() -> None:
    """Console entry point: run the app, map errors to one line and an exit code."""
    try:
        app()
    except BusdocError as exc:
        _err(f"error: {exc}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except OSError as exc:
        _err(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        sys.exit(2)
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get("BUSDOC_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (set BUSDOC_DEBUG=1 for the traceback)")
        sys.exit(2)
