"""The proof of issue 6: a Java client built only from busdoc's output talks to the real service.

From the committed capture ``oslo_rpc.pcap``: import, infer, render JSON Schema and the
catalog; generate Java classes with quicktype (args and replies of ``get_console_url``
and ``build_instance`` at their newest versions, the latter with the ``Instance``
versioned object, args of ``reboot_instance``, the oslo envelope, request and reply
message); compile the client template ``tests/java/ProofClient.java`` with them against
Debian's ``librabbitmq-client-java`` and ``libjackson2-databind-java``; run it against
the project's oslo.messaging compute service in a temporary vhost. The exchange, routing
key, API versions, reply queue naming and content type it uses are read from the
catalog and the wire schemas, not from the service's code.

Needs a JDK, ``librabbitmq-client-java`` and ``libjackson2-databind-java`` from Debian
(``tools/ensure-services.sh`` installs them) and quicktype, pinned in
``tools/java/package-lock.json``: ``npm ci --prefix tools/java``, or without
``tools/java/node_modules`` the test runs ``npm ci`` once into a cache folder
(``BUSDOC_NPM_CACHE``, default ``~/.cache/busdoc``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from brokerutil import temp_vhost, url_for, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.timeout(240)]

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CAPTURE = TESTS / "captures" / "oslo_rpc.pcap"
TEMPLATE = TESTS / "java" / "ProofClient.java"
SERVICE = TESTS / "java" / "proof_service.py"
TOOL = ROOT / "tools" / "java"
QUICKTYPE = TOOL / "node_modules" / ".bin" / "quicktype"
JARS = [
    Path("/usr/share/java") / name
    for name in ("amqp-client.jar", "jackson-databind.jar", "jackson-core.jar",
                 "jackson-annotations.jar", "slf4j-api.jar", "slf4j-nop.jar")
]
PACKAGE = "busdoc.proof"
# role in the client -> method; each is used at the newest version the catalog documents
METHODS = {"call": "get_console_url", "build": "build_instance", "cast": "reboot_instance"}


def _missing_tools() -> list[str]:
    missing = [str(j) for j in JARS if not j.exists()]
    missing += [tool for tool in ("javac", "java", "node", "npm") if shutil.which(tool) is None]
    return missing


@pytest.fixture(scope="module")
def quicktype() -> Path:
    """quicktype from ``tools/java``: its node_modules, else ``npm ci`` once into a cache."""
    if _missing_tools():
        pytest.fail(f"the Java proof needs {', '.join(_missing_tools())} (apt-get install "
                    "default-jdk-headless librabbitmq-client-java libjackson2-databind-java "
                    "nodejs npm)")
    if QUICKTYPE.exists():
        return QUICKTYPE
    lock = (TOOL / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("BUSDOC_NPM_CACHE", Path.home() / ".cache" / "busdoc"))
    target = cache / ("java-quicktype-" + hashlib.sha256(lock).hexdigest()[:12])
    binary = target / "node_modules" / ".bin" / "quicktype"
    if not binary.exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(TOOL / name, target / name)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                       cwd=target, check=True, capture_output=True, timeout=600)
    return binary


def busdoc(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "busdoc", *args], check=True, capture_output=True,
                   text=True, timeout=120)


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """busdoc's output for the committed capture: catalog, JSON Schemas and Markdown."""
    out = tmp_path_factory.mktemp("busdoc-out")
    db = str(out / "store.db")
    busdoc("capture", "pcap", str(CAPTURE), "--db", db)
    busdoc("infer", "--db", db, "--format", "json", "-o", str(out / "catalog.json"))
    busdoc("infer", "--db", db, "--format", "jsonschema", "-o", str(out / "schemas"))
    busdoc("infer", "--db", db, "--format", "markdown", "-o", str(out / "interface.md"))
    return out


def newest(catalog: dict[str, Any], method: str) -> dict[str, Any]:
    """The catalog entry of ``method`` at its highest version."""
    found = [e for e in catalog["entries"] if e["kind"] == "rpc" and e["method"] == method]
    assert found, method
    return max(found, key=lambda e: tuple(int(p) for p in e["version"].split(".")))


