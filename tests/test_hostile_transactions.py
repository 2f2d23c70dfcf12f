"""Hostile inputs, round 3 (issue 17): every command's outputs are one transaction, Keras
files keep their weights everywhere, and a closed stdout never stops the work.

Several files (import's .cnn and .npz, compile's .onnx and .onnx.data, train's weights and
history) appear together or not at all: kill -9 at any moment, Ctrl-C, SIGTERM and two runs
at once leave either the old pair or the new one, and no temporary file. A write that
fails inside a C library's reach (h5py, `ulimit -f`) is exit 2 with nothing left behind,
never a signal. Each case runs the real CLI in a subprocess under a memory limit.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cnnc

from .test_hostile_outputs import _limits, cnnc_run, snapshot
from .test_train import TINY, tiny_data

ROOT = Path(__file__).resolve().parent.parent
KERAS = ROOT / "tests" / "data" / "keras"
BIG = os.environ.get("CNNC_FUZZ") == "big"
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def leftovers(folder: Path) -> list[str]:
    """cnnc's temporary files and commit journals: none may outlive a run."""
    return sorted(n for n in os.listdir(folder) if ".cnnc-" in n) if folder.exists() else []


def start(argv: list[str], cwd: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnc", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_limits, env=ENV, **kw)


# --- import: the .cnn and its .npz together --------------------------------------------------

@pytest.fixture
def keras_pair(tmp_path):
    """Two Keras files of different models, and NET.cnn + NET.npz imported from the first."""
    shutil.copy(KERAS / "seq_cnn.keras", tmp_path / "a.keras")
    shutil.copy(KERAS / "keras2.h5", tmp_path / "b.h5")
    rc, out, err = cnnc_run("import", "a.keras", "-o", "net.cnn", "-q", cwd=tmp_path)
    assert rc == 0, err
    return tmp_path


def pair_state(folder: Path) -> str:
    """'a', 'b' or 'none': which import the pair NET.cnn + NET.npz comes from; a mixed
    or broken pair fails the test."""
    cnn, npz = folder / "net.cnn", folder / "net.npz"
    if not cnn.exists() and not npz.exists():
        return "none"
    assert cnn.exists() and npz.exists(), "one file of the pair without the other"
    m = cnnc.load(cnn)
    m.load_weights(npz)                       # raises when the weights are another model's
    for source in ("a.keras", "b.h5"):
        theirs = cnnc.load(folder / source)
        if theirs.total_params == m.total_params and all(
                np.array_equal(theirs.weights[k], m.weights[k]) for k in m.weights):
            return source[0]
    raise AssertionError("the pair matches neither source")


def test_import_kill_9_at_any_moment_leaves_a_whole_pair(keras_pair):
    rng = random.Random(17)
    seen = set()
    for trial in range(20 if BIG else 3):
        p = start(["import", "b.h5", "-o", "net.cnn", "-q"], keras_pair)
        time.sleep(rng.uniform(0.05, 2.5))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        seen.add(pair_state(keras_pair))
        # the next run finishes or removes what the killed one left
        rc, out, err = cnnc_run("import", "a.keras", "-o", "net.cnn", "-q", cwd=keras_pair)
        assert rc == 0, err
        assert pair_state(keras_pair) == "a" and leftovers(keras_pair) == []
    assert seen <= {"a", "b"}


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_import_ctrl_c_and_sigterm_keep_the_old_pair(keras_pair, sig, code):
    for delay in ((0.3, 0.8, 1.5, 2.5) if BIG else (0.5, 2.0)):
        p = start(["import", "b.h5", "-o", "net.cnn", "-q"], keras_pair)
        time.sleep(delay)
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
        # 0: it had finished already; Python's own default (-SIGTERM, or a KeyboardInterrupt
        # in runpy's imports): it had not reached cnnc yet, on a busy machine
        # (or -SIGINT with nothing said: Python had finished cnnc and was shutting down,
        # where it restores the default handlers)
        before_cnnc = p.returncode == -signal.SIGTERM or (
            "KeyboardInterrupt" in err and "/cnnc/" not in err) or (p.returncode == -sig and not err)
        assert p.returncode in (code, 0) or before_cnnc, err
        assert "Traceback" not in err or before_cnnc
        assert pair_state(keras_pair) in ("a", "b")
        assert leftovers(keras_pair) == []


def test_two_imports_at_once_leave_one_whole_pair(keras_pair):
    for _ in range(4):
        a = start(["import", "a.keras", "-o", "net.cnn", "-q"], keras_pair)
        b = start(["import", "b.h5", "-o", "net.cnn", "-q"], keras_pair)
        for p in (a, b):
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        assert pair_state(keras_pair) in ("a", "b")
        assert leftovers(keras_pair) == []


def test_import_default_outputs_never_replace_files(keras_pair):
    (keras_pair / "a.cnn").write_text("# the user's own\n")
    before = snapshot(keras_pair)
    rc, out, err = cnnc_run("import", "a.keras", cwd=keras_pair)
    assert rc == 2 and "which exists; cnnc does not replace a file it was not asked to write" in err
    assert "-o NET.cnn" in err and snapshot(keras_pair) == before


def test_a_killed_commit_is_finished_by_the_next_writer(tmp_path):
    """kill -9 among the renames of a commit: its journal is left, and the next cnnc
    write beside it finishes the renames, so the pair is whole again."""
    from cnnc.support import atomic
    (tmp_path / "p.cnn").write_text("old cnn")
    (tmp_path / "p.npz").write_text("old npz")
    code = (f"import os, sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from cnnc.support import atomic\n"
            "real = os.replace\n"
            "def replace(a, b, n=[0]):\n"
            "    real(a, b)\n"
            "    if not str(b).endswith(atomic.JOURNAL):\n"
            "        n[0] += 1\n"
            "        if n[0] == 1: os.kill(os.getpid(), 9)\n"
            "atomic.os.replace = replace\n"
            "with atomic.Transaction() as tx:\n"
            "    tx.write_bytes('p.cnn', b'new cnn'); tx.write_bytes('p.npz', b'new npz')\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=60)
    assert p.returncode == -signal.SIGKILL
    texts = {(tmp_path / n).read_text() for n in ("p.cnn", "p.npz")}
    assert texts == {"new cnn", "old npz"}               # killed between the two renames
    assert (tmp_path / atomic.JOURNAL).exists()
    from cnnc.support.files import read_bytes
    assert read_bytes(tmp_path / "p.npz") == b"new npz"  # a reader finishes the commit first
    assert (tmp_path / "p.cnn").read_text() == "new cnn"
    assert leftovers(tmp_path) == []
    # and so does any write beside them
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=60)
    assert (tmp_path / atomic.JOURNAL).exists()
    atomic.write_bytes(tmp_path / "other.txt", b"x")
    assert [(tmp_path / n).read_text() for n in ("p.cnn", "p.npz")] == ["new cnn", "new npz"]
    assert leftovers(tmp_path) == []


def test_transaction_failure_keeps_every_old_file(tmp_path, monkeypatch):
    from cnnc.support import atomic
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(f"old {name}")
    # a failure before the commit (the second file cannot be made): nothing changes
    with pytest.raises(OSError):
        with atomic.Transaction() as tx:
            tx.write_bytes(tmp_path / "a", b"new a")
            raise OSError(5, "Input/output error")
    assert [(tmp_path / n).read_text() for n in "abc"] == ["old a", "old b", "old c"]
    assert leftovers(tmp_path) == []
    # a rename that fails half-way through the commit: the ones done are rolled back
    real = atomic.os.replace
    calls = []

    def fail_third(a, b):
        calls.append(b)
        if Path(b).name == "c":
            raise OSError(13, "Permission denied")
        real(a, b)
    monkeypatch.setattr(atomic.os, "replace", fail_third)
    with pytest.raises(cnnc.UsageError, match="cannot write .*Permission denied"):
        with atomic.Transaction() as tx:
            for name in "abc":
                tx.write_bytes(tmp_path / name, f"new {name}".encode())
    assert [(tmp_path / n).read_text() for n in "abc"] == ["old a", "old b", "old c"]
    assert leftovers(tmp_path) == []


# --- compile: the .onnx and its external data together --------------------------------------

def _onnx_pair_state(folder: Path, x: np.ndarray, expected: dict[str, np.ndarray]) -> str:
    import onnxruntime as ort
    model, data = folder / "net.onnx", folder / "net.onnx.data"
    if not model.exists():
        assert not data.exists()
        return "none"
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": x})[0]
    for name, want in expected.items():
        if np.allclose(y, want, atol=1e-5):
            return name
    raise AssertionError("the model and its data file do not belong together")


def test_compile_with_external_data_killed_at_any_moment(tmp_path):
    pytest.importorskip("onnxruntime")
    (tmp_path / "net.cnn").write_text(TINY)
    m = cnnc.loads(TINY)
    x = tiny_data(4)[0][..., None]
    expected = {}
    for seed in (1, 2):
        m.init_weights(seed)
        m.save_weights(tmp_path / f"w{seed}.npz")
        expected[str(seed)] = m.predict(x)
    compile_ = ["compile", "net.cnn", "-q", "-o", "net.onnx", "--external-data-threshold", "0"]
    rc, out, err = cnnc_run(*compile_, "--weights", "w1.npz", cwd=tmp_path)
    assert rc == 0 and (tmp_path / "net.onnx.data").exists()
    rng = random.Random(3)
    for _ in range(10 if BIG else 2):
        p = start([*compile_, "--weights", "w2.npz"], tmp_path)
        time.sleep(rng.uniform(0.3, 3.0))
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=60)
        assert _onnx_pair_state(tmp_path, x, expected) in ("1", "2")
        rc, out, err = cnnc_run(*compile_, "--weights", "w1.npz", cwd=tmp_path)
        assert rc == 0 and _onnx_pair_state(tmp_path, x, expected) == "1"
        assert [n for n in leftovers(tmp_path) if not n.endswith(".npz")] == []


