"""Inference throughput on oslo-shaped traffic: ``python -m busdoc.inference.bench [N]``.

Builds N stored messages (calls with nested versioned objects, replies, casts,
notifications; about 1.3 kB bodies in the 2.0 envelope) in memory first, then times only
``Catalog.add`` in CPU time (other load on the machine does not count). Prints messages
per second and the state size; no assertion, no test.
"""

from __future__ import annotations

import random
import sys
import time
import uuid

from busdoc.inference.catalog import Catalog
from busdoc.inference.testing import call, notification, reply, versioned
from busdoc.storage.records import StoredMessage

STATES = ["active", "building", "stopped", "error"]


def make_messages(n: int, seed: int = 1) -> list[StoredMessage]:
    rnd = random.Random(seed)
    out: list[StoredMessage] = []
    t = 1_764_000_000.0
    while len(out) < n:
        t += 0.001
        i = len(out)
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
        if kind == 0:
            m, mid = call("build_and_run_instance",
                          {"instance": inst, "node": f"compute-{rnd.randint(1, 40)}",
                           "limits": {"memory_mb": 2048}, "request_spec": None,
                           "filter_properties": {"retry": {"num_attempts": 1}}},
                          server=f"compute-{rnd.randint(1, 40)}", time=t)
            out.append(m)
            out.append(reply(mid, {"uuid": inst["nova_object.data"]["uuid"]},
                             time=t + rnd.random() / 20))
        elif kind == 2:
            m, _ = call("terminate_instance", {"instance": inst, "bdms": []}, cast=True, time=t)
            out.append(m)
        else:
            out.append(notification("compute.instance.update",
                                    {"state": inst["nova_object.data"]["vm_state"],
                                     "instance_id": inst["nova_object.data"]["uuid"],
                                     "memory_mb": 512}, time=t))
    return out[:n]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    messages = make_messages(n)
    size = sum(len(m.body) for m in messages) / len(messages)
    catalog = Catalog()
    start = time.process_time()
    for m in messages:
        catalog.add(m)
    elapsed = time.process_time() - start
    state = catalog.dumps_state()
    print(f"{n} messages, mean body {size:.0f} B: {n / elapsed:,.0f} msgs/s "
          f"({elapsed:.2f} s); state {len(state):,} bytes compressed")


if __name__ == "__main__":
    main()
