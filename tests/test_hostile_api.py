"""Hostile inputs, round 3 (issue 17): the Python API at the command line's level, and
messages after damage that name the damage.

The API refuses what the CLI refuses, with the same guards: memory (before any array is
allocated), suffixes, data that would be scaled differently, values beyond float32; only
cnnc's own exceptions escape, and NumPy's warnings never become errors
(PYTHONWARNINGS=error). A damaged file (a checkpoint changed by hand) is named as such,
never blamed on the learning rate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import cnnc
from cnnc.support.diagnostics import NumericWarning, UsageError
from cnnc.support.resources import ResourceError

from .test_hostile_outputs import _limits, cnnc_run, snapshot
from .test_train import TINY, tiny_data

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def model():
    m = cnnc.loads(TINY)
    m.init_weights(0)
    return m


# --- the resource guard, as the CLI's ------------------------------------------------------

def test_predict_and_fit_refuse_work_that_cannot_fit_in_memory(model, monkeypatch):
    monkeypatch.setenv("CNNC_MEMORY_LIMIT", "64M")
    x = np.zeros((4, 6, 6, 1), np.float32)
    with pytest.raises(ResourceError, match="predict: model 'tiny' needs about"):
        model.predict(x, batch_size=10**9)
    with pytest.raises(ResourceError, match="fit: model 'tiny' needs about"):
        model.fit(x, np.zeros(4, int), batch_size=10**9, verbose=0)
    with pytest.raises(ResourceError, match="evaluate: model 'tiny' needs about"):
        model.evaluate(x, np.zeros(4, int), batch_size=10**9)


def test_data_made_float32_is_refused_before_the_copy(model, monkeypatch):
    big = np.zeros((20_000, 6, 6, 1), np.uint8)        # 720 KB of uint8, 2.9 MB as float32
    monkeypatch.setenv("CNNC_MEMORY_LIMIT", "1M")
    with pytest.raises(ResourceError, match="x as float32 needs"):
        model.predict(big)


def test_no_memory_error_escapes_the_api(model, monkeypatch):
    """Under a real address-space limit, in a subprocess: a ResourceError (cnnc's), never
    NumPy's MemoryError."""
    code = ("import numpy as np, cnnc\n"
            f"m = cnnc.loads({TINY!r}); m.init_weights(0)\n"
            "x = np.zeros((2_000_000, 6, 6, 1), np.uint8)\n"
            "try:\n    m.predict(x)\nexcept cnnc.UsageError as e:\n    print('refused', e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       preexec_fn=_limits, cwd=ROOT, env={**os.environ, "CNNC_MEMORY_LIMIT": "200M"})
    assert p.returncode == 0 and "refused" in p.stdout and "MemoryError" not in p.stderr, p.stderr


# --- weights files: the suffix says the format ---------------------------------------------

def test_save_weights_writes_keras_format_for_weights_h5(model, tmp_path):
    import h5py
    model.save_weights(tmp_path / "x.weights.h5")
    with h5py.File(tmp_path / "x.weights.h5") as f:      # HDF5, Keras 3's layout
        assert f["layers/conv2d/vars/0"].shape == (3, 3, 1, 4)
    again = cnnc.loads(TINY)
    again.load_weights(tmp_path / "x.weights.h5")
    for k, w in model.weights.items():
        np.testing.assert_array_equal(again.weights[k], w)


@pytest.mark.parametrize("name", ["x.txt", "x", "x.h5", "x.keras", "x.onnx"])
def test_save_weights_refuses_a_suffix_it_cannot_write(model, tmp_path, name):
    with pytest.raises(UsageError, match="cannot tell the format"):
        model.save_weights(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_float64_weights_beyond_float32_are_refused(model, tmp_path):
    w = model.get_weights()
    w["dense/kernel"] = w["dense/kernel"].astype(np.float64) * 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UsageError) as e:
            model.set_weights(w)
        np.savez(tmp_path / "w64.npz", **w)
        with pytest.raises(UsageError) as f:
            model.load_weights(tmp_path / "w64.npz")
    for err in (e.value, f.value):
        assert "beyond float32's range" in " ".join(err.notes)
        assert "only the layer names differ" not in " ".join(err.notes)
    assert np.isfinite(model.weights["dense/kernel"]).all()


# --- data: empty, beyond float32, scaled differently ---------------------------------------

def test_empty_data_through_the_cli(tmp_path):
    (tmp_path / "tiny.cnn").write_text(TINY)
    m = cnnc.loads(TINY)
    m.init_weights(0)
    m.save_weights(tmp_path / "w.npz")
    m.to_onnx(tmp_path / "tiny.onnx")
    np.save(tmp_path / "e.npy", np.zeros((0, 6, 6, 1), np.float32))
    for argv in (["predict", "tiny.cnn", "--weights", "w.npz", "--data", "e.npy"],
                 ["predict", "tiny.cnn", "--weights", "w.npz", "--data", "e.npy", "-o", "p.csv"],
                 ["run", "tiny.onnx", "-i", "e.npy", "-o", "y.npy"]):
        rc, out, err = cnnc_run(*argv, cwd=tmp_path)
        assert rc == 2 and "has no samples" in err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "y.npy").exists()
    assert m.predict(np.zeros((0, 6, 6, 1), np.float32)).shape == (0, 3)     # as Keras


def test_a_float_x_train_and_a_uint8_x_test_are_not_scaled_apart(tmp_path):
    (tmp_path / "tiny.cnn").write_text(TINY)
    x, y = tiny_data(20)
    np.savez(tmp_path / "mixed.npz", x_train=x * 255, y_train=y,
             x_test=(x[:6] * 200).astype(np.uint8), y_test=y[:6])
    before = snapshot(tmp_path)
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "mixed.npz", "-o", "w.npz", "-v", "2",
                            cwd=tmp_path)
    assert rc == 2 and "x_test is uint8 (scaled by 1/255) but x_train is float32" in err
    assert "Epoch" not in out and snapshot(tmp_path) == before
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "mixed.npz", "-o", "w.npz", "-v", "0",
                            "--no-scale", cwd=tmp_path)
    assert rc == 0, err
    # already-scaled floats next to uint8 pixels are consistent: both end in [0, 1]
    np.savez(tmp_path / "fine.npz", x_train=x, y_train=y, x_test=(x[:6] * 200).astype(np.uint8),
             y_test=y[:6])
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "fine.npz", "-o", "w2.npz", "-v", "0",
                            cwd=tmp_path)
    assert rc == 0, err