# --- train: weights and history together; Ctrl-C keeps the checkpoint ------------------------

@pytest.fixture
def work(tmp_path):
    (tmp_path / "tiny.cnn").write_text(TINY)
    x, y = tiny_data(400)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y, x_test=x[:20], y_test=y[:20])
    return tmp_path


def test_train_writes_weights_and_history_as_one(work):
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz", "-v", "0",
                            "--epochs", "2", "--seed", "3", cwd=work)
    assert rc == 0, err
    history = json.loads((work / "w.history.json").read_text())
    assert history["epoch"] == [0, 1] and "test" in history
    m = cnnc.load(work / "tiny.cnn")
    m.load_weights(work / "w.npz")
    assert "initial weights: fresh initialisation (seed 3)" in err


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_stopped_by_a_signal_writes_no_weights_and_keeps_the_checkpoint(work, sig, code):
    (work / "w.npz").write_bytes(b"the user's old weights")
    p = start(["train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz", "-v", "2", "--epochs", "500",
               "--batch-size", "4", "--checkpoint-every", "0"], work)
    time.sleep(5)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    assert "Traceback" not in err
    assert (work / "w.npz").read_bytes() == b"the user's old weights"
    assert leftovers(work) == [] and leftovers(work / "w.ckpt") == []


@pytest.mark.parametrize("shell_tail,code", [("| head -1", 0), (">&-", 2)])
def test_a_closed_stdout_never_stops_training(work, shell_tail, code):
    """`cnnc train ... | head -1`: training goes on to the end and writes its weights; the
    exit status is the command's own (a closed pipe is the reader's choice; a closed
    descriptor is an output that could not be written: exit 2, said on stderr)."""
    cmd = (f"{sys.executable} -m cnnc train tiny.cnn --data data.npz -o w.npz -v 2 --epochs 3 "
           f"--seed 1 {shell_tail}; echo \"status=${{PIPESTATUS[0]}}\" >&2")
    p = subprocess.run(cmd, shell=True, executable="/bin/bash", cwd=work, capture_output=True,
                       text=True, timeout=300, preexec_fn=_limits, env=ENV)
    assert f"status={code}" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    m = cnnc.load(work / "tiny.cnn")
    m.load_weights(work / "w.npz")                     # written, whole
    assert json.loads((work / "w.history.json").read_text())["epoch"] == [0, 1, 2]
    if code == 2:
        assert "cannot write to standard output: it is closed" in p.stderr
        assert "the command ran to the end" in p.stderr


