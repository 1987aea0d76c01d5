"""Store write throughput: observations/s through Writer.add (redact + hash + identity +
batched insert), for SQLite and, when given a URL, PostgreSQL.

    .venv/bin/python bench/bench_store.py [N] [--db URL]

Traffic is oslo.messaging-shaped: every call carries a ``_context_auth_token`` in its
envelope (so the redaction path is the common one, as in a real OpenStack capture), one
publish and one delivery per message; a quarter of the messages are token-free casts.
Prints wall-clock rates and rates per CPU-second of this process (the fairer figure on a
shared machine; for PostgreSQL the server's CPU is not included in the latter).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import orjson

from busdoc.sniffer.records import Observation
from busdoc.storage import open_store
from busdoc.storage.redact import Redactor


def make_observations(n: int) -> list[Observation]:
    out = []
    for i in range(n):
        ctx = {} if i % 4 == 0 else {"_context_auth_token": "gAAAAAB" + "x" * 180}
        inner = {
            "method": "build_and_run_instance",
            "args": {
                "instance": {
                    "nova_object.name": "Instance",
                    "nova_object.version": "2.7",
                    "nova_object.data": {
                        "uuid": f"uuid-{i}",
                        "vcpus": 2,
                        "memory_mb": 2048,
                        **{f"field_{k}": f"value-{k}" for k in range(30)},
                    },
                },
                "request_spec": {"num_instances": 1, "scheduler_hints": {}},
            },
            "_context_request_id": f"req-{i}",
            "_context_roles": ["member", "reader"],
            "_msg_id": f"{i:032x}",
            "_reply_q": "reply_abc",
            **ctx,
        }
        body = orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(inner).decode()})
        common = dict(
            source="pcap",
            channel=1,
            exchange="nova",
            routing_key="compute.host1",
            properties={"content_type": "application/json", "delivery_mode": 2},
            headers=None,
            body=body,
            vhost="/",
        )
        out.append(Observation(time=i, connection="pub", kind="publish", **common))
        out.append(
            Observation(
                time=i + 0.001,
                connection="con",
                kind="deliver",
                queue="compute.host1",
                delivery_tag=i + 1,
                **common,
            )
        )
    return out


def run(target: str, observations: list[Observation]) -> tuple[float, float]:
    store = open_store(target)
    run_ = store.begin_run(kind="bench", name="bench", content_hash=None)
    assert run_ is not None
    started = time.perf_counter()
    cpu = time.process_time()
    with store.writer(run_, redactor=Redactor()) as writer:
        for obs in observations:
            writer.add(obs)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    store.finish_run(run_, stats={})
    store.close()
    return len(observations) / elapsed, len(observations) / cpu


def calibrate() -> float:
    """CPU seconds of a fixed pure-Python loop: how fast this machine is right now."""
    started = time.process_time()
    total = 0
    for i in range(5_000_000):
        total += i
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=50_000, help="messages")
    parser.add_argument("--db", help="also run against this URL (e.g. postgresql://...)")
    args = parser.parse_args()
    observations = make_observations(args.n)
    print(f"calibration: 5M-step Python loop {calibrate():.2f} CPU s")
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = run(os.path.join(tmp, "bench.db"), observations)
        print(
            f"sqlite:     {wall:,.0f} observations/s wall, {cpu:,.0f}/s of our CPU "
            f"({len(observations):,} observations)"
        )
    if args.db:
        wall, cpu = run(args.db, observations)
        print(f"{args.db.split(':')[0]}: {wall:,.0f} observations/s wall, {cpu:,.0f}/s of our CPU")
    print(f"calibration: 5M-step Python loop {calibrate():.2f} CPU s")


if __name__ == "__main__":
    main()
