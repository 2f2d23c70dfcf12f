"""Hostile outputs (issue 10): never lose the user's data.

Every case asserts the exit status, a clear message, and that nothing was written or the
old file is intact; the command-line cases run in a subprocess under a memory limit
(RLIMIT_AS) and a time limit.
"""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.support import atomic
from cnnc.support.atomic import atomic_write, check_outputs, clean_stale, write_bytes
from cnnc.support.diagnostics import UsageError

from .test_train import TINY, tiny_data

ROOT = Path(__file__).resolve().parent.parent
MEMORY = 4 * 2**30      # address space of one cnnc run (onnxruntime maps a lot)
TIMEOUT = 120


def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def cnnc_run(*args, cwd, timeout=TIMEOUT, stdout=subprocess.PIPE, shell_tail="", env=None):
    """Run the cli in a subprocess under the memory limit; (rc, stdout, stderr)."""
    cmd = [sys.executable, "-m", "cnnc", *map(str, args)]
    full_env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    start = time.monotonic()
    p = subprocess.run(cmd, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, preexec_fn=_limits, env=full_env)
    assert time.monotonic() - start < timeout
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    return p.returncode, p.stdout or "", p.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def work(tmp_path):
    (tmp_path / "tiny.cnn").write_text(TINY)
    x, y = tiny_data(40)
    xt, yt = tiny_data(12, seed=1)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    m = cnnc.loads(TINY)
    m.init_weights(3)
    m.save_weights(tmp_path / "init.npz")
    return tmp_path


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in folder.rglob("*") if p.is_file()}


# --- train: every output against every input, before any work -----------------------------

@pytest.mark.parametrize("extra", [
    ["--initial-weights", "init.npz", "--history", "init.npz", "-o", "out.npz"],
    ["--initial-weights", "init.npz", "-o", "init.npz"],
    ["--initial-weights", "init.npz", "-o", "./sub/../init.npz"],
    ["--initial-weights", "link.npz", "-o", "hard.npz"],           # a symlink and a hard link
    ["--initial-weights", "init.npz", "--checkpoint-dir", "init.npz", "-o", "out.npz"],
    ["--initial-weights", "init.npz", "--history", "tiny.cnn", "-o", "out.npz"],
    ["--history", "data.npz", "-o", "out.npz"],
    ["-o", "out.npz", "--history", "out.npz"],
    ["-o", "out.npz", "--checkpoint-dir", "ck", "--history", "ck/checkpoint.npz"],
    ["-o", "adir.npz", "--history", "h.json"],
    ["-o", "out.npz", "--history", "adir"],
])
def test_train_refuses_outputs_onto_inputs(work, extra):
    (work / "link.npz").symlink_to("init.npz")
    os.link(work / "init.npz", work / "hard.npz")
    (work / "adir").mkdir()
    (work / "adir.npz").mkdir()
    before = snapshot(work)
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-v", "0", *extra, cwd=work)
    assert rc == 2, err
    assert "cnnc: error:" in err
    assert any(w in err for w in ("refusing", "same file", "is a file", "directory")), err
    assert snapshot(work) == before          # nothing written, nothing changed
    assert not (work / "out.ckpt").exists()


def test_train_refuses_an_unwritable_output_before_training(work, monkeypatch):
    # /proc cannot hold files (and root ignores permission bits): refused before the data
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "/proc/w.npz", cwd=work)
    assert rc == 2 and "cannot write the weights (-o) '/proc/w.npz'" in err
    assert "Epoch" not in out + err


def test_train_checks_the_test_split_before_training(work):
    x, y = tiny_data(40)
    np.savez(work / "bad.npz", x_train=x, y_train=y, x_test=np.zeros((5, 7, 7), np.float32),
             y_test=np.zeros(5, np.int64))
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "bad.npz", "-o", "w.npz", "-v", "2", cwd=work)
    assert rc == 2 and "test data" in err
    assert "Epoch" not in out and not (work / "w.npz").exists() and not (work / "w.ckpt").exists()