# --- writes that fail where a C library works: never a signal, nothing left ------------------

def _fsize_limited(limit: int):
    def apply():
        _limits()
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("argv", [
    ["export", "tiny.cnn", "-o", "out.keras"],
    ["compile", "tiny.cnn", "-o", "out.onnx", "-q"],
    ["compile", "tiny.cnn", "-o", "out.onnx", "-q", "--external-data-threshold", "0"],
    ["import", "a.keras", "-o", "out.cnn"],
    ["train", "tiny.cnn", "--data", "data.npz", "-o", "out.npz", "-v", "0", "--epochs", "1"],
])
def test_a_file_size_limit_is_exit_2_with_nothing_left(work, argv):
    """`ulimit -f`: h5py crashed the process with a segmentation fault and left its temp
    file; every write is now cnnc's own, an OSError that names the file (exit 2)."""
    shutil.copy(KERAS / "seq_cnn.keras", work / "a.keras")
    (work / "out.keras").write_bytes(b"old")
    before = snapshot(work)
    p = subprocess.run([sys.executable, "-m", "cnnc", *argv], cwd=work, capture_output=True,
                       text=True, timeout=300, preexec_fn=_fsize_limited(2048), env=ENV)
    assert p.returncode == 2, (p.returncode, p.stderr)       # not -11 (SIGSEGV) nor -25 (SIGXFSZ)
    assert "File too large" in p.stderr and "Traceback" not in p.stderr
    after = {k: v for k, v in snapshot(work).items() if not k.startswith("out.ckpt")}
    assert after == before and leftovers(work) == []


