"""`cnnc check PATH...` on folders: which files are found (.gitignore, common excludes,
--exclude, the pre-filter), that the output is what checking each file alone prints, in
path order, whatever the number of processes, that one file's crash loses no other
file's result, and the closing summary line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnnc.cli import main
from cnnc.commands import _jobs
from cnnc.commands._walk import Target

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
KERAS = ROOT / "tests" / "data" / "keras"

GOOD_SCRIPT = """\
import keras
from keras import layers

model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    layers.Conv2D(8, 3, activation="relu"),
    layers.Flatten(),
    layers.Dense(10, activation="softmax"),
])
"""
BAD_SCRIPT = GOOD_SCRIPT.replace("layers.Conv2D(8, 3,", "layers.Conv2D(8, 30,")
KERAS_UTILS = "import keras\n\n\ndef callbacks():\n    return [keras.callbacks.EarlyStopping()]\n"
SUMMARY = re.compile(r"^checked .*\(\d+\.\d\d s\).*$", re.M)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A repository with models, code without Keras, and everything a search must leave out."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "proj"
    root.mkdir()
    _git(root, "init", "-q")
    bad_cnn = (EXAMPLES / "errors" / "kernel_too_big.cnn").read_text()
    shutil.copy(EXAMPLES / "mnist.cnn", root / "mnist.cnn")
    _write(root / "models" / "bad.cnn", bad_cnn)
    _write(root / "models" / "warn.cnn", (EXAMPLES / "errors" / "warnings.cnn").read_text())
    _write(root / "scripts" / "train.py", GOOD_SCRIPT)
    _write(root / "scripts" / "callbacks.py", KERAS_UTILS)       # Keras, but no model
    _write(root / "scripts" / "plots.py", "import matplotlib\nprint('no models here')\n")
    _write(root / "data" / "config.json", '{"class_name": "Adam", "learning_rate": 0.001}\n')
    shutil.copy(KERAS / "seq_cnn.json", _write(root / "data" / "seq_cnn.json", ""))
    shutil.copy(KERAS / "seq_cnn.h5", root / "data" / "seq_cnn.h5")
    shutil.copy(KERAS / "seq_cnn.weights.h5", root / "data" / "seq_cnn.weights.h5")
    # what a search leaves out, each with a broken model that would show if it were read
    for folder in (".hidden", "build", "dist", "node_modules", "__pycache__", "pkg.egg-info",
                   "anyname_env", "gen", "scripts/legacy"):
        _write(root / folder / "broken.cnn", bad_cnn)
    _write(root / "anyname_env" / "pyvenv.cfg", "home = /usr/bin\n")      # a virtualenv
    _write(root / ".gitignore", "gen/\n*.tmp.cnn\n!keep.tmp.cnn\n")
    _write(root / "x.tmp.cnn", bad_cnn)
    shutil.copy(EXAMPLES / "mnist.cnn", root / "keep.tmp.cnn")              # re-included
    _write(root / "scripts" / ".gitignore", "legacy/\nold_*.py\n")          # a nested one
    _write(root / "scripts" / "old_train.py", BAD_SCRIPT)
    _write(root / ".git" / "info" / "exclude", "local.cnn\n")
    _write(root / "local.cnn", bad_cnn)
    os.symlink(root / "gen", root / "linked")                                # not followed
    monkeypatch.chdir(root)
    return root


FOUND = ["data/seq_cnn.h5", "data/seq_cnn.json", "keep.tmp.cnn", "mnist.cnn", "models/bad.cnn",
         "models/warn.cnn", "scripts/callbacks.py", "scripts/train.py"]


def _json(capsys, *args: str) -> tuple[int, dict, str]:
    status = main(["check", *args, "--format", "json"])
    out = capsys.readouterr()
    return status, json.loads(out.out), out.err


def test_a_folder_is_searched_as_git_lists_it(project, capsys):
    status, doc, err = _json(capsys, ".")
    assert [f["path"] for f in doc["files"]] == FOUND
    assert status == doc["exit_status"] == 1                      # models/bad.cnn
    summary = doc["summary"]
    assert {k: v for k, v in summary.items() if k != "seconds"} == {
        "files": 8, "models": 7, "errors": 1, "warnings": 6, "skipped_without_keras": 3,
        "unreadable": 0, "internal_errors": 0}
    # the Keras module without a model is checked, and its "no model" is no error here
    entry = next(f for f in doc["files"] if f["path"] == "scripts/callbacks.py")
    assert entry["ok"] and entry["models"] == [] and entry["diagnostics"] == []
    assert SUMMARY.search(err).group(0).startswith(
        "checked 8 files, 7 models: 1 error, 6 warnings (")
    assert err.rstrip().endswith("; 3 files without Keras skipped; the diagnostics are in the json output")


def test_a_folder_named_inside_an_ignored_tree_is_searched(project, capsys):
    """Naming a folder is asking for it: .gitignore and the excludes apply below it."""
    status, doc, _ = _json(capsys, "gen", "build")
    assert [f["path"] for f in doc["files"]] == ["gen/broken.cnn", "build/broken.cnn"]
    assert status == 1


def test_exclude_patterns(project, capsys):
    _, doc, _ = _json(capsys, ".", "--exclude", "models/", "--exclude", "*.json")
    assert [f["path"] for f in doc["files"]] == [
        "data/seq_cnn.h5", "keep.tmp.cnn", "mnist.cnn", "scripts/callbacks.py", "scripts/train.py"]
    _, doc, _ = _json(capsys, "scripts", "--exclude", "callbacks.py")
    assert [f["path"] for f in doc["files"]] == ["scripts/train.py"]
    # named files too: pre-commit names the files, the user's --exclude still holds
    _, doc, _ = _json(capsys, "models/bad.cnn", "mnist.cnn", "--exclude", "models/")
    assert [f["path"] for f in doc["files"]] == ["mnist.cnn"]


def test_folder_output_is_each_files_own_output_in_path_order(project, capsys):
    """The text output of a folder is, file by file in path order, exactly what `cnnc
    check FILE` prints for each, then the summary line."""
    assert main(["check", "."]) == 1
    err = capsys.readouterr().err
    alone = []
    for path in FOUND:
        main(["check", path, "--skip-non-models"])     # as found in a folder: no model is no error
        text = capsys.readouterr().err
        # a single script also says which models it checked: a folder's summary counts them
        alone.append("\n".join(line for line in text.splitlines() if ": note: checked " not in line
                               and ": note: skipped " not in line))
    expected = "\n".join(t for t in alone if t)
    body = SUMMARY.sub("", err).rstrip("\n")
    assert body == expected
    assert "1 error generated." in body and "6 warnings generated." in body


def test_the_same_output_with_one_process_or_several(project, capsys):
    for i in range(12):            # enough files for the worker processes to be used
        source = EXAMPLES / "errors" / "kernel_too_big.cnn" if i % 3 else EXAMPLES / "mnist.cnn"
        _write(project / "many" / f"m{i:02d}.cnn", source.read_text())
    outs = []
    for jobs in ("1", "2", "3"):
        status = main(["check", ".", "-j", jobs])
        outs.append((status, SUMMARY.sub("", capsys.readouterr().err)))
        status, doc, _ = _json(capsys, ".", "-j", jobs)
        doc["summary"].pop("seconds")
        outs.append((status, json.dumps(doc)))
    assert outs[0] == outs[2] == outs[4]
    assert outs[1] == outs[3] == outs[5]
    assert outs[0][0] == 1


def _check_with_pid(target: Target, opts: _jobs.Options) -> _jobs.FileResult:
    import time
    time.sleep(0.05)          # long enough that one worker cannot take every file alone
    return _jobs.FileResult(target.path, target.kind, text=str(os.getpid()))


def test_results_come_back_in_path_order_from_several_processes(tmp_path):
    targets = [Target(f"f{i:02d}.cnn", "cnn", True, size=i) for i in range(16)]
    results = list(_jobs.check_all(targets, _jobs.Options(), 2, check=_check_with_pid))
    assert [r.path for r in results] == [t.path for t in targets]
    pids = {r.text for r in results}
    assert len(pids) == 2 and str(os.getpid()) not in pids          # both workers used
    alone = list(_jobs.check_all(targets, _jobs.Options(), 1, check=_check_with_pid))
    assert {r.text for r in alone} == {str(os.getpid())}


def _crashing_check(target: Target, opts: _jobs.Options) -> _jobs.FileResult:
    if target.path.endswith("die.cnn"):
        os._exit(3)                          # as a crash in native code or the OOM killer would
    return _jobs.check_target(target, opts)


def test_a_worker_that_dies_loses_only_its_own_file(tmp_path):
    paths = []
    for i in range(8):
        name = "die.cnn" if i == 3 else f"m{i}.cnn"
        paths.append(str(_write(tmp_path / name, (EXAMPLES / "mnist.cnn").read_text())))
    targets = [Target(p, "cnn", True) for p in sorted(paths)]
    results = list(_jobs.check_all(targets, _jobs.Options(), 2, check=_crashing_check))
    assert [r.path for r in results] == [t.path for t in targets]
    died = [r for r in results if r.status]
    assert [r.path for r in died] == [str(tmp_path / "die.cnn")]
    assert died[0].status == 70
    assert "the process checking it stopped without a result" in died[0].problem
    assert all(r.status == 0 and r.n_models == 1 for r in results if r is not died[0])


def test_a_bug_in_one_files_check_is_that_files_error(project, capsys, monkeypatch):
    """An exception escaping a front end is reported for its file (exit 70, as for that
    file alone); every other file is still checked and reported."""
    real = _jobs._check

    def buggy(target, opts):
        if target.path.endswith("warn.cnn"):
            raise RuntimeError("boom")
        return real(target, opts)
    monkeypatch.setattr(_jobs, "_check", buggy)          # forked workers inherit it
    for jobs in ("1", "2"):
        assert main(["check", ".", "-j", jobs]) == 70
        err = capsys.readouterr().err
        assert ("cnnc: error: internal error while checking 'models/warn.cnn': RuntimeError: boom\n"
                "  note: this is a bug in cnnc; set CNNC_DEBUG=1 for the traceback and report it") in err
        assert "models/bad.cnn:9:12: error: Conv2D kernel_size=7x7 does not fit its input" in err
        assert "checked 7 files, 6 models: 1 error, 0 warnings (" in err
        assert "; 1 file hit an internal error, 3 files without Keras skipped" in err


def test_named_files_are_checked_as_before(project, capsys):
    """A file named on the command line is checked whatever it is: a .py without a model
    is an error, as `cnnc check FILE` always said; --skip-non-models (pre-commit) skips it."""
    assert main(["check", "scripts/plots.py"]) == 1
    assert "error: found no Keras model in this file" in capsys.readouterr().err
    assert main(["check", "scripts/plots.py", "scripts/callbacks.py", "--skip-non-models"]) == 0
    err = capsys.readouterr().err
    assert err == SUMMARY.search(err).group(0) + "\n"
    assert err.startswith("checked 1 file, 0 models: 0 errors, 0 warnings (")
    assert err.rstrip().endswith("; 1 file without Keras skipped")
    # a single clean file prints nothing at all, as before
    assert main(["check", "mnist.cnn"]) == 0
    assert capsys.readouterr().err == ""


def test_unreadable_paths_and_exit_status(project, capsys):
    status = main(["check", "missing.cnn", "models"])
    err = capsys.readouterr().err
    assert status == 2                                   # unreadable wins over model errors
    assert err.startswith("cnnc: error: cannot read 'missing.cnn': no such file\n")
    assert "models/bad.cnn:9:12: error:" in err
    assert "; 1 path could not be read" in err
    # warnings alone pass; -W makes them fail
    assert main(["check", "models/warn.cnn", "mnist.cnn"]) == 0
    assert capsys.readouterr().err.count(": warning: ") == 6
    assert main(["check", "models/warn.cnn", "mnist.cnn", "-W"]) == 1
    capsys.readouterr()
    assert main(["check", "models/warn.cnn", "mnist.cnn", "-q"]) == 0
    assert capsys.readouterr().err == ""                 # -q: no warnings, no summary line
    assert main(["check", "models/warn.cnn", "mnist.cnn", "-q", "-W"]) == 1


def test_usage_errors(project, capsys):
    assert main(["check", ".", "-o", "out.json"]) == 2
    assert "-o is for the json, sarif and github formats" in capsys.readouterr().err
    assert main(["check", ".", "-j", "0"]) == 2
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
    before = (project / "mnist.cnn").read_bytes()
    assert main(["check", ".", "--format", "json", "-o", "mnist.cnn"]) == 2
    assert "refusing to overwrite the input file 'mnist.cnn'" in capsys.readouterr().err
    assert (project / "mnist.cnn").read_bytes() == before
    assert main(["check", ".", "--format", "json", "-o", "report/check.json"]) == 1
    doc = json.loads((project / "report" / "check.json").read_text())
    assert [f["path"] for f in doc["files"]] == FOUND


def test_checking_a_folder_imports_no_numpy(project):
    """`cnnc check` stays light when it searches folders and uses worker processes: the
    parent imports neither NumPy nor onnx (a Keras .h5 file is read in a worker)."""
    code = ("import sys; from cnnc.cli import main; s = main(['check', '.', '-q', '-j', '2']); "
            "print(s, sorted(m for m in ('numpy', 'onnx', 'onnxruntime', 'h5py') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "1 []", out.stderr


def test_help_says_what_every_command_takes(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "PATH [PATH ...]" in text and "folders to search for them" in text
    assert ".py, .ipynb" in text and ".keras, .h5, .json" in text and "--exclude PATTERN" in text
    for command in ("summary", "plot", "compile", "export", "train", "evaluate", "predict", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "FILE the model: a .cnn file, a Keras model file (.keras, .h5, .json) or a Keras " \
               "script or notebook (.py, .ipynb" in text, command
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "written in .cnn files" not in text
    assert "Keras scripts and notebooks (.py, .ipynb, read without running them)" in text


def test_file_names_reach_the_terminal_escaped(tmp_path, monkeypatch, capsys):
    """A file name with an escape sequence is shown escaped, in diagnostics and in the
    message of a file whose check hit a bug."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "m" / "bad\x1b[2J.cnn", (EXAMPLES / "errors" / "kernel_too_big.cnn").read_text())
    _write(tmp_path / "m" / "boom\x1b[2J.cnn", (EXAMPLES / "mnist.cnn").read_text())
    real = _jobs._check

    def buggy(target, opts):
        if "boom" in target.path:
            raise RuntimeError("boom")
        return real(target, opts)
    monkeypatch.setattr(_jobs, "_check", buggy)
    assert main(["check", "m"]) == 70
    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert "m/bad\\x1b[2J.cnn:9:12: error: Conv2D kernel_size=7x7" in err
    assert "internal error while checking 'm/boom\\x1b[2J.cnn': RuntimeError: boom" in err


def test_the_pre_filter_reads_imports_not_words(tmp_path, monkeypatch, capsys):
    """Code that imports Keras or TensorFlow is checked, and so is a script that compiles
    and fits a model its own module builds (it reaches the checker, which reads what it can
    of it); code that only names Keras in a string or a comment is not."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "proj" / "models.py", "import tensorflow as tf\n\n\ndef build():\n"
           "    return tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(3)])\n")
    _write(tmp_path / "proj" / "train.py", "from models import build\n\nmodel = build()\n"
           "model.compile(optimizer='adam', loss='mse')\nmodel.fit(x, y)\n")
    _write(tmp_path / "proj" / "notes.py", "# keras is used elsewhere\nprint('keras')\n")
    _write(tmp_path / "proj" / "nb.ipynb", json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
           "cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": ["from tensorflow import keras\n", "m = keras.Sequential([keras.Input((4,)), "
                                 "keras.layers.Dense(2)])\n"]}]}))
    status, doc, err = _json(capsys, "proj")
    assert status == 0
    assert [f["path"] for f in doc["files"]] == ["proj/models.py", "proj/nb.ipynb", "proj/train.py"]
    assert [m["variable"] for m in doc["files"][1]["models"]] == ["m"]
    assert doc["summary"]["skipped_without_keras"] == 1


def test_lsp_without_pygls_says_how_to_install():
    """`cnnc lsp` where pygls is not installed: exit 2 and the line to install it."""
    code = ("import sys; sys.modules['pygls'] = None; from cnnc.cli import main; "
            "sys.exit(main(['lsp']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2
    assert out.stderr == ("cnnc: error: cnnc lsp needs the pygls package (pygls is missing)\n"
                          "  note: install it with: pip install 'cnnc[lsp]'\n")
