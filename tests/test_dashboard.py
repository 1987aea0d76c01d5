"""The dashboard app: Pilot interactions, SVG snapshots, the CLI in a real terminal.

The store is built the way a user builds it: a committed capture imported with
redaction on, then ``update_catalog``. Snapshots run from inside the store's directory
so the status line names ``busdoc.db``, not a random temporary path.
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_dashboard_model import rpc_catalog
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static, Tree

from busdoc.inference.incremental import LAST_ID_KEY, STATE_KEY, update_catalog
from busdoc.reports.dashboard.app import DashboardApp, EntryScreen
from busdoc.storage import open_store
from busdoc.storage.ingest import import_captures
from busdoc.storage.redact import Redactor
from busdoc.storage.store import Store

CAPTURES = Path(__file__).parent / "captures"
CAPTURE = CAPTURES / "pika_basic.pcap"
SIZE = (100, 30)


@pytest.fixture(scope="module")
def capture_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The capture imported (redaction on) and inferred once; tests get a copy."""
    path = tmp_path_factory.mktemp("template") / "busdoc.db"
    store = open_store(str(path))
    import_captures(store, [str(CAPTURE)], redactor=Redactor())
    update_catalog(store)
    store.close()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def capture_store(
    capture_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(capture_template, tmp_path / "busdoc.db")
    store = open_store("busdoc.db", create=False)
    yield store
    store.close()


@pytest.fixture
def rpc_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store holding only the catalog state of an oslo-shaped service."""
    monkeypatch.chdir(tmp_path)
    store = open_store("rpc.db")
    store.put_state(STATE_KEY, rpc_catalog().dumps_state())
    store.put_state(LAST_ID_KEY, b"0")
    yield store
    store.close()


def aio(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test on a fresh event loop (no async pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


async def settle(pilot: Pilot) -> None:
    """Let the store workers finish and their results paint."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def static_text(widget: Static) -> str:
    """What a Static shows, as plain text (rich tables and groups included)."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def table_names(app: DashboardApp) -> list[str]:
    return [r.name for r in app.shown]


# -- Pilot -------------------------------------------------------------------------------


@aio
async def test_first_screen_lists_every_entry_of_the_capture(capture_store: Store) -> None:
    app = DashboardApp(capture_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.query_one("#entries", DataTable)
        assert table.row_count == 12
        assert "order.event" in table_names(app) and "fx.q.poll" in table_names(app)
        status = static_text(app.query_one("#status", Static))
        assert "12/12 entries" in status and "14 msgs read" in status


@aio
async def test_arrow_keys_move_and_enter_opens_that_entry(rpc_store: Store) -> None:
    app = DashboardApp(rpc_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        target = table_names(app).index("reboot@6.0")
        await pilot.press(*["down"] * target, "enter")
        await settle(pilot)
        assert isinstance(app.screen, EntryScreen)
        assert app.screen.entry["method"] == "reboot"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, EntryScreen)
        assert app.query_one("#entries", DataTable).cursor_row == target


@aio
async def test_slash_filters_as_you_type_and_escape_clears(rpc_store: Store) -> None:
    app = DashboardApp(rpc_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("b", "u", "i")
        assert table_names(app) == ["build_instance@5.9", "build_instance@6.0"]
        await pilot.press("space", "5")
        assert table_names(app) == ["build_instance@5.9"]
        await pilot.press("enter")  # back to the table, filter kept
        assert isinstance(app.focused, DataTable)
        assert app.query_one("#entries", DataTable).row_count == 1
        await pilot.press("escape")
        assert len(table_names(app)) == 6


@aio
async def test_t_shows_services_and_topics_as_a_tree_with_totals(rpc_store: Store) -> None:
    app = DashboardApp(rpc_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("t")
        tree = app.query_one("#tree", Tree)
        assert tree.display and app.focused is tree
        services = {str(n.label): n for n in tree.root.children}
        nova = next(n for label, n in services.items() if label.startswith("nova "))
        # two versions of a call, a cast, an event and the object it carries
        assert "5 entries, 11 msgs" in str(nova.label)
        topics = {str(n.label).split()[0]: n for n in nova.children}
        assert set(topics) == {"compute", "notifications", "(objects)"}
        assert "9 msgs" in str(topics["compute"].label)  # 4 + 2 calls, 3 casts
        leaf = next(n for n in topics["compute"].children if n.data and "reboot" in n.data)
        tree.move_cursor(leaf)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EntryScreen)
        assert app.screen.entry["method"] == "reboot"
        await pilot.press("escape")
        await pilot.press("slash", "f", "a", "n", "enter")  # the filter prunes the tree
        labels = [str(n.label).split()[0] for n in tree.root.children]
        assert labels == ["?"]
        await pilot.press("t")
        assert app.query_one("#entries", DataTable).display


@aio
async def test_s_cycles_sort_orders_and_r_reverses(rpc_store: Store) -> None:
    app = DashboardApp(rpc_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        assert app.sort == "name" and table_names(app)[0] == "InstancePayload@1.1"
        await pilot.press("s")
        assert app.sort == "count" and table_names(app)[0] == "build_instance@6.0"
        await pilot.press("r")
        assert table_names(app)[-1] == "build_instance@6.0"


@aio
async def test_method_page_shows_schema_reply_failures_latency_and_versions(
    rpc_store: Store,
) -> None:
    app = DashboardApp(rpc_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press(*["down"] * table_names(app).index("build_instance@6.0"), "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EntryScreen)
        text = "\n".join(static_text(w) for w in screen.query(Static))
        for needle in ("instance_uuid", "yes (4/4)", "host", "boolean", "InstanceNotFound",
                       "Instance u-3 gone", "p50", "5.9", "retries", "compute.host1",
                       "Send it", "call 4"):
            assert needle in text, needle


@aio
async def test_entry_page_shows_recent_samples_redacted_as_stored(
    capture_store: Store,
) -> None:
    app = DashboardApp(capture_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        names = [r.topic for r in app.shown]
        await pilot.press(*["down"] * names.index("audit.login"), "enter")
        await settle(pilot)
        text = static_text(app.screen.query_one("#samples", Static))
        assert "loading" not in text
        assert "routing key audit.login" in text and '"key": "audit.login"' in text


@aio
async def test_q_quits_from_the_table_and_from_a_page(rpc_store: Store) -> None:
    app = DashboardApp(rpc_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0 and not app.is_running
    app = DashboardApp(rpc_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert not app.is_running


@aio
async def test_d_switches_between_dark_and_light_themes(rpc_store: Store) -> None:
    app = DashboardApp(rpc_store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.theme == "textual-dark"
        await pilot.press("d")
        assert app.theme == "textual-light"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("d")  # the page has the key too
        assert app.theme == "textual-dark"


@aio
async def test_empty_store_says_what_to_run_first(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "empty.db"))
    app = DashboardApp(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = static_text(app.query_one("#message", Static))
        assert "busdoc capture pcap" in text and "busdoc infer" in text
        assert not app.query_one("#entries", DataTable).display
    store.close()


@aio
async def test_uninferred_store_points_to_infer(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "raw.db"))
    import_captures(store, [str(CAPTURE)], redactor=Redactor())
    app = DashboardApp(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = static_text(app.query_one("#message", Static))
        assert "no catalog yet" in text and "busdoc infer" in text
    assert store.get_state(STATE_KEY) is None  # without --watch nothing is written
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "live.db")
        return
    from brokerutil import temp_postgres_db

    with temp_postgres_db() as url:
        yield url


@aio
async def test_watch_infers_messages_a_capture_writes_while_it_runs(live_db: str) -> None:
    dashboard_store = open_store(live_db)
    app = DashboardApp(dashboard_store, watch=True, interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert not app.rows
        agent_store = open_store(live_db)  # a capture agent, its own connection
        import_captures(agent_store, [str(CAPTURE)], redactor=Redactor())
        agent_store.close()
        for _ in range(200):
            await pilot.pause(0.05)
            if len(app.rows) == 12:
                break
        assert len(app.rows) == 12
        assert app.query_one("#entries", DataTable).display
        # the cursor stays on its entry when the next capture file lands
        await pilot.press("down", "down", "down")
        assert app.query_one("#entries", DataTable).cursor_row == 3
        key = app.shown[3].key
        agent_store = open_store(live_db)
        import_captures(agent_store, [str(CAPTURES / "pika_split.pcapng")],
                        redactor=Redactor())
        agent_store.close()
        before = app.refreshes
        for _ in range(200):
            await pilot.pause(0.05)
            if app.refreshes > before and app.snapshot and app.snapshot.last_message_id > 14:
                break
        assert app.snapshot is not None and app.snapshot.last_message_id > 14
        assert app.shown[app.query_one("#entries", DataTable).cursor_row].key == key
    assert dashboard_store.get_state(STATE_KEY) is not None
    dashboard_store.close()


# -- snapshots ---------------------------------------------------------------------------


def test_snapshot_table_at_100x30(capture_store: Store, snap_compare) -> None:  # noqa: ANN001
    assert snap_compare(DashboardApp(capture_store), terminal_size=SIZE, run_before=settle)


def test_snapshot_table_at_80x24_light(capture_store: Store, snap_compare) -> None:  # noqa: ANN001
    assert snap_compare(DashboardApp(capture_store, dark=False), terminal_size=(80, 24),
                        run_before=settle)


def test_snapshot_filtered_table(capture_store: Store, snap_compare) -> None:  # noqa: ANN001
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("slash", "o", "r", "d", "e", "r", "s")

    assert snap_compare(DashboardApp(capture_store), terminal_size=SIZE, run_before=run_before)


def test_snapshot_tree_at_80x24(capture_store: Store, snap_compare) -> None:  # noqa: ANN001
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("t")

    assert snap_compare(DashboardApp(capture_store), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_entry_page_with_samples(capture_store: Store, snap_compare) -> None:  # noqa: ANN001
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        await pilot.press("end")  # scroll the page down to the samples
        await pilot.pause()

    assert snap_compare(DashboardApp(capture_store), terminal_size=(80, 24),
                        run_before=run_before)


def test_snapshot_rpc_method_page(rpc_store: Store, snap_compare) -> None:  # noqa: ANN001
    """Arguments with evidence, reply schema, failures, latency and versions of a call."""

    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        app = pilot.app
        assert isinstance(app, DashboardApp)
        await pilot.press(*["down"] * table_names(app).index("build_instance@6.0"), "enter")
        await settle(pilot)

    assert snap_compare(DashboardApp(rpc_store), terminal_size=(100, 72), run_before=run_before)


# -- the installed command ---------------------------------------------------------------


def busdoc_exe() -> str:
    exe = Path(sys.executable).parent / "busdoc"
    return str(exe) if exe.exists() else shutil.which("busdoc") or "busdoc"


def test_without_a_terminal_it_fails_in_one_line_pointing_to_infer(tmp_path: Path) -> None:
    result = subprocess.run(
        [busdoc_exe(), "dashboard", "--db", str(tmp_path / "x.db")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("busdoc: error: ")
    assert "busdoc infer" in lines[0]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_installed_command_in_tmux_shows_methods_and_q_exits(capture_store: Store) -> None:
    db = "busdoc.db"
    session = f"busdoc-dash-{os.getpid()}"
    env_cmd = f"cd {os.getcwd()} && TERM=xterm-256color {busdoc_exe()} dashboard --db {db}; " \
              "echo EXITED-$?; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30",
                    env_cmd], check=True)
    try:
        def pane() -> str:
            return subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True, check=True).stdout

        def wait_for(text: str) -> str:
            screen = ""
            for _ in range(300):
                screen = pane()
                if text in screen:
                    return screen
                time.sleep(0.1)
            raise AssertionError(f"{text!r} never appeared:\n{screen}")

        wait_for("order.event")
        screen = wait_for("q Quit")  # the footer paints last
        assert "fx.q.poll" in screen and "orders.pyamqp" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_for("EXITED-0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