def schema_files(schemas: Path) -> dict[str, Path]:
    """Schema files by ``method@version`` (``.reply`` for the reply) and wire name.

    Found through the index busdoc writes next to them.
    """
    index = json.loads((schemas / "index.json").read_text())["entries"]
    files: dict[str, Path] = {}
    for key, names in index.items():
        for name in names:
            path = schemas / name
            if key.startswith("wire:"):
                files[path.name.removesuffix(".schema.json")] = path
            elif key.startswith("rpc:"):
                reply = ".reply" if name.endswith(".reply.schema.json") else ""
                files[key.rsplit("/", 1)[1] + reply] = path
    return files


def contract(output: Path, url: str, values: dict[str, str]) -> dict[str, str]:
    """Where and how to send, from the catalog and the wire schemas only."""
    catalog = json.loads((output / "catalog.json").read_text())
    files = schema_files(output / "schemas")
    entries = {role: newest(catalog, method) for role, method in METHODS.items()}
    assert entries["call"]["styles"] == entries["build"]["styles"] == ["call"]
    assert entries["cast"]["styles"] == ["cast"]
    request = json.loads(files["request"].read_text())
    reply_q = re.fullmatch(r"\^(\w+)\[0-9a-f\]\{32\}\$",
                           request["properties"]["_reply_q"]["pattern"])
    assert reply_q, request["properties"]["_reply_q"]
    envelope = json.loads(files["envelope"].read_text())
    content_type = re.search(r"content type `([^`]+)`, ([\w-]+)", envelope["description"])
    assert content_type, envelope["description"]
    call = entries["call"]
    for e in entries.values():
        assert (e["exchange"], e["routing_keys"]) == (call["exchange"], call["routing_keys"])
        assert not e["exchange_guessed"]
    return {
        "uri": url,
        "exchange": call["exchange"],
        "routing_key": call["routing_keys"][0],
        "reply_queue_prefix": reply_q.group(1),
        "content_type": content_type.group(1),
        "content_encoding": content_type.group(2).lower(),
        **{f"{role}.method": e["method"] for role, e in entries.items()},
        **{f"{role}.version": e["version"] for role, e in entries.items()},
        **values,
    }


def patch_converter(source: str) -> str:
    """Let the generated ``*ToJsonString`` throw IOException.

    Debian's jackson-databind 2.14 declares ``writeValueAsString`` as throwing
    ``IOException``; quicktype declares only ``JsonProcessingException`` (its subclass)
    and has no option for it, so widen the ``throws`` clause mechanically.
    """
    patched, n = re.subn(r"(ToJsonString\(\w+ obj\)) throws JsonProcessingException",
                         r"\1 throws IOException", source)
    assert n > 0, "quicktype's converter changed shape"
    return patched


