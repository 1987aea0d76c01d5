"""Run the test compute service (``tests/oslo_testservice``) for the Java proof.

A child process, so the service runs beside the Java client as a real server would.
Usage: ``proof_service.py URL LOG``; prints
``READY`` once the server consumes, appends one JSON line per request it dispatched
(method, context, arguments) to LOG, and stops when stdin closes.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent


def load_service() -> Any:
    """Import tests/oslo_testservice by path under a name that shadows nothing."""
    name = "busdoc_oslo_service"
    root = TESTS / "oslo_testservice"
    spec = importlib.util.spec_from_file_location(
        name, root / "__init__.py", submodule_search_locations=[str(root)]
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.service")


def main(url: str, log_path: str) -> None:
    import oslo_messaging as messaging

    service = load_service()
    declared = service.declared
    lock = threading.Lock()

    def log(method: str, ctxt: dict[str, Any], args: dict[str, Any]) -> None:
        with lock, open(log_path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"method": method, "ctxt": ctxt, "args": args}) + "\n")

    class Recording(service.ComputeEndpoint):  # type: ignore[misc,name-defined]
        """The service's own endpoint, logging what each method was given."""

        def get_console_url(self, ctxt: dict[str, Any], **args: Any) -> dict[str, Any]:
            log("get_console_url", ctxt, args)
            result: dict[str, Any] = super().get_console_url(ctxt, **args)
            return result

        def build_instance(self, ctxt: dict[str, Any], **args: Any) -> dict[str, Any]:
            log("build_instance", ctxt, args)
            result: dict[str, Any] = super().build_instance(ctxt, **args)
            return result

        def reboot_instance(self, ctxt: dict[str, Any], **args: Any) -> None:
            log("reboot_instance", ctxt, args)
            super().reboot_instance(ctxt, **args)

    conf = service._conf()
    transport = messaging.get_rpc_transport(conf, url=url)
    server = messaging.get_rpc_server(
        transport,
        messaging.Target(topic=declared.TOPIC, server="host-a", exchange=declared.EXCHANGE),
        [Recording("host-a", service.Received(), set())],
        executor="threading",
    )
    server.start()
    print("READY", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()
        server.wait()
        transport.cleanup()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
