"""Inference throughput on oslo-shaped traffic: ``python bench/bench_infer.py [N]``.

Builds N stored messages (calls with nested versioned objects, replies, casts,
notifications; about 1.3 kB bodies in the 2.0 envelope) in memory first, then times only
``Catalog.add`` in CPU time (other load on the machine does not count). Prints messages
per second and the state size; no assertion, no test.

``--once N`` and ``--build-only N`` run without timing, for an instruction count that
does not depend on the load of the machine: the inference of N messages costs
``valgrind --tool=callgrind`` of the first minus that of the second.
"""

from __future__ import annotations

import gc
import os
import random
import resource
import sys
import time
import uuid
from collections.abc import Iterator

import orjson

from busdoc.inference.catalog import Catalog, build_catalog
from busdoc.inference.testing import CONTEXT, call, notification, reply, versioned
from busdoc.storage.records import StoredMessage

STATES = ["active", "building", "stopped", "error"]
REPEAT = 3


def make_messages(n: int, seed: int = 1) -> list[StoredMessage]:
    return list(iter_messages(n, seed))


def iter_messages(n: int, seed: int = 1) -> Iterator[StoredMessage]:
    """``n`` messages, generated lazily (so memory measurements see only inference)."""
    rnd = random.Random(seed)
    out: list[StoredMessage] = []
    t = 1_764_000_000.0
    made = 0
    i = 0
    while made < n:
        if out:
            m = out.pop(0)  # a call before its reply
            made += 1
            yield m
            continue
        t += 0.001
        i += 1
        inst = versioned("Instance", "2.8", {
            "uuid": str(uuid.UUID(int=rnd.getrandbits(128))),
            "vm_state": rnd.choice(STATES),
            "task_state": rnd.choice([None, "spawning", "deleting"]),
            "memory_mb": rnd.choice([512, 1024, 2048]),
            "vcpus": rnd.randint(1, 8),
            "host": f"compute-{rnd.randint(1, 40)}",
            "launched_at": None if rnd.random() < 0.2 else "2026-11-24T20:10:06Z",
            "metadata": {f"key{rnd.randint(1, 300)}": "v" for _ in range(rnd.randint(0, 3))},
            "flavor": versioned("Flavor", "1.2", {"id": rnd.randint(1, 5), "name": "m1.small",
                                                  "extra_specs": {}}),
        })
        kind = i % 4
        context = {**CONTEXT, "_context_request_id": f"req-{uuid.UUID(int=rnd.getrandbits(128))}",
                   "_context_timestamp": f"2026-11-24T20:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d}"}
        if kind == 0:
            m, mid = call("build_and_run_instance",
                          {"instance": inst, "node": f"compute-{rnd.randint(1, 40)}",
                           "limits": {"memory_mb": 2048}, "request_spec": None,
                           "filter_properties": {"retry": {"num_attempts": 1}}},
                          server=f"compute-{rnd.randint(1, 40)}", time=t, context=context)
            out.append(m)
            out.append(reply(mid, {"uuid": inst["nova_object.data"]["uuid"]},
                             time=t + rnd.random() / 20))
        elif kind == 2:
            m, _ = call("terminate_instance", {"instance": inst, "bdms": []}, cast=True, time=t,
                        context=context)
            out.append(m)
        else:
            out.append(notification("compute.instance.update",
                                    {"state": inst["nova_object.data"]["vm_state"],
                                     "instance_id": inst["nova_object.data"]["uuid"],
                                     "memory_mb": 512}, time=t))


def genson_rate(messages: list[StoredMessage]) -> float | None:
    """The design's reference point: parse + unwrap + genson's SchemaBuilder, one per
    routing key, on the same messages and in the same run (so machine load cancels),
    best of ``REPEAT`` like busdoc's own figure."""
    try:
        from genson import SchemaBuilder
    except ImportError:
        return None
    runs = []
    for _ in range(REPEAT):
        builders: dict[str, SchemaBuilder] = {}
        start = time.process_time()
        for m in messages:
            body = orjson.loads(m.body)
            inner = orjson.loads(body["oslo.message"])
            b = builders.get(m.routing_key)
            if b is None:
                b = builders[m.routing_key] = SchemaBuilder()
            b.add_object(inner)
        runs.append(time.process_time() - start)
    return len(messages) / min(runs)


def rss_main(n: int) -> None:
    """Peak RSS of inference alone over ``n`` streamed messages (one size per process)."""
    catalog = build_catalog(iter_messages(n))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rss: {n} messages streamed: peak RSS {peak:.1f} MiB, "
          f"state {len(catalog.dumps_state()):,} bytes, pending {len(catalog.pending)}")


def once_main(n: int, infer: bool) -> None:
    """Build ``n`` messages and, when ``infer``, fold them into a catalog once (untimed)."""
    messages = make_messages(n)
    if infer:
        catalog = Catalog()
        for m in messages:
            catalog.add(m)
        print(f"{catalog.stats['messages']} messages folded")
    else:
        print(f"{n} messages built")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--rss":
        rss_main(int(sys.argv[2]))
        return
    if len(sys.argv) > 2 and sys.argv[1] in ("--once", "--build-only"):
        once_main(int(sys.argv[2]), infer=sys.argv[1] == "--once")
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    messages = make_messages(n)
    gc.freeze()  # the prebuilt messages are not garbage; keep the collector off them
    size = sum(len(m.body) for m in messages) / len(messages)
    runs = []
    for _ in range(REPEAT):  # best of REPEAT, like timeit: other load only slows a run down
        catalog = Catalog()
        start = time.process_time()
        for m in messages:
            catalog.add(m)
        runs.append(time.process_time() - start)
    elapsed = min(runs)
    state = catalog.dumps_state()
    rate = n / elapsed
    print(f"busdoc: {n} messages, mean body {size:.0f} B: {rate:,.0f} msgs/s "
          f"(best of {REPEAT}: {elapsed:.2f} s CPU, worst {max(runs):.2f} s); "
          f"state {len(state):,} bytes compressed; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          f"(includes the messages built in memory)")
    ref = genson_rate(messages[: min(n, 50_000)])
    if ref is not None:
        print(f"genson: {ref:,.0f} msgs/s on the first {min(n, 50_000)} in the same run "
              f"(best of {REPEAT}); "
              f"busdoc/genson = {rate / ref:.2f} (design anchors: 36k vs 15k = 2.4)")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
