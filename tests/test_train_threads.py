"""Training with the batch split across threads (backends/numpy/parallel.py): the
split network computes what one thread computes (BatchNormalization's statistics
combined over the blocks, dropout masks drawn for the whole batch), its gradients
match finite differences, a run repeats bit for bit at a thread count and resumes so,
and a failing thread never hangs the others."""

from __future__ import annotations

import io

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy import training as train
from cnnc.backends.numpy.network import Network
from cnnc.backends.numpy.parallel import ParallelNetwork
from cnnc.backends.numpy.shards import combine_moments, split_rows
from cnnc.support.diagnostics import UsageError

from .test_reference_gradients import _compare, _weights
from .test_train import tiny_data

# BatchNormalization on a conv (last axis) and on a Dense output, a residual Add,
# dropout, and a frozen BatchNormalization: every batch-coupled path.
COUPLED = """
model coupled
input (6, 6, 2)
Conv2D(4, 3, padding='same', use_bias=False)
BatchNormalization()
Activation('relu') as a
Conv2D(4, 3, padding='same')
BatchNormalization(momentum=0.5) as b
Add()([a, b])
SpatialDropout2D(0.3)
MaxPooling2D(2)
Flatten()
Dense(5)
BatchNormalization(axis=-1, center=False)
BatchNormalization(trainable=False)
Dropout(0.4)
Dense(3)
"""


@pytest.fixture(autouse=True)
def four_cores(monkeypatch):
    """A machine of 4 cores: thread counts are bounded by the cores (a note says so), and
    these tests split batches 3 and 4 ways whatever machine runs them."""
    from cnnc.support import resources
    monkeypatch.setattr(resources, "cpu_cores", lambda: 4)


def _nets(threads: int, dtype=np.float64, text: str = COUPLED):
    model = cnnc.loads(text)
    weights = {k: v.astype(dtype) for k, v in _weights(model, np.random.default_rng(0)).items()}
    single = Network(model.analysis, {k: v.copy() for k, v in weights.items()})
    split = ParallelNetwork(model.analysis, {k: v.copy() for k, v in weights.items()}, threads)
    return model, single, split


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_split_batch_computes_what_one_thread_computes(threads):
    model, single, split = _nets(threads)
    try:
        x = np.random.default_rng(1).normal(0, 1, (7, 6, 6, 2))
        r = np.random.default_rng(2).normal(0, 1, (7, 3))
        outs, grads, dxs = [], [], []
        for net in (single, split):
            outs.append(net.forward(x, training=True, rng=np.random.default_rng(3)))
            grads.append(net.backward(r, input_grad=True))
            dxs.append(net.input_grad)
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12, atol=1e-12)
        assert list(grads[1]) == list(grads[0])
        for k in grads[0]:
            np.testing.assert_allclose(grads[1][k], grads[0][k], rtol=1e-10, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(dxs[1], dxs[0], rtol=1e-10, atol=1e-12)
        # the moving statistics were updated once, with the whole batch's statistics
        for k, v in single.weights.items():
            np.testing.assert_allclose(split.weights[k], v, rtol=1e-12, atol=1e-14, err_msg=k)
        # inference on the split network: the moving statistics, no dropout
        np.testing.assert_allclose(split.forward(x), single.forward(x), rtol=1e-12, atol=1e-12)
    finally:
        split.close()


def test_a_batch_of_fewer_blocks_than_threads_runs_and_matches():
    """Two samples on three threads: two blocks; the threads' barrier counts the blocks
    (a barrier waiting for a third would hang: the test runs in a thread it can leave)."""
    import threading
    model, single, split = _nets(3)
    x = np.random.default_rng(1).normal(0, 1, (2, 6, 6, 2))
    r = np.random.default_rng(2).normal(0, 1, (2, 3))
    out = {}

    def run():
        for name, net in (("single", single), ("split", split)):
            y = net.forward(x, training=True, rng=np.random.default_rng(3))
            out[name] = (y, net.backward(r))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)
    try:
        assert not worker.is_alive(), "the split network hangs"
        np.testing.assert_allclose(out["split"][0], out["single"][0], rtol=1e-12, atol=1e-12)
        for k, g in out["single"][1].items():
            np.testing.assert_allclose(out["split"][1][k], g, rtol=1e-10, atol=1e-12, err_msg=k)
    finally:
        if not worker.is_alive():
            split.close()