def test_api_scales_evaluate_and_predict_as_fit_did(model):
    x, y = tiny_data(20)
    model.fit(x * 255, y, verbose=0, epochs=1)
    with pytest.raises(UsageError, match="scaled by 1/255.*not scaled"):
        model.evaluate((x * 255).astype(np.uint8), y)
    with pytest.raises(UsageError, match="different scales"):
        model.predict((x * 255).astype(np.uint8))
    model.predict((x * 255).astype(np.uint8), scale=False)       # asked for: allowed
    other = cnnc.loads(TINY)
    other.fit((x * 255).astype(np.uint8), y, verbose=0, epochs=1)
    other.predict(x)                         # floats in [0, 1] next to scaled pixels: fine
    with pytest.raises(UsageError, match="different scales"):
        other.predict(x * 255)
    with pytest.raises(UsageError, match="validation_data x"):
        other.fit((x * 255).astype(np.uint8), y, validation_data=(x * 255, y), verbose=0)


# --- only cnnc's exceptions, and warnings never become errors ------------------------------

def test_numpy_warnings_never_escape_under_warnings_as_errors(model):
    x, y = tiny_data(8)
    huge = {k: np.full_like(v, 3e37) for k, v in model.get_weights().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", NumericWarning)      # cnnc's own: asked for, not NumPy's
        model.set_weights(huge)
        out = model.predict(x)
        assert not np.isfinite(out).all()
        logs = model.evaluate(x, y, return_dict=True)
        assert not np.isfinite(logs["loss"])
        with pytest.raises(UsageError, match="training stopped"):
            model.fit(x, y, verbose=0)


@pytest.mark.parametrize("argv", [
    ["evaluate", "tiny.cnn", "--weights", "huge.npz", "--data", "data.npz", "--format", "json"],
    ["evaluate", "tiny.cnn", "--weights", "huge.npz", "--data", "data.npz", "--runtime", "onnx"],
    ["predict", "tiny.cnn", "--weights", "huge.npz", "--data", "data.npz"],
    ["train", "tiny.cnn", "--data", "data.npz", "-o", "t.npz", "-v", "0", "--lr", "1000"],
    ["compile", "tiny.cnn", "--weights", "huge.npz", "-q", "-o", "h.onnx"],
    ["bench", "tiny.cnn", "--weights", "huge.npz", "--seconds", "0.05", "--no-torch", "--batch", "2"],
])
def test_pythonwarnings_error_is_never_an_internal_error(tmp_path, argv):
    pytest.importorskip("onnxruntime")
    (tmp_path / "tiny.cnn").write_text(TINY)
    x, y = tiny_data(20)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y, x_test=x[:6], y_test=y[:6])
    m = cnnc.loads(TINY)
    m.set_weights({k: np.full_like(v, 3e37) for k, v in m.get_weights().items()})
    m.save_weights(tmp_path / "huge.npz")
    rc, out, err = cnnc_run(*argv, cwd=tmp_path, env={"PYTHONWARNINGS": "error"})
    assert rc in (0, 1), err                  # 1: training stopped on NaN, said so
    if argv[0] == "evaluate" and "json" in argv:
        assert json.loads(out, parse_constant=lambda c: pytest.fail(c))["loss"] is None