def test_resume_checkpoint_is_not_an_output(work):
    rc, _, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz", "-v", "0",
                          "--seed", "1", cwd=work)
    assert rc == 0, err
    before = digest(work / "w.ckpt" / "checkpoint.npz")
    rc, _, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.ckpt/checkpoint.npz",
                          "--resume", "--checkpoint-dir", "w.ckpt", cwd=work)
    assert rc == 2 and "same file" in err
    assert digest(work / "w.ckpt" / "checkpoint.npz") == before


# --- train's option values: fit's own rules, before any data is read ---------------------------

BAD_TRAIN_OPTIONS = [
    (["--epochs", "0"], "epochs must be a whole number >= 1"),
    (["--epochs", "-1"], "epochs must be a whole number >= 1"),
    (["--batch-size", "0"], "batch_size must be a whole number >= 1"),
    (["--batch-size", "-2"], "batch_size must be a whole number >= 1"),
    (["--batch-size", "nan"], "invalid int value"),
    (["--batch-size", "99999999999999"], "a batch size of at most"),      # the resource guard
    (["--validation-split", "-0.1"], "validation_split must be a number in [0, 1)"),
    (["--validation-split", "1"], "validation_split must be a number in [0, 1)"),
    (["--validation-split", "nan"], "validation_split must be a number in [0, 1)"),
    (["--validation-split", "inf"], "validation_split must be a number in [0, 1)"),
    (["--lr", "0"], "learning rate (learning_rate, --lr) must be a finite number > 0"),
    (["--lr", "-1"], "must be a finite number > 0, got -1.0"),
    (["--lr", "nan"], "must be a finite number > 0, got nan"),
    (["--lr", "inf"], "must be a finite number > 0, got inf"),
    (["--lr", "1e400"], "must be a finite number > 0, got inf"),
    (["--checkpoint-every", "nan"], "--checkpoint-every must be a finite number >= 0"),
    (["--checkpoint-every", "inf"], "--checkpoint-every must be a finite number >= 0"),
    (["--checkpoint-every", "-1"], "--checkpoint-every must be a finite number >= 0"),
    (["--seed", "-1"], "seed must be a whole number >= 0"),
    (["--optimizer", "adamw"], "unknown optimizer 'adamw'"),
]