def test_export_on_a_full_disk_keeps_the_old_file(work, monkeypatch, capsys):
    from cnnc.cli import main
    from cnnc.support import atomic
    (work / "out.keras").write_bytes(b"old")

    def full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(atomic.os, "fsync", full)
    assert main(["export", str(work / "tiny.cnn"), "-o", str(work / "out.keras")]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert (work / "out.keras").read_bytes() == b"old" and leftovers(work) == []


# --- Keras files keep their weights everywhere ----------------------------------------------

def _keras_weights(path: Path) -> dict[str, np.ndarray]:
    import h5py
    out = {}
    with zipfile.ZipFile(path) as z, h5py.File(__import__("io").BytesIO(z.read("model.weights.h5"))) as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("source", ["seq_cnn.h5", "seq_cnn.keras", "keras2.h5"])
def test_export_of_a_keras_file_keeps_its_trained_weights(tmp_path, source):
    shutil.copy(KERAS / source, tmp_path / source)
    rc, out, err = cnnc_run("export", source, "-q", "-o", "out.keras", cwd=tmp_path)
    assert rc == 0, err
    assert f"weights: the model file's own ({source})" in out       # said, with -q too
    theirs = cnnc.load(tmp_path / source)
    mine = cnnc.load(tmp_path / "out.keras")
    for k, w in theirs.weights.items():
        np.testing.assert_array_equal(mine.weights[k], w)
    meta = json.loads(zipfile.ZipFile(tmp_path / "out.keras").read("metadata.json"))
    assert meta["cnnc"]["weights"] == f"the model file's own ({source})"


def test_export_default_output_never_replaces_an_existing_file(tmp_path):
    shutil.copy(KERAS / "seq_cnn.h5", tmp_path / "model.h5")
    (tmp_path / "model.keras").write_bytes(b"the user's trained model")
    rc, out, err = cnnc_run("export", "model.h5", "-q", cwd=tmp_path)
    assert rc == 2 and "'model.keras', which exists" in err and "-o NET.keras" in err
    assert (tmp_path / "model.keras").read_bytes() == b"the user's trained model"
    rc, out, err = cnnc_run("export", "model.h5", "-q", "-o", "model.keras", cwd=tmp_path)
    assert rc == 0 and zipfile.is_zipfile(tmp_path / "model.keras")


@pytest.mark.parametrize("argv,words", [
    (["compile", "m.h5", "-q", "-o", "m.onnx"], "weights: the model file's own (m.h5)"),
    (["compile", "m.h5", "-q", "-o", "m2.onnx", "--seed", "4"], "weights: fresh initialisation, seed 4"),
    (["compile", "m.h5", "-q", "-o", "m3.onnx", "--weights", "w.npz"], "weights: file w.npz"),
    (["bench", "m.h5", "--seconds", "0.05", "--no-torch", "--batch", "2"], "weights: the model file's own"),
    (["train", "m.h5", "--data", "d.npz", "-o", "t.npz", "-v", "0", "--no-checkpoint"],
     "initial weights: the model file's own (m.h5)"),
    (["train", "m.h5", "--data", "d.npz", "-o", "t2.npz", "-v", "0", "--no-checkpoint",
      "--initial-weights", "w.npz"], "initial weights: file w.npz (--initial-weights)"),
])
def test_every_command_says_which_weights_it_used(tmp_path, argv, words):
    pytest.importorskip("onnxruntime")
    shutil.copy(KERAS / "seq_cnn.h5", tmp_path / "m.h5")
    m = cnnc.load(tmp_path / "m.h5")
    m.init_weights(9)
    m.save_weights(tmp_path / "w.npz")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.uniform(0, 1, (16, 12, 12, 1)).astype("float32"),
             y_train=rng.integers(0, 5, 16), x_test=rng.uniform(0, 1, (4, 12, 12, 1)).astype("float32"),
             y_test=rng.integers(0, 5, 4))
    rc, out, err = cnnc_run(*argv, cwd=tmp_path, timeout=300)
    assert rc == 0, err
    assert words in out + err


def test_compile_of_a_keras_file_runs_its_own_weights(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort
    shutil.copy(KERAS / "seq_cnn.h5", tmp_path / "m.h5")
    rc, out, err = cnnc_run("compile", "m.h5", "-q", "-o", "m.onnx", cwd=tmp_path)
    assert rc == 0, err
    x = np.random.default_rng(1).uniform(0, 1, (3, 12, 12, 1)).astype(np.float32)
    y = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(y, cnnc.load(tmp_path / "m.h5").predict(x), atol=1e-5)
