"""The package's architecture, checked: the import contracts in pyproject.toml hold
(import-linter's `lint-imports`, as CI runs it), they catch a forbidden import, no
module of cnnc takes part in an import cycle, and every module says what it is for."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

grimp = pytest.importorskip("grimp", reason="import-linter (a test dependency) is not installed")
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    if LINT_IMPORTS is None:
        pytest.skip("lint-imports is not installed")
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([LINT_IMPORTS, "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "broken" not in result.stdout.replace("0 broken", "")


@pytest.mark.parametrize("module, line, contract, says", [
    # a back end reaching up into the API
    ("cnnc/backends/onnx/fold.py", "from cnnc.model import Model",
     "Parts: CLI above the API", "cnnc.backends is not allowed to import cnnc.model"),
    # one back end importing another
    ("cnnc/backends/numpy/training.py", "from cnnc.backends.onnx import graph",
     "Back ends never import each other", "cnnc.backends.numpy is not allowed to import cnnc.backends.onnx"),
    # the ground floor importing the analysis
    ("cnnc/support/weights.py", "from cnnc.analysis.infer import Analysis",
     "Parts: CLI above the API", "cnnc.support is not allowed to import cnnc.analysis"),
    # a front end importing a back end
    ("cnnc/frontends/python/emit.py", "from cnnc.backends.report import summary",
     "Parts: CLI above the API", "cnnc.frontends is not allowed to import cnnc.backends"),
    # the .cnn front end importing the dispatch above it
    ("cnnc/frontends/cnn.py", "from cnnc.frontends import dispatch",
     "Front ends: the dispatch", "cnnc.frontends.cnn is not allowed to import cnnc.frontends.dispatch"),
    # a cycle between two siblings inside the language
    ("cnnc/language/syntax.py", "from cnnc.language import arith",
     "No import cycles", "cnnc.language"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, contract, says):
    """The contracts bite: a copy of the package with one bad import fails lint-imports,
    naming the contract and the import (module and line)."""
    shutil.copytree(ROOT / "cnnc", tmp_path / "cnnc", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    text = target.read_text(encoding="utf-8")
    target.write_text(text + f"\n{line}  # a deliberately broken import\n", encoding="utf-8")
    lineno = len(text.splitlines()) + 2
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    out = " ".join(result.stdout.split())      # lint-imports wraps long lines
    assert f"{contract}" in out and "BROKEN" in out
    assert says in out
    if not contract.startswith("No import cycles"):
        importer = module[:-3].replace("/", ".")
        assert f"{importer} ->" in out and f"(l.{lineno})" in out


def test_no_module_is_part_of_an_import_cycle():
    """Stricter than the contracts' sibling rule: no cycle at all, a package's
    __init__ and its own modules included (Tarjan's strongly connected components)."""
    graph = grimp.build_graph("cnnc", cache_dir=None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:                # recursion depth is bounded by the package size
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert cycles == []


def test_every_module_says_what_it_is_for():
    missing = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "cnnc").rglob("*.py"))
               if not ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))]
    assert missing == []


def test_the_api_package_stays_light_and_keeps_fit_errors_at_the_top():
    """`import cnnc` loads no NumPy (cnnc check depends on it); fit()'s exceptions are
    still reachable as cnnc.TrainingStopped / cnnc.TrainingInterrupted, loaded on demand."""
    code = ("import sys, cnnc; light = 'numpy' not in sys.modules; "
            "from cnnc.backends.numpy import training; "
            "print(light, cnnc.TrainingStopped is training.TrainingStopped, "
            "cnnc.TrainingInterrupted is training.TrainingInterrupted)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr
