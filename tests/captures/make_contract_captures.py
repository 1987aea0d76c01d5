"""Regenerate the drift and contract fixtures from real oslo.messaging traffic.

Run as root (tcpdump): ``.venv/bin/python tests/captures/make_contract_captures.py
[v1 v2 good bad]``. Each run of ``tests/oslo_testservice/contract.py`` (one API version or
client behaviour) is captured on ``lo`` in a fresh vhost, with the same steps as
``make_captures.py`` (whose helpers it reuses): tcpdump must report 0 packets dropped,
then only the ports our own py-amqp connections opened are kept, since other programs
share the broker. Writes ``contract_<api>.pcap`` and its manifest ``contract_<api>.json``.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_captures as mc  # noqa: E402  (a sibling script, not a package)

NAMES = {"v1": "contract_v1", "v2": "contract_v2", "good": "contract_good_client",
         "bad": "contract_bad_client"}


def make(api: str) -> None:
    name = NAMES[api]
    vhost = f"busdoc-contract-{api}"
    svc = mc.load_oslo_service()
    tap_mod = importlib.import_module(f"{svc.__name__}.tap")
    contract = importlib.import_module(f"{svc.__name__}.contract")
    mc.fresh_vhost(vhost)
    tap = tap_mod.Tap()
    tap.install()
    raw = HERE / f".{name}.raw.pcap"
    dump = mc.Tcpdump("lo", raw)
    dump.start()
    try:
        traffic = contract.run_contract(f"rabbit://guest:guest@{mc.HOST}:{mc.PORT}/{vhost}",
                                        api)
    finally:
        dump.stop()
        tap.uninstall()
    out = HERE / f"{name}.pcap"
    mc.keep_ports(raw, out, [c.local_port for c in tap.connections])
    raw.unlink()
    mc.drop_vhost(vhost)
    for c in tap.connections:
        c.user = "guest"
    mc.write_manifest(
        name, out, tap.events, tap.connections,
        f"tcpdump on lo around tests/oslo_testservice/contract.py run_contract(api={api!r}); "
        "ground truth from py-amqp's publish/deliver/get/return methods",
        {"vhost": vhost, "api": api, "changes": contract.CHANGES,
         "sent": mc.jsonable(traffic["sent"]),
         "received_calls": traffic["received_calls"]})


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("make_contract_captures.py needs root for tcpdump", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")
    for api in argv or list(NAMES):
        make(api)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
