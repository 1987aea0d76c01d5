"""Firehose agent soak: a steady publisher for minutes, the agent's RSS sampled over time.

    .venv/bin/python bench/bench_soak.py [--minutes 4] [--rate 200] [--every 10]

A leak in the agent (records kept after they are stored, a growing matcher, caches
without a bound) shows as RSS that keeps climbing while the load stays the same; a
healthy agent levels off once its caches and SQLite page cache are warm. The agent is the
real CLI (``busdoc capture firehose``) in its own process, writing a temporary SQLite
store; the publisher (oslo-style casts of about 2 KB, one consumer draining the queue, so
each message traces as a publish and a deliver) runs in another process at a fixed rate.
RSS is read from ``/proc/PID/status`` (VmRSS) every ``--every`` seconds.

Printed: one row per sample (elapsed s, RSS MiB, messages published so far), then RSS at
the end of the first quarter against the last sample, the growth per 10k messages over
the last three quarters, and stored vs published counts (loss).

Needs the local RabbitMQ (guest/guest, management API on :15672); works in a temporary
vhost, removed after.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_firehose import (  # noqa: E402 - a sibling script, not a package
    EXCHANGE,
    QUEUE,
    AgentRun,
    Drainer,
    count_messages,
    http,
)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--rate", type=float, default=200.0, help="messages/s published")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between RSS samples")
    args = ap.parse_args()

    vhost = f"busdoc-soak-{secrets.token_hex(4)}"
    quoted = urllib.parse.quote(vhost, safe="")
    http("PUT", f"/vhosts/{quoted}", {})
    http("PUT", f"/permissions/{quoted}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    http("PUT", f"/exchanges/{quoted}/{EXCHANGE}", {"type": "topic"})
    http("PUT", f"/queues/{quoted}/{QUEUE}", {})
    http("POST", f"/bindings/{quoted}/e/{EXCHANGE}/q/{QUEUE}", {"routing_key": QUEUE})
    tmp = tempfile.mkdtemp(prefix="busdoc-soak-")
    db = os.path.join(tmp, "soak.db")
    seconds = args.minutes * 60
    total = int(seconds * args.rate)
    drainer = Drainer(vhost)
    agent = AgentRun(vhost, db)
    samples: list[tuple[float, int, int]] = []
    try:
        pub = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "bench_firehose.py"), "--publisher",
             vhost, str(total), str(args.rate)],
            stdout=subprocess.PIPE, text=True,
        )
        start = time.monotonic()
        print(f"soak: {args.minutes:g} min at {args.rate:g} msg/s ({total:,} messages), "
              f"agent pid {agent.proc.pid}")
        print(f"{'elapsed s':>10} {'RSS MiB':>8} {'published':>10}")
        while pub.poll() is None:
            elapsed = time.monotonic() - start
            sent = min(total, int(elapsed * args.rate))
            samples.append((elapsed, rss_kib(agent.proc.pid), sent))
            print(f"{elapsed:10.0f} {samples[-1][1] / 1024:8.1f} {sent:10,}", flush=True)
            time.sleep(args.every)
        report = json.loads(pub.stdout.read() if pub.stdout else "{}")
        time.sleep(3)  # the agent's last batch
        samples.append((time.monotonic() - start, rss_kib(agent.proc.pid), total))
        print(f"{samples[-1][0]:10.0f} {samples[-1][1] / 1024:8.1f} {total:10,}")
        cpu, peak, _out = agent.stop()
    finally:
        drainer.close()
        if agent.proc.poll() is None:
            agent.proc.kill()
        http("DELETE", f"/vhosts/{quoted}")

    quarter = next((s for s in samples if s[0] >= seconds / 4), samples[0])
    last = samples[-1]
    growth = (last[1] - quarter[1]) / 1024
    per_10k = growth / max(1, (last[2] - quarter[2]) / 10_000)
    stored = count_messages(db)
    print()
    print(f"published {report.get('count', total):,} at {report.get('rate', 0):,.0f} msg/s; "
          f"stored {stored:,} messages (each a publish and a deliver)")
    print(f"RSS after the first quarter {quarter[1] / 1024:.1f} MiB, at the end "
          f"{last[1] / 1024:.1f} MiB: {growth:+.1f} MiB ({per_10k:+.2f} MiB per 10k messages); "
          f"peak {peak / 1024:.1f} MiB, agent CPU {cpu:.0f} s")


if __name__ == "__main__":
    main()