def build_client(quicktype: Path, schemas: Path, catalog_file: Path, work: Path) -> Path:
    """quicktype the needed schemas to Java, add the client template, compile; the class dir."""
    catalog = json.loads(catalog_file.read_text())
    files = schema_files(schemas)
    wanted: list[str] = []
    for method in METHODS.values():
        entry = newest(catalog, method)
        key = f"{method}@{entry['version']}"
        wanted += [key, key + ".reply"] if entry["reply"] else [key]
    src = work / "src" / Path(*PACKAGE.split("."))
    src.mkdir(parents=True)
    sources = [files[k] for k in (*wanted, "envelope", "request", "reply")]
    subprocess.run(
        [str(quicktype), "--lang", "java", "--src-lang", "schema", "--package", PACKAGE,
         "--array-type", "list",
         # java.util.Date: Debian has no jackson-datatype-jsr310, and jackson 2.12+
         # refuses to serialise java.time types without it.
         "--datetime-provider", "legacy", "-o", str(src / "Converter.java"), *map(str, sources)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    converter = src / "Converter.java"
    converter.write_text(patch_converter(converter.read_text()))
    shutil.copy(TEMPLATE, src / TEMPLATE.name)
    classes = work / "classes"
    done = subprocess.run(
        ["javac", "-d", str(classes), "-cp", os.pathsep.join(map(str, JARS)),
         *sorted(map(str, src.glob("*.java")))],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return classes


def run_client(
    classes: Path, properties: dict[str, str], work: Path
) -> subprocess.CompletedProcess[str]:
    path = work / "contract.properties"
    # Properties files escape ':' and '='; none of the values here need more.
    path.write_text("".join(f"{k}={v.replace(':', chr(92) + ':')}\n"
                            for k, v in properties.items()))
    classpath = os.pathsep.join([str(classes), *map(str, JARS)])
    return subprocess.run(["java", "-cp", classpath, f"{PACKAGE}.ProofClient", str(path)],
                          capture_output=True, text=True, timeout=90)


class Service:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The oslo.messaging compute service, one server, in a fresh vhost."""
    with temp_vhost("busdoc-java") as vhost:
        log = tmp_path / "received.jsonl"
        amqp = url_for(vhost)
        rabbit = "rabbit" + amqp.removeprefix("amqp")
        with open(tmp_path / "service.err", "w") as err:
            proc = subprocess.Popen([sys.executable, str(SERVICE), rabbit, str(log)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, text=True, cwd=str(ROOT))
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "READY":
                proc.kill()
                proc.wait()
                pytest.fail(f"service did not start: {line}"
                            f"{(tmp_path / 'service.err').read_text()[-2000:]}")
            yield Service(amqp, log)
        finally:
            if proc.poll() is None:
                try:
                    proc.communicate(timeout=60)  # closing stdin stops it
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def values() -> dict[str, str]:
    return {
        "instance_uuid": str(uuid.uuid4()),
        "console_type": "spice-html5",
        "reboot_type": "HARD",
        "hostname": "vm-java",
        "vm_state": "building",
        "memory_mb": "4096",
        "vcpus": "4",
        "created_at": "2026-11-24T20:10:06Z",
        "metadata_key": str(uuid.uuid4()),
        "metadata_value": "from-java",
        "tag": "java",
        "network_id": str(uuid.uuid4()),
        "disk_id": str(uuid.uuid4()),
        "size_gb": "20",
        "host": "host-a",
        "admin_password": "java-proof-password",
        "auth_token": "java-proof-token",
        "user_id": "c0ffee00c0ffee00c0ffee00c0ffee00",
        "project_id": "5a1ad0005a1ad0005a1ad0005a1ad000",
        **{f"{role}.request_id": f"req-{uuid.uuid4()}" for role in METHODS},
    }


def instant(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_java_client_from_generated_classes_calls_and_casts_the_oslo_service(
    quicktype: Path, output: Path, service: Service, tmp_path: Path
) -> None:
    classes = build_client(quicktype, output / "schemas", output / "catalog.json",
                           tmp_path / "java")
    given = values()
    done = run_client(classes, contract(output, service.url, given), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    uuid_, console = given["instance_uuid"], given["console_type"]
    # Each reply, parsed into its generated result class and written back out by it.
    assert json.loads(printed["REPLY"]) == {
        "url": f"http://console.example:6080/{console}?token={uuid_}",
        "console_type": console,
    }
    assert json.loads(printed["BUILD"]) == {"uuid": uuid_, "host": "host-a", "networks": 1}
    assert printed["CAST"] == given["cast.request_id"]

    assert wait_until(lambda: len(service.requests()) == 3, timeout=30)
    got = {r["method"]: r for r in service.requests()}
    assert got["get_console_url"]["args"] == {"instance_uuid": uuid_, "console_type": console}
    assert got["reboot_instance"]["args"] == {
        "instance_uuid": uuid_, "reboot_type": given["reboot_type"]}
    build = got["build_instance"]["args"]
    instance = build.pop("instance")
    data = instance.pop("nova_object.data")
    assert instance == {"nova_object.name": "Instance", "nova_object.namespace": "nova",
                        "nova_object.version": "2.8",
                        "nova_object.changes": ["hostname", "vm_state"]}
    assert instant(data.pop("created_at")) == instant(given["created_at"])
    assert data == {
        "uuid": uuid_, "hostname": given["hostname"], "vm_state": given["vm_state"],
        "memory_mb": 4096, "vcpus": 4, "launched_at": None, "locked_by": None,
        "metadata": {given["metadata_key"]: given["metadata_value"]}, "tags": [given["tag"]],
    }
    scheduled_at = build.pop("scheduled_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", scheduled_at)
    # Jackson writes optional fields left unset as null (port_id): oslo passes them on.
    assert build == {
        "admin_password": given["admin_password"], "host": "host-a",
        "requested_networks": [
            {"network_id": given["network_id"], "fixed_ip": None, "port_id": None}],
        "block_device_mapping": {given["disk_id"]: {"size_gb": 20, "boot_index": 0}},
    }
    for role, method in METHODS.items():
        ctxt = got[method]["ctxt"]
        assert ctxt["request_id"] == given[f"{role}.request_id"]
        assert (ctxt["user_id"], ctxt["project_id"], ctxt["roles"], ctxt["is_admin"]) == (
            given["user_id"], given["project_id"], ["member"], False)


def test_a_wrong_argument_name_in_the_schema_makes_the_real_server_fail_the_call(
    quicktype: Path, output: Path, service: Service, tmp_path: Path
) -> None:
    """The proof can fail: rename one argument in the schema and the server rejects the call."""
    schemas = tmp_path / "schemas"
    shutil.copytree(output / "schemas", schemas)
    catalog = json.loads((output / "catalog.json").read_text())
    version = newest(catalog, METHODS["call"])["version"]
    args_file = schema_files(schemas)[f"{METHODS['call']}@{version}"]
    text = args_file.read_text()
    assert text.count('"console_type"') == 2  # the property and its entry in required
    args_file.write_text(text.replace('"console_type"', '"consoleType"'))
    classes = build_client(quicktype, schemas, output / "catalog.json", tmp_path / "java")
    done = run_client(classes, contract(output, service.url, values()), tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    failure = json.loads(done.stdout.split("FAILURE ", 1)[1])
    assert failure["class"] == "TypeError" and "consoleType" in failure["message"]
    assert [r["method"] for r in service.requests()] == [METHODS["call"]]


def test_an_argument_missing_from_the_schema_breaks_the_client_build(
    quicktype: Path, output: Path, tmp_path: Path
) -> None:
    """Without the argument in the schema there is no generated setter to send it with."""
    schemas = tmp_path / "schemas"
    shutil.copytree(output / "schemas", schemas)
    catalog = json.loads((output / "catalog.json").read_text())
    version = newest(catalog, METHODS["build"])["version"]
    args_file = schema_files(schemas)[f"{METHODS['build']}@{version}"]
    schema = json.loads(args_file.read_text())
    del schema["properties"]["admin_password"]
    schema["required"].remove("admin_password")
    args_file.write_text(json.dumps(schema))
    with pytest.raises(AssertionError, match="setAdminPassword"):
        build_client(quicktype, schemas, output / "catalog.json", tmp_path / "java")


def test_the_markdown_documents_the_contract_the_client_follows(output: Path) -> None:
    """What the client reads from the catalog and wire schemas is what the document says."""
    sent = contract(output, "amqp://unused", {})
    markdown = (output / "interface.md").read_text()
    section = markdown.split("## Wire contract of", 1)[1]
    assert f"content type `{sent['content_type']}`" in section
    assert f"`{sent['reply_queue_prefix']}<uuid4 hex>`" in section
    assert "default exchange" in section and "`_reply_q`" in section
    assert f"| `{sent['exchange']}` | topic | `{sent['routing_key']}` | call/cast |" in section
    for role in METHODS:
        verb = "cast" if role == "cast" else "call"
        assert (f"| to {verb} | exchange `{sent['exchange']}` (topic), routing key "
                f"`{sent['routing_key']}`") in markdown
        assert f"{sent[role + '.method']}@{sent[role + '.version']}.schema.json" in markdown