def test_split_batch_gradients_match_finite_differences():
    """The truth is the split network's own loss: BatchNormalization couples the
    blocks, so a gradient that missed the other blocks' share would fail here."""
    model, _, net = _nets(2)
    try:
        x = np.random.default_rng(4).normal(0, 1, (5, 6, 6, 2))
        y = net.forward(x, training=True, rng=np.random.default_rng(1))
        r = np.random.default_rng(5).normal(0, 1, y.shape)

        def loss() -> float:
            return float(np.sum(net.forward(x, training=True, rng=np.random.default_rng(1)) * r))

        grads = net.backward(r, input_grad=True)
        check = np.random.default_rng(6)
        for key, g in grads.items():
            _compare(net.weights[key], g, loss, key, check)
        _compare(x, net.input_grad, loss, "input", check)
    finally:
        net.close()


@pytest.mark.parametrize("layer", ["Dropout(0.5)", "SpatialDropout2D(0.5)",
                                   "Dropout(0.5, noise_shape=(None, 1, 4, 1))",
                                   "Dropout(0.5, noise_shape=(1, 3, 4, 1))"])
def test_dropout_masks_do_not_depend_on_the_thread_count(layer):
    text = f"model d\ninput (3, 4, 2)\n{layer}\n"
    model = cnnc.loads(text)
    x = np.random.default_rng(0).normal(0, 1, (9, 3, 4, 2)).astype(np.float32)
    want = Network(model.analysis, {}).forward(x, training=True, rng=np.random.default_rng(7))
    for threads in (2, 4):
        net = ParallelNetwork(model.analysis, {}, threads)
        try:
            got = net.forward(x, training=True, rng=np.random.default_rng(7))
        finally:
            net.close()
        np.testing.assert_array_equal(got, want)
        assert (got == 0).any() and (got != 0).any()


