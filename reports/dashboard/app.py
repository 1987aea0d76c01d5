"""The Textual dashboard: a table of everything the catalog knows, a page per entry.

Store reads run in thread workers, never on the UI thread: the first screen paints while
the persisted catalog loads, a page paints before its samples arrive, and ``--watch``
folds new messages into the catalog (``update_catalog``, the same incremental infer as
``busdoc infer``) every few seconds without freezing the keys. Only one worker of the
``infer`` group runs at a time, so a slow pass is never stacked on another.

Colours come from Textual's theme variables (``$accent``, ``$text-muted``...), never
fixed RGB, so ``d`` can flip between the dark and light themes and both stay readable.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from rich import box
from rich.console import Group, RenderableType
from rich.json import JSON
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static, Tree
from textual.worker import get_current_worker

from busdoc.errors import BusdocError
from busdoc.reports.dashboard import model
from busdoc.storage.store import Store

WATCH_INTERVAL = 2.0
PROGRESS_EVERY = 5_000


class _Abandoned(Exception):
    """Raised inside an infer pass to stop it (the app is quitting)."""

DARK, LIGHT = "textual-dark", "textual-light"

EMPTY_STORE = """\
Nothing captured yet in {store}.

Capture some traffic first, then infer the interface:

  busdoc capture pcap traffic.pcap       (a tcpdump capture of port 5672)
  busdoc capture firehose --duration 60  (a live broker, through the firehose)
  busdoc infer

then run busdoc dashboard again (or keep busdoc dashboard --watch open while capturing).
"""

NOT_INFERRED = """\
{store} holds messages, but no catalog yet.

Run

  busdoc infer

(or busdoc dashboard --watch, which infers new messages as they arrive).
"""

WATCH_INFERRING = """\
{store} holds messages, but no catalog yet: inferring them now
(the status line counts the messages read; the table appears when the pass ends).
"""

WATCH_EMPTY = "\nWatching: messages are inferred as a capture stores them.\n"

COLUMNS = (("service", "Service"), ("topic", "Topic"), ("name", "Name"), ("styles", "Kind"),
           ("count", "Count"), ("rate", "Rate"), ("errors", "Err"), ("last", "Last"))


class EntryScreen(Screen[None]):
    """One entry's page: schema, reply, failures, latency, versions, samples, how to send."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("backspace", "app.pop_screen", "Back", show=False),
        Binding("d", "app.toggle_theme", "Theme"),
        Binding("q", "app.quit", "Quit"),
    ]

    DEFAULT_CSS = """
    EntryScreen #title { background: $primary; color: $text; padding: 0 1; text-style: bold; }
    EntryScreen VerticalScroll { padding: 0 1; }
    EntryScreen .section { margin-top: 1; }
    """

    def __init__(self, store: Store, snapshot: model.Snapshot, entry: Mapping[str, Any]) -> None:
        super().__init__()
        self.store = store
        self.snapshot = snapshot
        self.entry = entry

    def compose(self) -> ComposeResult:
        row = model.row_for(self.entry)
        yield Static(f"{row.service} › {row.topic} › {row.name}  ({row.styles})", id="title",
                     markup=False)
        with VerticalScroll(id="page"):
            for section_id, renderable in self._sections():
                yield Static(renderable, id=section_id, classes="section")
            yield Static(_heading("Recent samples") + "\nloading…", id="samples",
                         classes="section")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#page").focus()
        self.run_worker(self._load_samples, thread=True, group="samples", exclusive=True)

    def _load_samples(self) -> None:
        try:
            samples = model.recent_samples(self.store, self.entry,
                                           self.snapshot.last_message_id)
        except BusdocError as e:
            self.app.call_from_thread(self._show_samples, None, str(e))
            return
        self.app.call_from_thread(self._show_samples, samples, None)

    def _show_samples(self, samples: list[model.Sample] | None, error: str | None) -> None:
        parts: list[RenderableType] = [_heading("Recent samples")]
        if error is not None:
            parts.append(Text(f"cannot read samples: {error}"))
        elif not samples:
            why = ("objects travel inside other messages; open the method that carries them"
                   if self.entry["kind"] == "object" else
                   f"none among the newest {model.SAMPLE_WINDOW:,} stored messages")
            parts.append(Text(why, style="italic"))
        for s in samples or ():
            head = (f"message {s.message_id} · {model.fmt_time(s.time)} · exchange "
                    f"{s.exchange or '(default)'!s} · routing key {s.routing_key or '(empty)'}")
            parts.append(Text(head, style="bold"))
            if s.redacted:
                parts.append(Text("redacted before storage: " + ", ".join(s.redacted),
                                  style="italic"))
            if isinstance(s.body, str) and s.body.startswith("(opaque"):
                parts.append(Text(s.body))
            else:
                parts.append(JSON(model.pretty_json(s.body), indent=2, sort_keys=True))
        self.query_one("#samples", Static).update(Group(*parts))

    def _sections(self) -> list[tuple[str, RenderableType]]:
        e = self.entry
        catalog = self.snapshot.catalog or {}
        reference = model.newest(catalog)
        out: list[tuple[str, RenderableType]] = []

        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold")
        facts.add_column()
        count = e.get("count", 0)
        facts.add_row("seen", f"{count:,} message{'s' if count != 1 else ''}, "
                      f"{model.fmt_time(e.get('first_seen'))} → "
                      f"{model.fmt_time(e.get('last_seen'))}")
        facts.add_row("last", model.fmt_behind(e.get("last_seen"), reference))
        if e["kind"] == "rpc":
            counts = e.get("style_counts") or {}
            facts.add_row("styles", ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "–")
        for label, key in (("senders", "senders"), ("receivers", "receivers"),
                           ("queues", "queues")):
            facts.add_row(label, ", ".join(e.get(key) or ()) or "–")
        out.append(("facts", facts))

        send = Table.grid(padding=(0, 2))
        send.add_column(style="bold")
        send.add_column()
        for label, value in model.send_hint(e):
            send.add_row(label, Text(value))
        out.append(("send", Group(_heading("Send it"), send)))

        arg_title = {"rpc": "Arguments", "notification": "Payload", "object": "Data"}.get(
            e["kind"], "Body")
        out.append(("arguments", Group(_heading(arg_title), _schema_table(e.get("schema")))))

        if e["kind"] == "rpc":
            reply = e.get("reply")
            if reply is None:
                out.append(("reply", Group(_heading("Reply"),
                                           Text("never called with a reply expected (casts only)",
                                                style="italic"))))
            else:
                out.append(("reply", Group(
                    _heading(f"Reply ({reply.get('count', 0):,} reply messages)"),
                    _schema_table(reply.get("schema")))))
                out.append(("failures", Group(_heading("Failures"), _failures(reply))))
                out.append(("latency", Group(_heading("Latency"),
                                             Text(model.latency_text(reply)))))
            out.append(("versions", Group(_heading("Versions"), _versions(catalog, e))))
        return out