# --- messages after damage name the damage -------------------------------------------------

@pytest.fixture
def checkpointed(tmp_path):
    (tmp_path / "tiny.cnn").write_text(TINY)
    x, y = tiny_data(40)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y, x_test=x[:6], y_test=y[:6])
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz", "-v", "0",
                            "--epochs", "1", "--seed", "1", cwd=tmp_path)
    assert rc == 0, err
    return tmp_path


def _tamper(folder: Path, edit) -> None:
    path = folder / "w.ckpt" / "checkpoint.npz"
    arrays = dict(np.load(path))
    edit(arrays)
    np.savez(path, **arrays)


@pytest.mark.parametrize("edit,words", [
    (lambda a: a.__setitem__("w/dense_1/kernel", a["w/dense_1/kernel"] * 1e30),
     "the array 'w/dense_1/kernel' differs"),
    (lambda a: a.__setitem__("w/conv2d/bias", a["w/conv2d/bias"] + 1e-3),
     "the array 'w/conv2d/bias' differs"),
    (lambda a: a.pop("w/dense/bias"), "the array 'w/dense/bias' is missing"),
    (lambda a: a.__setitem__("meta.json", np.frombuffer(
        bytes(a["meta.json"]).replace(b'"epoch": 1', b'"epoch": 7'), np.uint8)),
     "its settings (meta.json"),
])
def test_a_tampered_checkpoint_is_named_not_blamed_on_the_learning_rate(checkpointed, edit, words):
    _tamper(checkpointed, edit)
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz", "-v", "0",
                            "--epochs", "3", "--seed", "1", "--resume", cwd=checkpointed)
    assert rc == 2, err
    assert "w.ckpt/checkpoint.npz' was changed after cnnc wrote it" in err and words in err
    assert "learning rate" not in err


def test_a_checkpoint_with_impossible_values_is_damaged(checkpointed):
    """Without its digests (a checkpoint of an older cnnc): the values are checked."""
    path = checkpointed / "w.ckpt" / "checkpoint.npz"
    arrays = dict(np.load(path))
    meta = json.loads(bytes(arrays["meta.json"]))
    meta.pop("digests")
    slot = next(k for k in arrays if k.startswith("o/momentum"))
    arrays[slot] = np.full_like(arrays[slot], np.nan)
    arrays["meta.json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz", "-v", "0",
                            "--epochs", "3", "--resume", cwd=checkpointed)
    assert rc == 2 and "is damaged" in err and f"array '{slot}' holds NaN or inf" in err
    assert "learning rate" not in err