@pytest.mark.parametrize("extra,words", BAD_TRAIN_OPTIONS, ids=[" ".join(e) for e, _ in BAD_TRAIN_OPTIONS])
def test_train_refuses_bad_option_values_before_reading_data(work, capsys, monkeypatch, extra, words):
    """The checks fit applies to its keywords (train.py), on the CLI's overrides: exit 2
    with the value, before the data is read (a missing data file is not what is reported)
    and with nothing written."""
    from cnnc.cli import main
    monkeypatch.chdir(work)
    before = snapshot(work)
    assert main(["train", "tiny.cnn", "--data", "missing.npz", "-o", "out.npz", "-v", "0", *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and "missing.npz" not in err and "Traceback" not in err, err
    assert snapshot(work) == before


# --- the NaN guard misses no update ----------------------------------------------------------

@pytest.mark.parametrize("split", ["0", "0.25"])
def test_exploding_last_update_is_never_written(work, split):
    x, y = tiny_data(40)
    np.savez(work / "d.npz", x_train=x * 100, y_train=y)
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "d.npz", "--lr", "1e12", "--optimizer", "sgd",
                            "--epochs", "1", "--batch-size", "64", "--validation-split", split, "--seed", "0",
                            "-o", "w.npz", "-v", "0", cwd=work)
    assert rc == 1, err
    assert "training stopped" in err and "'w.npz' was not written" in err
    assert not (work / "w.npz").exists() and not (work / "w.history.json").exists()


def test_fit_raises_on_an_exploding_last_update():
    from cnnc.backends.numpy.training import TrainingStopped
    m = cnnc.loads(TINY)
    x, y = tiny_data(40)
    with pytest.raises(TrainingStopped) as e:
        m.fit(x * 100, y, epochs=1, batch_size=64, validation_split=0.0, learning_rate=1e12,
              optimizer="sgd", verbose=0, seed=0)
    assert e.value.updated and "NaN or inf" in str(e.value)


# --- other commands: outputs onto inputs, through every spelling ------------------------------

@pytest.mark.parametrize("argv", [
    ["compile", "tiny.cnn", "-o", "tiny.cnn"],
    ["compile", "tiny.cnn", "--weights", "init.npz", "-o", "init.npz"],
    ["compile", "tiny.cnn", "-o", "link.cnn"],
    ["summary", "tiny.cnn", "-o", "./tiny.cnn"],
    ["plot", "tiny.cnn", "-o", "hard.dot"],
    ["predict", "tiny.cnn", "--weights", "init.npz", "--data", "x.npy", "-o", "x.npy"],
    ["export", "tiny.cnn", "--weights", "init.npz", "-o", "hard.keras"],
])
def test_commands_refuse_outputs_onto_inputs(work, argv):
    pytest.importorskip("onnxruntime")
    (work / "link.cnn").symlink_to("tiny.cnn")
    for name in ("hard.cnn", "hard.dot", "hard.keras"):
        os.link(work / "tiny.cnn", work / name)
    np.save(work / "x.npy", tiny_data(4)[0])
    (work / "adir").mkdir()
    (work / "adir" / "tiny.onnx").mkdir()
    before = snapshot(work)
    rc, out, err = cnnc_run(*argv, cwd=work)
    if argv[0] == "export" and rc == 2 and "h5py" in err:
        pytest.skip("h5py is not installed")
    assert rc == 2, err
    assert "refusing" in err or "directory" in err, err
    assert snapshot(work) == before


# --- OS errors on output: exit 2, the path named, the old file kept ---------------------------

def test_output_to_dev_full_is_exit_2(work):
    rc, out, err = cnnc_run("compile", "tiny.cnn", "-o", "/dev/full", "-q", cwd=work)
    assert rc == 2 and "cannot write '/dev/full': No space left on device" in err
    assert Path("/dev/full").is_char_device()         # never replaced by a rename


def test_stdout_full_closed_and_broken(work):
    with open("/dev/full", "w") as full:
        rc, _, err = cnnc_run("summary", "tiny.cnn", cwd=work, stdout=full)
    assert rc == 2 and "cannot write to standard output: No space left on device" in err
    p = subprocess.run(f"{sys.executable} -m cnnc summary tiny.cnn >&-", shell=True, cwd=work,
                       stderr=subprocess.PIPE, text=True, timeout=TIMEOUT, preexec_fn=_limits)
    assert p.returncode == 2 and "standard output: it is closed" in p.stderr
    p = subprocess.run(f"{sys.executable} -m cnnc summary tiny.cnn | head -c 10", shell=True, cwd=work,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT,
                       preexec_fn=_limits, executable="/bin/bash")
    assert p.stdout.startswith("Model") and p.stderr == ""


def test_stderr_full_is_exit_2_without_a_traceback(work):
    """Diagnostics that cannot be written (2> /dev/full): exit 2, as for any failed output,
    whether the model had only warnings (a script's notes) or errors."""
    (work / "warn.cnn").write_text("input (8, 8, 1)\nConv2D(4, 3, activation='softmax')\n"
                                   "Flatten()\nDense(2)\n")
    (work / "bad.cnn").write_text("input (2, 2, 1)\nConv2D(4, 5)\n")
    (work / "s.py").write_text("import keras\nm = keras.Sequential([keras.Input(shape=(3,)), "
                               "keras.layers.Dense(2)])\n")
    for args in (["check", "warn.cnn"], ["check", "bad.cnn"], ["check", "s.py"]):
        with open("/dev/full", "w") as full:
            p = subprocess.run([sys.executable, "-m", "cnnc", *args], cwd=work, stdout=subprocess.PIPE,
                               stderr=full, timeout=TIMEOUT, preexec_fn=_limits)
        assert p.returncode == 2, args


def test_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "w.npz"
    target.write_bytes(b"old weights")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UsageError) as e:
        write_bytes(target, b"new weights" * 1000)
    assert f"cannot write '{target}': No space left on device" in e.value.message
    assert "kept unchanged" in e.value.notes[0]
    assert target.read_bytes() == b"old weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_read_only_folder_is_a_clear_error(tmp_path, monkeypatch):
    real_open = os.open

    def readonly(path, flags, mode=0o777, *a, **k):
        if flags & os.O_CREAT and str(path).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, mode, *a, **k)

    monkeypatch.setattr(os, "open", readonly)
    with pytest.raises(UsageError) as e:
        check_outputs([(tmp_path / "w.npz", "-o")], [])
    assert "Read-only file system" in e.value.message and "w.npz" in e.value.message
    with pytest.raises(UsageError) as e:
        write_bytes(tmp_path / "w.npz", b"x")
    assert "cannot write" in e.value.message
    assert list(tmp_path.iterdir()) == []