def _n(count: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count:,} {noun if count == 1 else plural}"


def _heading(title: str) -> str:
    return f"[b u]{title}[/]"


def _schema_table(schema: Mapping[str, Any] | None) -> RenderableType:
    rows = model.schema_rows(schema)
    if not rows:
        return Text("no fields (empty, opaque or never seen)", style="italic")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    for col in ("field", "type", "required", "nullable", "format", "enum"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.path, r.type, r.required, r.nullable, r.format, r.enum)
    return table


def _failures(reply: Mapping[str, Any]) -> RenderableType:
    failures = reply.get("failures") or ()
    if not failures:
        return Text("none seen", style="italic")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("exception", "module", "count", "example"):
        table.add_column(col, overflow="fold")
    for f in failures:
        table.add_row(str(f.get("exception")), str(f.get("module") or "–"),
                      f"{f.get('count', 0):,}", str(f.get("example") or ""))
    return table


def _versions(catalog: Mapping[str, Any], entry: Mapping[str, Any]) -> RenderableType:
    versions = model.versions_of(catalog, entry)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("version", "count", "added", "removed", "changed"):
        table.add_column(col, overflow="fold")
    for v in versions:
        ch = v.get("changes") or {}
        mark = " ◀" if v["key"] == entry["key"] else ""
        table.add_row(f"{v.get('version') or '–'}{mark}", f"{v.get('count', 0):,}",
                      ", ".join(ch.get("added") or ()), ", ".join(ch.get("removed") or ()),
                      ", ".join(ch.get("changed") or ()))
    return table