def test_combined_moments_are_the_whole_batch_moments():
    rng = np.random.default_rng(0)
    blocks = [rng.normal(3, 2, (n, 4)) for n in (5, 0, 1, 9, 2)]
    parts = [(len(b), b.mean(axis=0) if len(b) else np.zeros(4),
              ((b - b.mean(axis=0)) ** 2).sum(axis=0) if len(b) else np.zeros(4)) for b in blocks]
    n, mean, m2 = combine_moments(parts)
    whole = np.concatenate(blocks)
    assert n == len(whole)
    np.testing.assert_allclose(mean, whole.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(m2 / n, whole.var(axis=0), rtol=1e-12)


def test_split_rows():
    assert split_rows(64, 2) == [(0, 32), (32, 64)]
    assert split_rows(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert split_rows(2, 5) == [(0, 1), (1, 2)]
    assert split_rows(0, 4) == [(0, 0)]
    for n in range(1, 40):
        for parts in range(1, 9):
            b = split_rows(n, parts)
            assert b[0][0] == 0 and b[-1][1] == n and all(x[1] == y[0] for x, y in zip(b, b[1:]))
            sizes = [stop - start for start, stop in b]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1 and len(b) == min(n, parts)


# --- fit --------------------------------------------------------------------------------------

RECIPE = COUPLED.replace("input (6, 6, 2)", "input (6, 6, 1)").replace(
    "Dense(3)", "Dense(3, activation='softmax')") + """
compile(optimizer=SGD(learning_rate=0.05), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
fit(epochs=2, batch_size=8, validation_split=0.25)
"""


def _fit(threads, **kw):
    m = cnnc.loads(RECIPE)
    x, y = tiny_data(45)
    h = m.fit(x, y, seed=3, verbose=0, threads=threads, **kw)
    return m, h


def test_a_seeded_run_repeats_bit_for_bit_at_a_thread_count_and_agrees_across_counts():
    runs = {t: _fit(t) for t in (1, 2, 3)}
    again, h_again = _fit(2)
    ref, h_ref = runs[2]
    assert all(np.array_equal(again.weights[k], ref.weights[k]) for k in ref.weights)
    assert h_again.history == h_ref.history and h_ref.params["threads"] == 2
    # other thread counts: the same run up to float32 rounding (SGD keeps it small)
    one = runs[1][0]
    for t in (2, 3):
        for k in one.weights:
            np.testing.assert_allclose(runs[t][0].weights[k], one.weights[k], rtol=1e-4, atol=1e-5,
                                       err_msg=(t, k))


def test_crash_and_resume_at_three_threads_is_bit_identical(tmp_path, monkeypatch):
    from .test_train import _Boom, _explode_after
    ref, href = _fit(3, epochs=3)
    folder = tmp_path / "run.ckpt"
    with monkeypatch.context() as mp:
        _explode_after(mp, 7)
        with pytest.raises(_Boom):
            _fit(3, epochs=3, checkpoint=folder, checkpoint_every=0)
    m = cnnc.loads(RECIPE)
    x, y = tiny_data(45)
    h = m.fit(x, y, verbose=0, threads=3, epochs=3, checkpoint=folder, resume=True)
    assert all(np.array_equal(ref.weights[k], m.weights[k]) for k in ref.weights)
    assert h.history == href.history


def test_a_failing_thread_raises_its_error_and_hangs_nothing(monkeypatch):
    """A layer that fails in the second block only: the first block waits for it at a
    BatchNormalization barrier, which the failure breaks."""
    from cnnc.backends.numpy import layers

    class Broken(RuntimeError):
        pass

    original = layers.Dense.compute

    def compute(self, x, w, training, rng):
        if self.shard is not None and self.shard.index == 1:
            raise Broken("block 1 fails")
        return original(self, x, w, training, rng)

    monkeypatch.setattr(layers.Dense, "compute", compute)
    monkeypatch.setattr(layers.Dense, "batch_coupled", True)    # so that it gets its shard
    with pytest.raises(Broken):
        _fit(2)
    monkeypatch.setattr(layers.Dense, "compute", original)
    _fit(2)      # the next run starts clean


def test_threads_must_be_a_whole_number():
    x, y = tiny_data(16)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UsageError, match="threads must be a whole number >= 1"):
            cnnc.loads(RECIPE).fit(x, y, verbose=0, threads=bad)


def test_batches_smaller_than_the_thread_count_run_on_one_thread():
    m = cnnc.loads(RECIPE)
    x, y = tiny_data(12)
    m.fit(x, y, verbose=0, batch_size=1, epochs=1, threads=4, seed=0)
    assert all(np.isfinite(v).all() for v in m.weights.values())


def test_the_progress_line_shows_the_threads():
    m = cnnc.loads(RECIPE)
    x, y = tiny_data(16)
    out = io.StringIO()
    state = train.TrainState()
    train.fit(m.analysis, state, x, y, verbose=2, epochs=1, threads=2, stream=out, seed=0)
    assert " samples/s on 2 threads - loss: " in out.getvalue()


# --- the command line ---------------------------------------------------------------------------

def test_cli_threads_flag(tmp_path, monkeypatch, capsys):
    """(18 training samples in batches of 8: the last batch, 2 samples, has fewer blocks
    than the 3 threads.)"""
    from cnnc.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.cnn").write_text(RECIPE)
    x, y = tiny_data(24)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y)
    assert main(["train", "r.cnn", "--data", "data.npz", "--threads", "0", "-v", "2"]) == 2
    assert "--threads must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r.npz").exists()
    assert main(["train", "r.cnn", "--data", "data.npz", "--threads", "3", "-v", "2", "--seed", "1",
                 "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert " samples/s on 3 threads - loss: " in out
    history = __import__("json").loads((tmp_path / "r.history.json").read_text())
    assert history["params"]["threads"] == 3


def test_more_threads_than_cores_are_bounded_with_a_note(tmp_path, monkeypatch, capsys):
    from cnnc.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.cnn").write_text(RECIPE)
    x, y = tiny_data(24)
    np.savez(tmp_path / "data.npz", x_train=x, y_train=y)
    assert main(["train", "r.cnn", "--data", "data.npz", "--threads", "100000", "-v", "2",
                 "--epochs", "1"]) == 0
    out, err = capsys.readouterr()
    assert "--threads 100,000: this process may use 4 cores, so 4 threads are used" in err
    assert " samples/s on 4 threads - loss: " in out
    m = cnnc.loads(RECIPE)
    assert m.fit(x, y, verbose=0, epochs=1, threads=10**6).params["threads"] == 4
