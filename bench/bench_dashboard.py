"""Dashboard start-up on a big store: time to first screen and peak memory.

    .venv/bin/python bench/bench_dashboard.py [--methods 500] [--messages 1000000]
        [--db PATH] [--json]

The store is made synthetically and fast: the catalog of ``--methods`` oslo rpc methods
is folded from a few calls each and saved as the persisted inference state (what
``busdoc infer`` leaves behind), and ``--messages`` rows go straight into the messages
table with one ``executemany`` (oslo call envelopes of those methods, so a method page
finds samples). The store is kept at ``--db`` and reused by later runs.

Each measurement runs in a fresh interpreter (so peak RSS is the dashboard's alone):
the headless app starts, and the clock stops when the first catalog is on screen.
``messages read`` counts what ``Store.iter_messages`` yielded before then: the dashboard
reads the persisted catalog, not the messages, so the figure is 0 for any store size.
Opening a method page reads at most the newest ``SAMPLE_WINDOW`` messages for samples.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PROBE = r"""
import asyncio, json, resource, sys, time
t0 = time.perf_counter()
from busdoc.reports.dashboard.app import DashboardApp
from busdoc.storage import open_store
from busdoc.storage.store import Store
t_import = time.perf_counter() - t0
read = {"n": 0}
original = Store.iter_messages
def counting(self, **kw):
    for m in original(self, **kw):
        read["n"] += 1
        yield m
Store.iter_messages = counting
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def main():
    store = open_store(sys.argv[1], create=False)
    t1 = time.perf_counter()
    app = DashboardApp(store)
    async with app.run_test(size=(100, 30)) as pilot:
        while not app.ready.is_set():
            await pilot.pause(0.005)
        await pilot.pause()
        t_first = time.perf_counter() - t1
        rows = app.query_one("#entries").row_count
        read_at_start = read["n"]
        t2 = time.perf_counter()
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        t_page = time.perf_counter() - t2
    store.close()
    print(json.dumps({
        "import_s": t_import, "first_screen_s": t_first, "rows": rows,
        "messages_read_at_start": read_at_start, "page_open_s": t_page,
        "messages_read_by_page": read["n"] - read_at_start,
        "rss_after_import_mb": rss_before / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))

asyncio.run(main())
"""


def build_store(path: str, methods: int, messages: int) -> None:
    """The persisted catalog of ``methods`` methods and ``messages`` raw message rows."""
    import sqlite3

    import orjson

    from busdoc.inference import testing as t
    from busdoc.inference.catalog import Catalog
    from busdoc.inference.incremental import LAST_ID_KEY, STATE_KEY
    from busdoc.storage import open_store

    store = open_store(path)
    catalog = Catalog()
    t0 = 1_764_000_000.0
    for i in range(methods):
        exchange = ("nova", "neutron", "cinder", "glance")[i % 4]
        topic = ("compute", "conductor", "scheduler", "volume", "l3_agent")[i % 5]
        for k in range(4):
            m, mid = t.call(f"method_{i:03d}", {"instance_uuid": f"u-{k}", "n": k, "flag": True},
                            exchange=exchange, topic=topic, server="host1",
                            time=t0 + i + k * 0.1, cast=k == 3)
            catalog.add(m)
            if k < 3:
                catalog.add(t.reply(mid, {"ok": True}, time=t0 + i + k * 0.1 + 0.02))
    catalog.stats["messages"] = messages
    store.put_state(STATE_KEY, catalog.dumps_state())
    store.put_state(LAST_ID_KEY, str(messages).encode())
    store.close()

    bodies = []
    for i in range(methods):
        inner = {"method": f"method_{i:03d}", "args": {"instance_uuid": "u-0", "n": 0,
                                                         "flag": True},
                 "version": "6.0", **t.CONTEXT, "_unique_id": "0" * 32}
        bodies.append(t.envelope(inner))
    props = orjson.dumps({"content_type": "application/json"})
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    rows = ((n + 1, 1, "/", ("nova", "neutron", "cinder", "glance")[n % methods % 4],
             ("compute", "conductor", "scheduler", "volume", "l3_agent")[n % methods % 5]
             + ".host1", props, bodies[n % methods], len(bodies[n % methods]), "0" * 64, 0,
             t0 + n * 0.001) for n in range(messages))
    conn.executemany(
        "INSERT INTO messages (id, run_id, vhost, exchange, routing_key, properties, body,"
        " body_size, body_sha256, truncated, first_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", type=int, default=500)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--db", default=None, help="Store to build or reuse (SQLite file).")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    db = args.db or os.path.join(tempfile.gettempdir(),
                                 f"busdoc-bench-dash-{args.methods}-{args.messages}.db")
    built = None
    if not os.path.exists(db):
        t0 = time.perf_counter()
        build_store(db, args.methods, args.messages)
        built = time.perf_counter() - t0
    results = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", PROBE, db], capture_output=True, text=True,
                             check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(results, key=lambda r: r["first_screen_s"])
    summary = {
        "methods": args.methods, "messages": args.messages, "db": db,
        "db_mb": round(os.path.getsize(db) / 1e6, 1),
        "store_built_s": None if built is None else round(built, 1),
        "runs": args.runs,
        "first_screen_s_best": round(best["first_screen_s"], 3),
        "first_screen_s_all": [round(r["first_screen_s"], 3) for r in results],
        "import_s": round(best["import_s"], 3),
        "rows": best["rows"],
        "messages_read_at_start": max(r["messages_read_at_start"] for r in results),
        "page_open_s": round(best["page_open_s"], 3),
        "messages_read_by_page": best["messages_read_by_page"],
        "rss_after_import_mb": round(best["rss_after_import_mb"], 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
    }
    if args.json:
        print(json.dumps(summary))
        return
    for key, value in summary.items():
        print(f"{key:>24}  {value}")


if __name__ == "__main__":
    main()
