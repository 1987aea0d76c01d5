"""Firehose agent under load: broker publish rate with tracing off and on, the highest
rate the agent captures without loss, loss and gaps above it, agent CPU and peak RSS,
and the rabbitmq_tracing plugin writing a file at the same load.

    .venv/bin/python bench/bench_firehose.py [--quick] [--db PATH] [--messages N]

Needs the local RabbitMQ (guest/guest, management API on :15672). Works in a temporary
vhost, removed after. Publishing runs in a separate process (``--publisher`` mode of this
file): oslo.messaging-style casts of about 2 KB to a topic exchange with one bound queue
that a consumer drains (so every message traces as one publish and one deliver), paced
in bursts of 50 to the target rate. "Broker rate" is messages over the time until a
synchronous command on the publishing channel returns after the last publish (the
channel has routed everything by then).

The agent is the real CLI (``busdoc capture firehose``) in its own process, one per
stage, into a SQLite store; its CPU seconds and peak RSS come from ``wait4``. A stage's
loss is published minus stored messages of its run; gaps are the run's recorded gaps.
Default: about 60k messages over all stages, 2-3 minutes; ``--quick``: 5k.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

HOST = "127.0.0.1"
API = f"http://{HOST}:15672/api"
EXCHANGE = "nova"
QUEUE = "compute.bench"


def http(verb: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + path, data=data, method=verb)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        payload = r.read()
    return json.loads(payload) if payload else None


def amqp_url(vhost: str) -> str:
    return f"amqp://guest:guest@{HOST}:5672/{urllib.parse.quote(vhost, safe='')}"


def oslo_body(i: int) -> bytes:
    inner = {
        "method": "build_and_run_instance" if i % 3 else "resize_instance",
        "namespace": None, "version": "6.0", "_msg_id": secrets.token_hex(16),
        "_reply_q": "reply_" + secrets.token_hex(16), "_unique_id": secrets.token_hex(16),
        "_context_request_id": "req-" + secrets.token_hex(16),
        "_context_user_id": secrets.token_hex(16), "_context_project_id": secrets.token_hex(16),
        "_context_roles": ["member", "reader"], "_context_is_admin": False,
        "args": {
            "instance": {
                "nova_object.name": "Instance", "nova_object.version": "2.7",
                "nova_object.namespace": "nova",
                "nova_object.data": {
                    "uuid": secrets.token_hex(16), "vcpus": 2, "memory_mb": 2048,
                    "root_gb": 20, "host": f"compute-{i % 17}", "display_name": f"vm-{i}",
                    "metadata": {"k": "v" * 40}, "vm_state": "building",
                    "flavor": {"name": "m1.small", "extra_specs": {"hw:cpu_policy": "dedicated"}},
                },
            },
            "request_spec": {"num_instances": 1, "image": {"name": "cirros", "size": 12716032},
                             "scheduler_hints": {}, "notes": "x" * 700},
            "filter_properties": {"retry": {"num_attempts": 1, "hosts": [["h", "n"]]}},
        },
    }
    return json.dumps({"oslo.version": "2.0", "oslo.message": json.dumps(inner)}).encode()


# -- publisher process -----------------------------------------------------------------


def publisher(vhost: str, count: int, rate: float) -> None:
    """Publish ``count`` messages at ``rate``/s (0: as fast as possible); print JSON."""
    import pika

    bodies = [oslo_body(i) for i in range(min(count, 500))]
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url(vhost)))
    ch = conn.channel()
    props = pika.BasicProperties(content_type="application/json", delivery_mode=1)
    start = time.perf_counter()
    burst = 50
    for i in range(0, count, burst):
        for j in range(i, min(i + burst, count)):
            ch.basic_publish(EXCHANGE, QUEUE, bodies[j % len(bodies)], props)
        if rate:
            ahead = (i + burst) / rate - (time.perf_counter() - start)
            if ahead > 0:
                time.sleep(ahead)
        conn.process_data_events(0)  # heartbeats, flow control (connection.blocked)
    ch.queue_declare(QUEUE, passive=True)  # synchronous: everything before is routed
    seconds = time.perf_counter() - start
    conn.close()
    print(json.dumps({"count": count, "seconds": seconds, "rate": count / seconds}))


def publish(vhost: str, count: int, rate: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--publisher", vhost, str(count), str(rate)],
        capture_output=True, text=True, check=True, timeout=600,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


class Drainer:
    """A consumer on the application queue, so messages are delivered (and traced)."""

    def __init__(self, vhost: str) -> None:
        self.vhost = vhost
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(amqp_url(self.vhost)))
        ch = conn.channel()
        ch.basic_qos(prefetch_count=500)
        ch.basic_consume(QUEUE, lambda c, m, p, b: None, auto_ack=True)
        while not self.stop.is_set():
            conn.process_data_events(0.1)
        conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


# -- the agent ----------------------------------------------------------------------------


class AgentRun:
    def __init__(self, vhost: str, db: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "busdoc", "capture", "firehose", "--url", amqp_url(vhost),
             "--db", db, "--duration", "900", "--log-level", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "capturing; tracing" in line:
                break
        else:
            raise SystemExit("agent did not start: " + self.proc.stderr.read())

    def stop(self) -> tuple[float, int, str]:
        """SIGTERM; returns (CPU seconds, peak RSS KiB, stdout)."""
        self.proc.send_signal(signal.SIGTERM)
        out = self.proc.stdout.read() if self.proc.stdout else ""
        if self.proc.stderr:
            self.proc.stderr.read()
        _pid, _status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = 0
        return usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out


def stored_since(db: str, after_run: int) -> tuple[int, list[Any]]:
    from busdoc.storage import open_store

    store = open_store(db)
    try:
        runs = [r for r in store.runs() if r.id > after_run]
    finally:
        store.close()
    run = runs[-1]
    return run.counts.get("messages", 0), run.stats.get("gaps", [])


def count_messages(db: str) -> int:
    from busdoc.storage import open_store

    store = open_store(db)
    try:
        return store.stats()["messages"]
    finally:
        store.close()


def stage(vhost: str, db: str, count: int, rate: float, drainer_needed: bool = True
          ) -> dict[str, Any]:
    from busdoc.storage import open_store

    store = open_store(db)
    before_runs = max((r.id for r in store.runs()), default=0)
    before = store.stats()["messages"]
    store.close()
    agent = AgentRun(vhost, db)
    pub = publish(vhost, count, rate)
    # Let the agent drain: stop when the store stops growing for 3 s.
    last, still = -1, time.monotonic()
    while time.monotonic() - still < 3:
        now = count_messages(db) - before
        if now != last:
            last, still = now, time.monotonic()
        if now >= count:
            break
        time.sleep(0.3)
    cpu, rss, _out = agent.stop()
    stored, gaps = stored_since(db, before_runs)
    return {"target": rate, "published": count, "broker_rate": pub["rate"], "stored": stored,
            "lost": count - stored, "gaps": len(gaps), "cpu_s": cpu, "rss_mib": rss / 1024,
            "publish_s": pub["seconds"]}


def plugin_stage(vhost: str, count: int, rate: float) -> dict[str, Any]:
    """rabbitmq_tracing writing a JSON file at the same load."""
    q = urllib.parse.quote(vhost, safe="")
    name = f"busdoc-bench-{secrets.token_hex(3)}"
    http("PUT", f"/traces/{q}/{name}", {"format": "json", "pattern": "#",
                                         "max_payload_bytes": 1 << 20})
    try:
        pub = publish(vhost, count, rate)
        path = f"/var/tmp/rabbitmq-tracing/{name}.log"
        last, still = -1, time.monotonic()
        while time.monotonic() - still < 3:
            try:
                with open(path, "rb") as f:
                    lines = sum(1 for _ in f)
            except OSError:
                lines = 0
            if lines != last:
                last, still = lines, time.monotonic()
            if lines >= 2 * count:
                break
            time.sleep(0.3)
    finally:
        http("DELETE", f"/traces/{q}/{name}")
        try:
            http("DELETE", f"/trace-files/{name}.log")
        except OSError:
            pass
    return {"target": rate, "published": count, "broker_rate": pub["rate"],
            "trace_lines": last, "expected_lines": 2 * count}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="5k messages in all")
    ap.add_argument("--messages", type=int, default=None, help="messages per stage")
    ap.add_argument("--db", default=None, help="SQLite store (default: a temporary file)")
    ap.add_argument("--no-plugin", action="store_true", help="skip rabbitmq_tracing")
    args = ap.parse_args()
    per_stage = args.messages or (700 if args.quick else 8000)
    tmp = tempfile.mkdtemp(prefix="busdoc-bench-")
    db = args.db or os.path.join(tmp, "bench.db")
    vhost = f"busdoc-bench-{secrets.token_hex(3)}"
    q = urllib.parse.quote(vhost, safe="")
    http("PUT", f"/vhosts/{q}", {})
    http("PUT", f"/permissions/{q}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    total = 0
    try:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(amqp_url(vhost)))
        ch = conn.channel()
        ch.exchange_declare(EXCHANGE, "topic")
        ch.queue_declare(QUEUE)
        ch.queue_bind(QUEUE, EXCHANGE, QUEUE)
        conn.close()
        drainer = Drainer(vhost)
        idle_cpu, idle_rss, _ = AgentRun(vhost, db).stop()
        print(f"agent start and stop, no traffic: {idle_cpu:.2f} CPU s, "
              f"{idle_rss / 1024:.0f} MiB peak RSS", flush=True)

        off = publish(vhost, per_stage, 0)
        total += per_stage
        print(f"broker, tracing off, as fast as possible: {off['rate']:,.0f} msgs/s", flush=True)
        top = stage(vhost, db, per_stage, 0)
        total += per_stage
        on_rate = top["broker_rate"]
        print(f"broker, tracing on + agent, as fast as possible: {on_rate:,.0f} msgs/s "
              f"(agent stored {top['stored']:,}/{per_stage:,})", flush=True)
        rows = []
        for fraction in (0.25, 0.5, 0.75, 1.0):
            row = stage(vhost, db, per_stage, round(on_rate * fraction))
            total += per_stage
            rows.append(row)
            print(f"  {fraction:.0%}: {row}", flush=True)
        rows.append(top)
        plugin = None
        if not args.no_plugin:
            try:
                plugin = plugin_stage(vhost, per_stage, 0)
                total += per_stage
            except OSError as e:
                print(f"rabbitmq_tracing not available: {e}")
        drainer.close()
    finally:
        http("PUT", f"/vhosts/{q}", {"tracing": False})
        http("DELETE", f"/vhosts/{q}")

    print()
    print(f"{total:,} messages of {len(oslo_body(1)):,} bytes published in all; "
          f"each traces as a publish and a deliver")
    print(f"broker publish rate, tracing off: {off['rate']:>9,.0f} msgs/s")
    print(f"broker publish rate, tracing on:  {on_rate:>9,.0f} msgs/s (agent capturing)")
    print()
    print(f"{'target/s':>9} {'broker/s':>9} {'published':>9} {'stored':>8} {'lost':>6} "
          f"{'gaps':>4} {'agent CPU s':>11} {'CPU ms/msg':>10} {'peak RSS MiB':>12}")
    for r in rows:
        target = "max" if not r["target"] else f"{r['target']:,}"
        print(f"{target:>9} {r['broker_rate']:>9,.0f} {r['published']:>9,} {r['stored']:>8,} "
              f"{r['lost']:>6,} {r['gaps']:>4} {r['cpu_s']:>11.1f} "
              f"{1000 * (r['cpu_s'] - idle_cpu) / max(1, r['stored']):>10.2f} "
              f"{r['rss_mib']:>12.0f}")
    lossless = [r for r in rows if r["lost"] == 0]
    best = max((r["broker_rate"] for r in lossless), default=0.0)
    print()
    print(f"highest rate with no loss: {best:,.0f} msgs/s "
          f"({'= the broker maximum with tracing on' if top['lost'] == 0 else 'below max'})")
    print(f"(CPU ms/msg: agent CPU minus its {idle_cpu:.2f} s start-up and shutdown, per "
          "stored message, i.e. per publish + deliver trace pair)")
    if plugin is not None:
        print(f"rabbitmq_tracing plugin (json file), as fast as possible: "
              f"{plugin['broker_rate']:,.0f} msgs/s, {plugin['trace_lines']:,} of "
              f"{plugin['expected_lines']:,} trace lines written")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--publisher":
        publisher(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        main()
