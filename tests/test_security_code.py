"""Hostile bodies cannot run code: no unpickling, no eval, YAML only through a safe loader.

A static check over every module busdoc installs, and the behaviour behind it: a pickle
body and a YAML body that would run code when loaded unsafely go through body decoding
and inference, and the marker file their payload would create never appears.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from busdoc.inference.classify import decode_body
from busdoc.storage.records import StoredMessage

ROOT = Path(__file__).parent.parent
PACKAGES = ("busdoc", "sniffer", "storage", "inference", "reports")
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle",
                     "jsonpickle"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
YAML_LOADS = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load",
              "full_load_all"}


def sources() -> list[Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    assert len(files) > 30
    return files


def _enclosing_source(node: ast.AST, parents: dict[ast.AST, ast.AST], source: str) -> str:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return ast.get_source_segment(source, node) or ""
    return ""


def _problems(path: Path) -> list[str]:
    source = path.read_text()
    tree = ast.parse(source, filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""])
            found += [f"imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in FORBIDDEN_CALLS:
                found.append(f"calls {f.id}()")
            if (isinstance(f, ast.Attribute) and f.attr in YAML_LOADS
                    and isinstance(f.value, ast.Name) and f.value.id == "yaml"):
                loader = next((k.value for k in node.keywords if k.arg == "Loader"), None)
                if loader is None and len(node.args) > 1:
                    loader = node.args[1]
                code = ast.unparse(loader) if loader is not None else ""
                # a loader held in a variable must be picked among safe loaders nearby
                text = _enclosing_source(node, parents, source)
                safe = "Safe" in code or (
                    isinstance(loader, ast.Name) and "SafeLoader" in text
                    and not any(u in text for u in ("FullLoader", "UnsafeLoader", "yaml.Loader"))
                )
                if f.attr.startswith(("unsafe", "full")) or not safe:
                    found.append(f"yaml.{f.attr} without a safe loader (line {node.lineno})")
    return sorted(set(found))


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_never_unpickles_evals_or_loads_yaml_unsafely(path: Path) -> None:
    assert _problems(path) == []


def test_the_static_check_catches_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport yaml\n"
                   "def f(b):\n    eval(b)\n    return yaml.load(b, Loader=yaml.Loader)\n")
    assert _problems(bad) == ["calls eval()", "imports pickle",
                              "yaml.load without a safe loader (line 5)"]


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.mkdir, (str(self.marker),))


def _message(body: bytes, content_type: str) -> StoredMessage:
    return StoredMessage(
        id=1, vhost="/", exchange="celery", routing_key="celery",
        properties={"content_type": content_type}, headers=None, body=body,
        body_size=len(body), body_sha256="0" * 64, truncated=False, redactions=(),
        first_seen=0.0, observations=(),
    )


@pytest.mark.parametrize("content_type", ["application/x-python-serialize",
                                          "application/python-pickle", "application/json", None])
def test_pickle_body_is_never_unpickled(tmp_path: Path, content_type: str | None) -> None:
    marker = tmp_path / "pwned-by-pickle"
    body = pickle.dumps(_Payload(marker))
    decode_body(_message(body, content_type))  # type: ignore[arg-type]
    assert not marker.exists()


@pytest.mark.parametrize("content_type", ["application/x-yaml", "text/yaml"])
def test_yaml_body_cannot_construct_python_objects(tmp_path: Path, content_type: str) -> None:
    pytest.importorskip("yaml")
    marker = tmp_path / "pwned-by-yaml"
    body = f"!!python/object/apply:os.mkdir ['{marker}']\n".encode()
    decode_body(_message(body, content_type))
    assert not marker.exists()