def test_output_is_a_directory(tmp_path):
    with pytest.raises(UsageError, match="it is a directory"):
        write_bytes(tmp_path, b"x")


def test_stray_temp_files_of_dead_runs_are_removed(tmp_path):
    target = tmp_path / "w.npz"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".w.npz.cnnc-{dead}-deadbeef.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".w.npz.cnnc-{os.getppid()}-cafe0001.tmp"   # a live process's file
    live.write_bytes(b"in progress")
    other = tmp_path / ".w.npz.unrelated.tmp"
    other.write_bytes(b"not ours")
    write_bytes(target, b"new")
    assert not stale.exists() and live.exists() and other.exists()
    assert target.read_bytes() == b"new"
    assert clean_stale(tmp_path) == []


def test_killed_writer_leaves_nothing_for_the_next_run(tmp_path):
    code = ("import sys, os; from cnnc.support.atomic import atomic_write\n"
            "with atomic_write(sys.argv[1]) as f:\n"
            "    f.write(b'x' * 1000); f.flush(); print('ready', flush=True); os.kill(os.getpid(), 9)\n")
    target = tmp_path / "w.bin"
    target.write_bytes(b"old")
    p = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, timeout=TIMEOUT)
    assert p.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"old"
    assert len(list(tmp_path.iterdir())) == 2           # the old file and the stray temp
    write_bytes(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]


def test_concurrent_writers_never_mix(tmp_path):
    code = ("import sys; from cnnc.support.atomic import write_bytes\n"
            "for i in range(30): write_bytes(sys.argv[1], sys.argv[2].encode() * 200_000)\n")
    target = tmp_path / "w.bin"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(target), c]) for c in "ab"]
    for p in procs:
        assert p.wait(timeout=TIMEOUT) == 0
    data = target.read_bytes()
    assert data in (b"a" * 200_000, b"b" * 200_000)
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]


def test_atomic_write_in_place_for_devices(tmp_path):
    with atomic_write("/dev/null") as f:
        f.write(b"discarded")
    assert Path("/dev/null").is_char_device()


def test_memory_error_is_exit_2(monkeypatch, capsys):
    from cnnc import cli
    from cnnc.commands import summary

    def boom(args):
        raise MemoryError

    monkeypatch.setattr(summary, "run", boom)
    assert cli.main(["summary", "x.cnn"]) == 2
    assert "out of memory" in capsys.readouterr().err


