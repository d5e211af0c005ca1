"""Every package the code imports is declared in pyproject.toml, so a clean install has what it runs."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from conftest import ROOT


def _imported(paths: Iterable[Path]) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    ours = {"rag", "ingest", "train", "evaluate", "conftest", "openai_server"} | {
        p.stem for p in ROOT.glob("tests/*.py")
    }
    return names - set(sys.stdlib_module_names) - {"__future__"} - ours


def _declared(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_every_imported_package_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    runtime = _declared(project["dependencies"])
    dev = runtime | _declared(project["optional-dependencies"]["dev"])
    providers = importlib.metadata.packages_distributions()

    def undeclared(modules: set[str], declared: set[str]) -> dict[str, list[str]]:
        found = {m: [d.lower().replace("_", "-") for d in providers.get(m, [m])] for m in modules}
        return {m: dists for m, dists in found.items() if not set(dists) & declared}

    shipped = [ROOT / "app.py", *(ROOT / "rag").rglob("*.py"), *(ROOT / "ingest").rglob("*.py")]
    assert undeclared(_imported(shipped), runtime) == {}
    measured = [ROOT / "bench" / "evaluate.py", *(ROOT / "tests").glob("*.py")]
    assert undeclared(_imported(measured), dev) == {}


def test_training_stays_in_its_extra() -> None:
    """The code that trains the shipped models declares what it needs in the `train` extra, and nothing that
    runs Newsdesk imports it or its libraries (a user never installs torch)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    train = _declared(project["dependencies"]) | _declared(project["optional-dependencies"]["train"])
    providers = importlib.metadata.packages_distributions()
    needed = _imported((ROOT / "train").glob("*.py"))
    assert {"torch", "transformers"} <= needed
    missing = {m for m in needed if not {d.lower().replace("_", "-") for d in providers.get(m, [m])} & train}
    assert missing == set()
    shipped = [ROOT / "app.py", *(ROOT / "rag").rglob("*.py"), *(ROOT / "ingest").rglob("*.py")]
    imported = set()
    for path in shipped:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                imported |= {(getattr(node, "module", None) or a.name).split(".")[0] for a in node.names}
    assert not imported & {"torch", "transformers", "onnx", "train"}