def test_a_first_step_that_fails_blames_the_start_not_the_learning_rate(tmp_path):
    (tmp_path / "tiny.cnn").write_text(TINY)
    x, y = tiny_data(20)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y)
    m = cnnc.loads(TINY)
    m.set_weights({k: np.full_like(v, 3e37) for k, v in m.get_weights().items()})
    m.save_weights(tmp_path / "huge.npz")
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz", "-v", "0",
                            "--initial-weights", "huge.npz", cwd=tmp_path)
    assert rc == 1 and "this was the run's first step, before any update" in err
    assert "smaller learning rate" not in err and not (tmp_path / "w.npz").exists()


# --- random calls: nothing but cnnc's own exceptions --------------------------------------

def _api_values(tmp: Path) -> list:
    return [None, 0, -1, 1, 2, 10**30, 2.5, float("nan"), float("inf"), True, "", "x", "relu",
            b"x", [], [1], {}, {"a": 1}, object(), np.float64("nan"), np.int64(3), np.zeros(0),
            np.zeros((0, 6, 6, 1)), np.zeros((2, 6, 6, 1)), np.zeros((2, 6, 6, 1), np.uint8),
            np.full((2, 6, 6, 1), 1e300), np.zeros((2, 6, 6)), np.zeros((2, 3)), np.arange(2),
            np.zeros(2, dtype="U3"), np.zeros((2, 6, 6, 1), np.complex64), "/dev/null",
            str(tmp / "missing.npz"), str(tmp / "w.npz"), str(tmp / "w.weights.h5"), str(tmp),
            str(tmp / "o.onnx"), str(tmp / "o.txt"), "\udcff", "a\x00b", "x" * 5000,
            [[1, 2], [3]], np.zeros((2, 6, 6, 1), object), str(tmp / ("x" * 300))]


FIT_KEYWORDS = ["batch_size", "learning_rate", "validation_split", "shuffle", "seed", "loss",
                "optimizer", "metrics", "validation_data", "divisor", "scale", "checkpoint",
                "initial_epoch", "validation_batch_size", "checkpoint_every", "resume", "verbose"]


def test_api_fuzz_raises_only_cnnc_errors(tmp_path):
    import random
    rng = random.Random(17)
    m = cnnc.loads(TINY)
    m.init_weights(0)
    m.save_weights(tmp_path / "w.npz")
    m.save_weights(tmp_path / "w.weights.h5")
    values = _api_values(tmp_path)
    x4, y4 = np.zeros((4, 6, 6, 1)), np.arange(4) % 3
    calls = {
        "predict": lambda a, b: m.predict(a, b),
        "evaluate": lambda a, b: m.evaluate(a, b),
        "evaluate_kw": lambda a, b: m.evaluate(x4, y4, batch_size=a, runtime=b),
        "fit": lambda a, b: m.fit(a, b, epochs=1, verbose=0),
        "fit_kw": lambda a, b: m.fit(x4, y4, **{"epochs": 1, "verbose": 0, rng.choice(FIT_KEYWORDS): a}),
        "save_weights": lambda a, b: m.save_weights(a),
        "load_weights": lambda a, b: m.load_weights(a),
        "set_weights": lambda a, b: m.set_weights(a if not isinstance(a, np.ndarray) else {"conv2d/kernel": a}),
        "to_onnx": lambda a, b: m.to_onnx(a, b),
        "summary": lambda a, b: m.summary(a),
        "layer": lambda a, b: m.layer(a),
        "init_weights": lambda a, b: m.init_weights(a),
        "load": lambda a, b: cnnc.load(a),
        "loads": lambda a, b: cnnc.loads(a, b if isinstance(b, str) else "<s>"),
    }
    escaped = []
    n = 3000 if os.environ.get("CNNC_FUZZ") == "big" else 300
    for i in range(n):
        name = rng.choice(sorted(calls))
        a, b = rng.choice(values), rng.choice(values)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                warnings.simplefilter("ignore", NumericWarning)     # cnnc's own, documented
                calls[name](a, b)
        except (UsageError, cnnc.CnncError):
            pass
        except Exception as e:  # noqa: BLE001 - what escapes is the finding
            escaped.append(f"{name}({a!r:.40}, {b!r:.40}): {type(e).__name__}: {str(e)[:120]}")
        if i % 50 == 0:
            m = cnnc.loads(TINY)
            m.init_weights(0)
    assert not escaped, "\n".join(escaped[:20])