def test_double_ctrl_c_is_a_clean_exit_with_an_intact_checkpoint(work):
    x, y = tiny_data(4000)
    np.savez(work / "big.npz", x_train=x, y_train=y)
    cmd = [sys.executable, "-m", "cnnc", "train", "tiny.cnn", "--data", "big.npz", "-o", "w.npz",
           "--epochs", "50", "--batch-size", "4", "--checkpoint-every", "0", "-v", "0", "--no-test"]
    p = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_limits, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    ck = work / "w.ckpt" / "checkpoint.npz"
    deadline = time.monotonic() + 60
    while not ck.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ck.exists()
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and "internal error" not in err
    from cnnc.backends.numpy import checkpoint as ckpt
    meta, arrays = ckpt.load(work / "w.ckpt")     # whole and readable
    assert "w/dense/kernel" in arrays
    assert not (work / "w.npz").exists()
    assert [q.name for q in (work / "w.ckpt").iterdir()] == ["checkpoint.npz"]


# --- ONNX external data ------------------------------------------------------------------------

def test_onnx_external_data_with_a_small_threshold(work):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from cnnc.backends import onnx as lower
    m = cnnc.loads(TINY)
    m.init_weights(0)
    out = work / "deploy" / "tiny.onnx"
    lower.export(m.analysis, m.weights, out, external_threshold=100)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.onnx", "tiny.onnx.data"]
    onnx.checker.check_model(str(out), full_check=True)
    x = tiny_data(3)[0][..., None]
    y = ort.InferenceSession(str(out)).run(None, {"input": x})[0]
    np.testing.assert_allclose(y, m.predict(x), atol=1e-5)
    # again, over the old pair: both replaced, no temp left
    lower.export(m.analysis, m.weights, out, external_threshold=100)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny.onnx", "tiny.onnx.data"]


def test_compile_cli_external_data(work):
    pytest.importorskip("onnxruntime")
    rc, out, err = cnnc_run("compile", "tiny.cnn", "-o", "t.onnx", "--external-data-threshold", "100",
                            "-q", cwd=work)
    assert rc == 0, err
    assert "t.onnx.data" in out
    assert (work / "t.onnx").exists() and (work / "t.onnx.data").exists()
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_in_memory_onnx_over_the_limit_asks_for_a_path():
    pytest.importorskip("onnx")
    from cnnc.backends import onnx as lower
    m = cnnc.loads(TINY)
    m.init_weights(0)
    with pytest.raises(UsageError, match="protobuf"):
        lower.lower(m.analysis, m.weights, external_threshold=100)


@pytest.mark.skipif(not os.environ.get("CNNC_DEV_BIG"), reason="dev only: a 2.2 GB model (set CNNC_DEV_BIG=1)")
def test_onnx_export_over_2gb(tmp_path):      # pragma: no cover - needs ~10 GB of memory
    from cnnc.backends import onnx as lower
    m = cnnc.loads("model big\ninput (4096,)\nDense(135000)\n")
    m.init_weights(0)
    out = tmp_path / "big.onnx"
    lower.export(m.analysis, m.weights, out)
    assert (tmp_path / "big.onnx.data").stat().st_size > 2**31
    assert out.stat().st_size < 2**20


def test_atomic_module_constants():
    assert atomic.TMP_SUFFIX == ".tmp"


def test_external_data_keeps_shape_constants_inside(tmp_path):
    """--external-data-threshold 0 moves the weights out, never the shape and axes
    constants shape inference must read (found by the dev-only CLI fuzz)."""
    from cnnc.cli import main
    out = tmp_path / "m.onnx"
    assert main(["compile", str(ROOT / "examples" / "mnist.cnn"), "-o", str(out), "--quiet",
                 "--external-data-threshold", "0"]) == 0
    assert (tmp_path / "m.onnx.data").exists()


@pytest.mark.parametrize("argv", [["plot", "\x00"], ["export", "\x00", "-o", "x"],
                                  ["check", "a\x00b.cnn"]])
def test_nul_bytes_in_arguments_are_usage_errors(argv, capsys):
    from cnnc.cli import main
    assert main(argv) == 2
    assert "NUL byte" in capsys.readouterr().err
