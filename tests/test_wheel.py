"""The grammar ships inside the wheel: an installed cnnc works away from the checkout.

Builds the wheel, installs it (without dependencies) into a fresh virtual
environment that borrows this environment's packages, and runs `cnnc check`
and `cnnc summary` from a folder where the checkout is not importable.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
              "-w", str(out), str(ROOT)])
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("cnnc-*.whl")
    return whl


def test_wheel_contains_the_grammar(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "cnnc/grammar/cnn.lark" in names
    assert "cnnc/cli.py" in names
    assert "cnnc/zoo/mobilenet_v2.cnn" in names        # scripts' keras.applications


def test_installed_wheel_checks_a_model(wheel, tmp_path):
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", "--without-pip", str(venv)]).returncode == 0
    py = venv / "bin" / "python"
    # Borrow this environment's dependencies (numpy, lark, ...) but not its cnnc.
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    (purelib / "borrowed.pth").write_text("\n".join(sorted(deps)) + "\n")
    r = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)])
    assert r.returncode == 0, r.stdout + r.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = _run([str(py), "-c", "import cnnc.language.parse as p; print(p.grammar_path())"], cwd=work, env=env)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(purelib), where.stdout
    mnist = str(ROOT / "examples" / "mnist.cnn")
    r = _run([str(venv / "bin" / "cnnc"), "check", mnist], cwd=work, env=env)
    assert (r.returncode, r.stderr) == (0, "")
    r = _run([str(py), "-m", "cnnc", "summary", "--format", "json", mnist], cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["totals"]["params"] == 93322
    script = tmp_path / "transfer.py"
    script.write_text("import keras\nbase = keras.applications.MobileNetV2(input_shape=(96, 96, 3), "
                      "include_top=False, weights=None)\n")
    r = _run([str(py), "-m", "cnnc", "summary", "--format", "json", str(script)], cwd=work, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["models"][0]["totals"]["params"] == 2257984
    bad = str(ROOT / "examples" / "errors" / "kernel_too_big.cnn")
    r = _run([str(py), "-m", "cnnc", "check", bad], cwd=work, env=env)
    assert r.returncode == 1 and "needs at least 7x7, got 5x5" in r.stderr
