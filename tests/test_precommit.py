"""The pre-commit hook (.pre-commit-hooks.yaml), run by the real pre-commit tool: a scratch
project whose .pre-commit-config.yaml names this repository (a local clone of the working
tree, committed) and `id: cnnc-check`. pre-commit installs cnnc from that clone into its
own virtualenv, as it would from GitHub; offline here: pip takes no index and finds the
build backend (hatchling) and cnnc's pure-Python needs (lark, pathspec) on PYTHONPATH.

A commit with a broken model is refused and the diagnostic is shown; a clean commit (a
model, and Python code without Keras, which the hook skips) passes.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
# what `pip install .` of cnnc needs without an index: the build backend and its
# requirements, and what `cnnc check` imports (numpy and onnx are not imported by it)
OFFLINE_MODULES = ("hatchling", "packaging", "pathspec", "pluggy", "trove_classifiers", "tomlkit",
                   "lark")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed"),
    pytest.mark.skipif(not PRE_COMMIT.exists(),
                       reason="pre-commit is not installed (pip install -e '.[test]')"),
]


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PIP_", "PRE_COMMIT"))}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="cnnc test",
               GIT_AUTHOR_EMAIL="test@example.invalid", GIT_COMMITTER_NAME="cnnc test",
               GIT_COMMITTER_EMAIL="test@example.invalid", PRE_COMMIT_HOME=str(home / "pre-commit"),
               VIRTUALENV_OVERRIDE_APP_DATA=str(home / "virtualenv"), NO_COLOR="1")
    return env


def _git(cwd: Path, env: dict, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def _hook_repository(where: Path, env: dict) -> str:
    """This working tree's package as a git repository (what pre-commit clones); its commit."""
    for name in ("cnnc", "grammar", "examples/zoo"):
        shutil.copytree(ROOT / name, where / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(ROOT / name, where / name)
    _git(where, env, "init", "-q")
    _git(where, env, "add", "-A")
    _git(where, env, "commit", "-q", "-m", "cnnc")
    return _git(where, env, "rev-parse", "HEAD").strip()


def _offline_pip(env: dict, where: Path) -> None:
    where.mkdir()
    for name in OFFLINE_MODULES:
        module = importlib.import_module(name)
        (where / name).symlink_to(Path(module.__file__).parent)
    env.update(PIP_NO_INDEX="1", PIP_NO_DEPS="1", PIP_NO_BUILD_ISOLATION="0",
               PYTHONPATH=str(where), PIP_DISABLE_PIP_VERSION_CHECK="1")


def test_the_hook_refuses_a_broken_model_and_passes_a_clean_commit(tmp_path):
    env = _env(tmp_path)
    hook = tmp_path / "cnnc-repo"
    hook.mkdir()
    rev = _hook_repository(hook, env)
    _offline_pip(env, tmp_path / "offline")
    project = tmp_path / "project"
    project.mkdir()
    _git(project, env, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {hook}\n    rev: {rev}\n    hooks:\n      - id: cnnc-check\n")
    subprocess.run([str(PRE_COMMIT), "install"], cwd=project, env=env, check=True, capture_output=True)

    # a clean commit: a model, a Keras script, and code without Keras (skipped)
    shutil.copy(ROOT / "examples" / "mnist.cnn", project / "mnist.cnn")
    (project / "train.py").write_text(
        "import keras\nfrom keras import layers\n\nmodel = keras.Sequential([keras.Input((28, 28, 1)), "
        "layers.Conv2D(8, 3), layers.Flatten(), layers.Dense(10)])\n")
    (project / "util.py").write_text("def helper():\n    return 42\n")
    _git(project, env, "add", "-A")
    done = subprocess.run(["git", "commit", "-m", "clean"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "cnnc check (Keras model shapes)" in output and "Passed" in output

    # a broken model: the commit is refused, with cnnc's diagnostic
    shutil.copy(ROOT / "examples" / "errors" / "kernel_too_big.cnn", project / "net.cnn")
    _git(project, env, "add", "net.cnn")
    done = subprocess.run(["git", "commit", "-m", "broken"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "cnnc check (Keras model shapes)" in output and "Failed" in output
    assert "- exit code: 1" in output
    assert ("net.cnn:9:12: error: Conv2D kernel_size=7x7 does not fit its input: needs at least 7x7, "
            "got 5x5\n 9 | Conv2D(64, (7, 7), activation='relu')\n   |            ^~~~~~\n") in output
    log = _git(project, env, "log", "--format=%s")
    assert log.split() == ["clean"]                     # the broken commit was not made