class EntryTable(DataTable[Any]):
    """The entry table, with Enter named in the footer (DataTable hides its binding)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Open")]


MAIN_ONLY = frozenset({"filter", "sort", "reverse", "open", "clear_filter", "toggle_view"})


class DashboardApp(App[None]):
    """``busdoc dashboard``: browse the catalog persisted in a store."""

    TITLE = "busdoc dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse"),
        Binding("t", "toggle_view", "Tree"),
        Binding("escape", "clear_filter", "Clear", show=False),
        Binding("d", "toggle_theme", "Theme"),
        Binding("q", "quit", "Quit"),
    ]
    DEFAULT_CSS = """
    #status { background: $primary; color: $text; padding: 0 1; height: 1; }
    #filter { dock: top; display: none; height: 3; }
    #filter.active { display: block; }
    #message { padding: 1 2; display: none; }
    #message.active { display: block; }
    #entries, #tree { height: 1fr; }
    """

    def __init__(self, store: Store, *, watch: bool = False, interval: float = WATCH_INTERVAL,
                 dark: bool = True) -> None:
        super().__init__()
        self.store = store
        self.watching = watch
        self.interval = interval
        self.snapshot: model.Snapshot | None = None
        self.rows: list[model.Row] = []
        self.shown: list[model.Row] = []
        self.sort = "service"
        self.reverse = False
        self.filter_text = ""
        self.note = "loading the catalog…"
        self.ready = threading.Event()
        """Set once the first catalog (or the empty-store page) is on screen."""
        self.refreshes = 0
        self.tree_view = False
        self._dark = dark

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="status", markup=False)
        yield Input(placeholder="filter: words in service, topic, name or kind", id="filter")
        yield Static("", id="message", markup=False)
        yield EntryTable(id="entries", cursor_type="row", zebra_stripes=True)
        tree: Tree[str] = Tree("catalog", id="tree")
        tree.show_root = False
        tree.display = False
        yield tree
        yield Footer()

    def on_mount(self) -> None:
        self.theme = DARK if self._dark else LIGHT
        table = self.query_one("#entries", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self._update_status()
        table.focus()
        self.run_worker(self._initial_load, thread=True, group="infer", exclusive=True)
        if self.watching:
            self.set_interval(self.interval, self._tick)

    # -- loading -----------------------------------------------------------------------

    def _initial_load(self) -> None:
        try:
            snap = model.load_snapshot(self.store)
        except BusdocError as e:
            self.call_from_thread(self._show_error, str(e))
            return
        self.call_from_thread(self._show_snapshot, snap)
        if self.watching:
            self._refresh_catalog()

    def _tick(self) -> None:
        running = [w for w in self.workers if w.group == "infer" and not w.is_finished]
        if not running:
            self.run_worker(self._refresh_catalog, thread=True, group="infer", exclusive=True)

    def _refresh_catalog(self) -> None:
        worker = get_current_worker()

        def progress(n: int) -> None:
            # A pass over a big backlog takes a while: stop it when the app quits (the
            # executor thread would otherwise hold the exit), and say how far it got.
            if worker.is_cancelled:
                raise _Abandoned
            if n % PROGRESS_EVERY == 0:
                self.call_from_thread(self._set_note, f"inferring: {n:,} new messages read")

        try:
            snap = model.refresh_snapshot(self.store, on_message=progress)
        except _Abandoned:
            return
        except BusdocError as e:
            self.call_from_thread(self._show_error, str(e))
            return
        self.call_from_thread(self._show_snapshot, snap)

    def _set_note(self, note: str) -> None:
        self.note = note
        self._update_status()

    def _show_error(self, message: str) -> None:
        self.note = f"error: {message}"
        self._update_status()
        self.ready.set()

    def _show_snapshot(self, snap: model.Snapshot) -> None:
        old = self.snapshot
        self.snapshot = snap
        self.refreshes += 1
        changed = old is None or old.last_message_id != snap.last_message_id or (
            old.catalog is None) != (snap.catalog is None)
        message = self.query_one("#message", Static)
        table = self.query_one("#entries", DataTable)
        if snap.catalog is None or not snap.catalog.get("entries"):
            if self.watching:
                text = (WATCH_INFERRING if snap.has_messages else EMPTY_STORE + WATCH_EMPTY)
            else:
                text = NOT_INFERRED if snap.has_messages else EMPTY_STORE
            text = text.format(store=self.store.url_for_display)
            message.update(text)
            message.add_class("active")
            table.display = False
            self.query_one("#tree", Tree).display = False
            self.rows = []
        else:
            message.remove_class("active")
            table.display = not self.tree_view
            self.query_one("#tree", Tree).display = self.tree_view
            if self.focused is None:  # hidden while the store was empty, focus went away
                self._focus_list()
            if changed:
                self.rows = model.rows_from_catalog(snap.catalog)
                self._fill()
        self.note = ""
        self._update_status()
        self.ready.set()

    # -- the table ---------------------------------------------------------------------

    def _fill(self) -> None:
        table = self.query_one("#entries", DataTable)
        current = self._cursor_key()
        rows = model.sort_rows(model.filter_rows(self.rows, self.filter_text), self.sort,
                               reverse=self.reverse)
        self.shown = rows
        reference = model.newest(self.snapshot.catalog or {}) if self.snapshot else None
        grouped = self.sort == "service" and not self.reverse
        table.clear()
        prev: tuple[str, str] | None = None
        for r in rows:
            service = Text(r.service)
            topic = Text(r.topic)
            if grouped and prev is not None and prev[0] == r.service:
                service = Text("")
                if prev[1] == r.topic:
                    topic = Text("")
            prev = (r.service, r.topic)
            table.add_row(
                service, topic, Text(r.name, style="bold"), Text(r.styles),
                Text(f"{r.count:,}", justify="right"),
                Text(model.fmt_rate(r.rate), justify="right"),
                Text(model.fmt_percent(r.error_rate), justify="right",
                     style="bold" if r.error_rate else ""),
                Text(model.fmt_ago(r.last_seen, reference), justify="right"),
                key=r.key,
            )
        if current is not None:
            for i, r in enumerate(rows):
                if r.key == current:
                    table.move_cursor(row=i)
                    break
        self._fill_tree(rows)
        self._update_status()

    def _fill_tree(self, rows: list[model.Row]) -> None:
        """The same rows as services → topics → entries, with totals on every branch."""
        tree: Tree[str] = self.query_one("#tree", Tree)
        keep = tree.cursor_node.data if tree.cursor_node is not None else None
        keep_node = None
        tree.clear()
        for service in model.group_rows(rows):
            s_node = tree.root.add(
                Text.assemble((service.name, "bold"), f"  {_n(service.entries, 'entry')}, "
                              f"{_n(service.messages, 'msg')}"), expand=True)
            for topic in service.children:
                t_node = s_node.add(
                    Text.assemble((topic.name or "(none)", "bold"),
                                  f"  {_n(topic.messages, 'msg')}"), expand=True)
                for r in topic.rows:
                    label = Text.assemble(
                        (r.name, "bold"), f"  {r.styles}  {r.count:,}",
                        f"  err {model.fmt_percent(r.error_rate)}" if r.error_rate else "")
                    leaf = t_node.add_leaf(label, data=r.key)
                    if r.key == keep:
                        keep_node = leaf
        if keep_node is not None:  # --watch rebuilds the tree: stay on the same entry
            tree.move_cursor(keep_node)

    def _cursor_key(self) -> str | None:
        table = self.query_one("#entries", DataTable)
        if not self.shown or not table.is_valid_row_index(table.cursor_row):
            return None
        return self.shown[table.cursor_row].key

    def _update_status(self) -> None:
        parts = [self.store.url_for_display]
        snap = self.snapshot
        if snap is not None and snap.catalog is not None:
            stats = snap.catalog.get("stats") or {}
            parts.append(f"{len(self.shown)}/{len(self.rows)} entries")
            parts.append(f"{stats.get('messages', 0):,} msgs read")
        parts.append(f"sort {self.sort}{' ↑' if self.reverse else ''}")
        if self.tree_view:
            parts.append("tree")
        if self.filter_text:
            parts.append(f"filter '{self.filter_text}'")
        if self.watching:
            parts.append("watching")
        if self.note:
            parts.append(self.note)
        self.query_one("#status", Static).update(" · ".join(parts))

    # -- actions -----------------------------------------------------------------------

    def action_filter(self) -> None:
        box_ = self.query_one("#filter", Input)
        box_.add_class("active")
        box_.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._fill()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not event.value:
            self.query_one("#filter", Input).remove_class("active")
        self._focus_list()

    def action_clear_filter(self) -> None:
        box_ = self.query_one("#filter", Input)
        box_.value = ""
        box_.remove_class("active")
        self.filter_text = ""
        self._fill()
        self._focus_list()

    def action_sort(self) -> None:
        self.sort = model.SORTS[(model.SORTS.index(self.sort) + 1) % len(model.SORTS)]
        self._fill()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._fill()

    @on(DataTable.HeaderSelected, "#entries")
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        order = {"topic": "service", "styles": "service"}.get(str(event.column_key.value),
                                                              str(event.column_key.value))
        if order == self.sort:
            self.reverse = not self.reverse
        else:
            self.sort, self.reverse = order, False
        self._fill()

    @on(DataTable.RowSelected, "#entries")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def _focus_list(self) -> None:
        self.query_one("#tree" if self.tree_view else "#entries").focus()

    def action_toggle_view(self) -> None:
        self.tree_view = not self.tree_view
        if self.snapshot is not None and self.rows:
            table = self.query_one("#entries", DataTable)
            tree = self.query_one("#tree", Tree)
            table.display, tree.display = not self.tree_view, self.tree_view
            (tree if self.tree_view else table).focus()
        self._update_status()

    @on(Tree.NodeSelected, "#tree")
    def _node_selected(self, event: Tree.NodeSelected[str]) -> None:
        if event.node.data is not None:
            self._open(event.node.data)

    def action_open(self) -> None:
        self._open(self._cursor_key())

    def _open(self, key: str | None) -> None:
        if key is None or self.snapshot is None or self.snapshot.catalog is None:
            return
        entry = model.find_entry(self.snapshot.catalog, key)
        if entry is not None:
            self.push_screen(EntryScreen(self.store, self.snapshot, entry))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Table keys belong to the table screen; a page's footer shows only its own."""
        if action in MAIN_ONLY and len(self.screen_stack) > 1:
            return False
        return True

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK
