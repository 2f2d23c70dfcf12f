"""The resource guard (issue 10): impossible sizes are refused before allocating, with
the size in bytes and the limit; every run under RLIMIT_AS and a time limit."""

from __future__ import annotations

import resource as _resource

import numpy as np
import pytest

import cnnc
from cnnc.support import resources
from cnnc.support.resources import ResourceError

from .test_hostile_outputs import cnnc_run
from .test_train import TINY, tiny_data

HUGE_DENSE = """
model huge
input (8, 8, 1)
Flatten()
Dense(1000000000000)
compile(optimizer='sgd', loss='mse')
"""

BIG_INPUT = """
model bigin
input (4096, 4096, 3)
Conv2D(16, 3)
GlobalAveragePooling2D()
Dense(10, activation='softmax')
compile(optimizer='sgd', loss='categorical_crossentropy')
"""


@pytest.fixture
def work(tmp_path):
    (tmp_path / "huge.cnn").write_text(HUGE_DENSE)
    (tmp_path / "bigin.cnn").write_text(BIG_INPUT)
    (tmp_path / "tiny.cnn").write_text(TINY)
    x, y = tiny_data(40)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    np.save(tmp_path / "x.npy", x[:4])
    return tmp_path


def _assert_refused(rc, out, err):
    assert rc == 2, err
    assert "needs about" in err and "bytes) of memory" in err and "available" in err, err
    assert "out of memory" not in err    # the guard, not the last resort


@pytest.mark.parametrize("argv", [
    ["compile", "huge.cnn", "-o", "h.onnx"],
    ["train", "huge.cnn", "--data", "data.npz", "-o", "h.npz"],
    ["predict", "huge.cnn", "--weights", "w.npz", "--data", "x.npy"],
    ["evaluate", "huge.cnn", "--weights", "w.npz", "--data", "data.npz"],
    ["bench", "huge.cnn"],
    ["export", "huge.cnn", "-o", "h.keras"],
    ["train", "bigin.cnn", "--data", "data.npz", "-o", "b.npz"],
    ["bench", "bigin.cnn", "--batch", "256"],
])
def test_impossible_sizes_are_refused_before_allocating(work, argv):
    rc, out, err = cnnc_run(*argv, cwd=work, timeout=60)
    if argv[0] == "export" and "h5py" in err:
        pytest.skip("h5py is not installed")
    _assert_refused(rc, out, err)
    assert sorted(p.name for p in work.iterdir()) == ["bigin.cnn", "data.npz", "huge.cnn", "tiny.cnn", "x.npy"]


def test_huge_batch_is_refused_with_a_batch_that_fits(work):
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz",
                            "--batch-size", "100000000000", cwd=work, timeout=60)
    _assert_refused(rc, out, err)
    assert "--batch-size" in err
    assert not (work / "w.npz").exists()


def test_the_limit_follows_cnnc_memory_limit(work):
    rc, out, err = cnnc_run("train", "tiny.cnn", "--data", "data.npz", "-o", "w.npz", cwd=work,
                            env={"CNNC_MEMORY_LIMIT": "10K"}, timeout=60)
    _assert_refused(rc, out, err)
    assert "CNNC_MEMORY_LIMIT: 10.0 KB (10,240 bytes)" in err
    rc, out, err = cnnc_run("summary", "tiny.cnn", cwd=work, env={"CNNC_MEMORY_LIMIT": "lots"})
    assert rc == 0                    # summary allocates nothing: no guard, no parse


def test_bad_memory_limit_variable_is_a_usage_error(work):
    rc, out, err = cnnc_run("predict", "tiny.cnn", "--data", "x.npy", cwd=work,
                            env={"CNNC_MEMORY_LIMIT": "lots"}, timeout=60)
    assert rc == 2 and "CNNC_MEMORY_LIMIT='lots' is not a size" in err


def test_api_fit_and_evaluate_refuse(monkeypatch):
    m = cnnc.loads(HUGE_DENSE)
    x = np.zeros((4, 8, 8, 1), np.float32)
    y = np.zeros((4, 1000000000000 // 10**12), np.float32)
    with pytest.raises(ResourceError, match="needs about"):
        m.fit(x, y, verbose=0)
    assert not m.has_weights          # nothing was drawn
    with pytest.raises(ResourceError):
        m.evaluate(x, y)


def test_available_takes_the_smallest_limit(monkeypatch):
    monkeypatch.setenv("CNNC_MEMORY_LIMIT", "1G")
    n, source = resources.available()
    assert n <= 2**30
    monkeypatch.setenv("CNNC_MEMORY_LIMIT", "1T")
    n, source = resources.available()
    assert source != "CNNC_MEMORY_LIMIT" or n == 2**40


def test_rlimit_as_is_seen(monkeypatch):
    monkeypatch.delenv("CNNC_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(_resource, "getrlimit", lambda which: (resources._mapped() + 1000, -1))
    n, source = resources.available()
    assert n <= 1000 and "ulimit -v" in source


def test_estimate_is_sane_for_a_real_model():
    m = cnnc.load("examples/mnist.cnn")
    est = resources.estimate(m.analysis, 64, "train")
    assert m.total_params * 4 == est.weights
    assert 1e5 < est.total < 1e9                 # MNIST trains in well under a gigabyte
    assert resources.check_model(m, 64, "fit", training=True).total == est.total


def test_human_sizes():
    assert resources.human(512) == "512 B"
    assert resources.human(3 * 2**30) == "3.0 GB"


def test_training_counts_every_convolutions_patches_grouped_ones_whole():
    """NumPy training keeps each conv's patch matrix from forward to backward, and a
    grouped conv's patches cover all its input channels: (8x8 outputs, 3x3 taps, C in)."""
    m = cnnc.loads("input (8, 8, 4)\nConv2D(8, 3, padding='same')\n"
                   "Conv2D(8, 3, padding='same', groups=4)\n")
    est = resources.estimate(m.analysis, 1, "train")
    patches = [64 * 9 * 4 * 4, 64 * 9 * 8 * 4]          # bytes: positions x taps x C x float32
    outs = [64 * 8 * 4, 64 * 8 * 4]
    assert est.per_sample == 8 * 8 * 4 * 4 + 2 * sum(outs) + sum(patches) + 2 * max(patches)
