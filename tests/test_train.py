"""fit and evaluate: Keras's semantics (validation split, sample-weighted running
means, return forms), determinism, checkpoints and resume, the NaN guard, and the
loss/Network coupling checked by finite differences end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cnnc
from cnnc.backends.numpy import checkpoint as ckpt
from cnnc.backends.numpy import losses as L
from cnnc.backends.numpy import training as train
from cnnc.backends.numpy.network import Network
from cnnc.support.diagnostics import UsageError

TINY = """
model tiny
input (6, 6, 1)
Conv2D(4, (3, 3), activation='relu')
MaxPooling2D((2, 2))
Flatten()
Dense(8, activation='relu')
Dropout(0.3)
Dense(3, activation='softmax')
compile(optimizer=Adam(learning_rate=0.01), loss='categorical_crossentropy', metrics=['accuracy'])
fit(epochs=2, batch_size=8, validation_split=0.25)
"""

NO_DROPOUT = """
model plain
input (4,)
Dense(5, activation='tanh')
Dense(3, activation='softmax')
compile(optimizer=SGD(learning_rate=1e-12), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
"""


def tiny_data(n=40, seed=0):
    """Images whose class is the brightest third of the image: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, n)
    for i, c in enumerate(y):
        x[i, :, 2 * c:2 * c + 2] += 0.5
    return x, y


def tiny(text=TINY):
    return cnnc.loads(text)


def test_fit_returns_a_keras_history():
    m = tiny()
    x, y = tiny_data()
    h = m.fit(x, y, seed=0, verbose=0)
    assert m.history is h
    assert list(h.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(len(v) == 2 for v in h.history.values())
    assert h.epoch == [0, 1]
    assert h.params["samples"] == 30 and h.params["steps"] == 4  # 40 * 0.75 in batches of 8


def test_same_seed_bit_identical_other_seed_different():
    x, y = tiny_data()
    runs = []
    for seed in (3, 3, 4):
        m = tiny()
        h = m.fit(x, y, seed=seed, verbose=0, epochs=3)
        runs.append((m.get_weights(), h.history))
    (w1, h1), (w2, h2), (w3, h3) = runs
    assert all(np.array_equal(w1[k], w2[k]) for k in w1) and h1 == h2
    assert not all(np.array_equal(w1[k], w3[k]) for k in w1) and h1 != h3


def test_validation_split_takes_the_last_fraction_before_shuffling():
    m = tiny()
    x, y = tiny_data(40)
    h = m.fit(x, y, seed=1, verbose=0, epochs=1, validation_split=0.25)
    # Validation runs at the end of the epoch with the final weights, in inference mode.
    last = m.evaluate(x[30:], y[30:], return_dict=True, verbose=0)
    first = m.evaluate(x[:10], y[:10], return_dict=True, verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(last["loss"], rel=1e-6)
    assert h.history["val_accuracy"][0] == pytest.approx(last["accuracy"])
    assert h.history["val_loss"][0] != pytest.approx(first["loss"], rel=1e-6)
    assert train.validation_cut(40, 0.25) == 30 and train.validation_cut(10, 0.15) == 8
    with pytest.raises(UsageError, match="cannot be split"):
        train.validation_cut(1, 0.5)


def test_validation_data_replaces_the_split():
    m = tiny()
    x, y = tiny_data(40)
    xv, yv = tiny_data(12, seed=9)
    h = m.fit(x, y, seed=1, verbose=0, epochs=1, validation_data=(xv, yv))
    assert h.params["samples"] == 40
    assert h.history["val_loss"][0] == pytest.approx(m.evaluate(xv, yv, verbose=0)[0], rel=1e-6)


def test_epoch_logs_are_means_over_samples_not_over_batches():
    # lr 1e-12: the weights do not move, so the epoch's training loss must equal the loss of
    # the whole training set; batches of 4, 4, 2 make the mean of batch means differ from it.
    m = tiny(NO_DROPOUT)
    m.init_weights(0)  # evaluate() below would otherwise draw unseeded weights
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 4)).astype(np.float32) * 3
    y = rng.integers(0, 3, 10)
    whole = m.evaluate(x, y, return_dict=True, verbose=0)
    h = m.fit(x, y, batch_size=4, shuffle=False, seed=0, verbose=0)
    per_batch = [m.evaluate(x[i:i + 4], y[i:i + 4], verbose=0)[0] for i in (0, 4, 8)]
    assert h.history["loss"][0] == pytest.approx(whole["loss"], rel=1e-5)
    assert h.history["accuracy"][0] == pytest.approx(whole["accuracy"])
    assert abs(np.mean(per_batch) - whole["loss"]) > 1e-3


def test_evaluate_return_forms():
    m = tiny(NO_DROPOUT)
    x = np.zeros((5, 4), np.float32)
    y = np.zeros(5, int)
    loss, acc = m.evaluate(x, y, verbose=0)
    assert isinstance(loss, float) and acc == 1.0  # equal scores: argmax picks class 0
    assert m.evaluate(x, y, return_dict=True, verbose=0) == {"loss": loss, "accuracy": acc}
    assert m.evaluate(x, y, verbose=0, metrics=[]) == pytest.approx(loss)  # no metrics: a scalar
    assert loss == pytest.approx(np.log(3), rel=1e-6)  # zero input, zero biases: uniform softmax


def test_fit_keeps_the_optimizer_between_calls():
    m = tiny()
    x, y = tiny_data()
    m.fit(x, y, seed=0, verbose=0, epochs=1)
    m.fit(x, y, seed=0, verbose=0, epochs=1)
    assert m.optimizer_state[0]["iterations"] == 8  # Adam's bias correction keeps counting


def test_no_loss_is_a_clear_error_and_loss_override_works():
    m = cnnc.loads("model m\ninput (4,)\nDense(2, activation='softmax')\n")
    x, y = np.zeros((4, 4), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(UsageError, match="no loss") as e:
        m.fit(x, y, verbose=0)
    assert "--loss" in e.value.notes[0]
    h = m.fit(x, y, verbose=0, loss="sparse_categorical_crossentropy", seed=0)
    assert list(h.history) == ["loss"]  # Keras's compile default: no metrics


def test_unsupported_fit_arguments():
    m = tiny()
    x, y = tiny_data()
    with pytest.raises(UsageError, match="class weights"):
        m.fit(x, y, class_weight={0: 1.0}, verbose=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        m.fit(x, y, epoch=3, verbose=0)


def test_data_that_does_not_fit_names_both_shapes():
    m = tiny()
    with pytest.raises(UsageError) as e:
        m.fit(np.zeros((4, 8, 8)), np.zeros(4, int), verbose=0)
    assert "(4, 8, 8, 1)" in e.value.message or "(4, 8, 8)" in e.value.message
    assert "(None, 6, 6, 1)" in e.value.message
    with pytest.raises(UsageError, match="class id 7"):
        m.fit(np.zeros((4, 6, 6)), np.array([0, 1, 2, 7]), verbose=0)


# --- the loss and the Network together: finite differences through everything -------------

HEADS = {
    "softmax+cce": ("Dense(3, activation='softmax')", "categorical_crossentropy", False),
    "softmax+sparse": ("Dense(3, activation='softmax')", "sparse_categorical_crossentropy", False),
    "sigmoid+bce": ("Dense(2, activation='sigmoid')", "binary_crossentropy", False),
    "logits+cce": ("Dense(3)", "categorical_crossentropy", True),
    "linear+mse": ("Dense(3)", "mean_squared_error", False),
}


@pytest.mark.parametrize("head", list(HEADS))
def test_training_gradient_matches_finite_differences(head):
    layer, loss_name, logits = HEADS[head]
    m = cnnc.loads(f"model g\ninput (5, 5, 2)\nConv2D(3, (2, 2), activation='tanh')\n"
                   f"Flatten()\n{layer}\n")
    rng = np.random.default_rng(1)
    w = {k: rng.normal(size=v.shape) * 0.5 for k, v in m.weights.items()}  # float64
    net = Network(m.analysis, w)
    x = rng.normal(size=(4, 5, 5, 2))
    k = m.analysis.output_shape[-1]
    y = {"sparse_categorical_crossentropy": rng.integers(0, k, 4),
         "binary_crossentropy": rng.integers(0, 2, (4, k)).astype(float),
         "mean_squared_error": rng.normal(size=(4, k))}.get(loss_name, np.eye(k)[rng.integers(0, k, 4)])
    loss = L.Loss(loss_name, from_logits=logits, output_activation=net.output_activation)
    assert loss.fused == (not logits and loss_name != "mean_squared_error")
    p = net.forward(x, training=True)
    grads = net.backward(loss.gradient(y, p), skip_output_activation=loss.fused)
    h = 1e-6
    for key, g in grads.items():
        flat = w[key].reshape(-1)
        for i in rng.choice(flat.size, size=min(4, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + h
            up = loss.value(y, net.forward(x))
            flat[i] = old - h
            down = loss.value(y, net.forward(x))
            flat[i] = old
            assert g.reshape(-1)[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9), key


# --- checkpoints, resume, NaN guard ----------------------------------------------------------

class _Boom(Exception):
    pass


def _explode_after(monkeypatch, calls: int):
    """Make the optimizer raise on its `calls`-th step: a crash between two checkpoints."""
    from cnnc.backends.numpy import optimizers as O
    original = O.Optimizer.apply
    count = {"n": 0}

    def apply(self, grads, weights):
        count["n"] += 1
        if count["n"] == calls:
            raise _Boom
        return original(self, grads, weights)

    monkeypatch.setattr(O.Optimizer, "apply", apply)


def test_crash_mid_epoch_and_resume_gives_identical_weights(tmp_path, monkeypatch):
    x, y = tiny_data(48)
    ref = tiny()
    href = ref.fit(x, y, seed=5, verbose=0, epochs=3)
    folder = tmp_path / "run.ckpt"
    crashed = tiny()
    with monkeypatch.context() as mp:
        _explode_after(mp, 8)  # 36 training samples: 5 steps an epoch; step 8 is epoch 2's third
        with pytest.raises(_Boom):
            crashed.fit(x, y, seed=5, verbose=0, epochs=3, checkpoint=folder, checkpoint_every=0)
    meta, _ = ckpt.load(folder)
    assert (meta["epoch"], meta["batch"]) == (1, 2)
    resumed = tiny()
    h = resumed.fit(x, y, verbose=0, epochs=3, checkpoint=folder, resume=True)  # seed from the checkpoint
    assert all(np.array_equal(ref.weights[k], resumed.weights[k]) for k in ref.weights)
    assert h.history == href.history and h.epoch == [0, 1, 2]


def test_resume_of_a_finished_run_trains_no_more_and_can_extend(tmp_path):
    x, y = tiny_data()
    folder = tmp_path / "c"
    a = tiny()
    a.fit(x, y, seed=2, verbose=0, epochs=2, checkpoint=folder)
    b = tiny()
    h = b.fit(x, y, verbose=0, epochs=2, checkpoint=folder, resume=True)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert len(h.epoch) == 2
    c = tiny()
    c.fit(x, y, verbose=0, epochs=3, checkpoint=folder, resume=True)
    d = tiny()
    d.fit(x, y, seed=2, verbose=0, epochs=3)
    assert all(np.array_equal(c.weights[k], d.weights[k]) for k in c.weights)


def test_resume_refuses_a_different_run(tmp_path):
    x, y = tiny_data()
    folder = tmp_path / "c"
    tiny().fit(x, y, seed=2, verbose=0, epochs=1, checkpoint=folder)
    with pytest.raises(ckpt.CheckpointError, match="batch size"):
        tiny().fit(x, y, verbose=0, batch_size=4, checkpoint=folder, resume=True)
    with pytest.raises(ckpt.CheckpointError, match="training data"):
        tiny().fit(x * 2, y, verbose=0, checkpoint=folder, resume=True)
    with pytest.raises(ckpt.CheckpointError, match="layers or arguments"):
        tiny(TINY.replace("Dense(8", "Dense(9")).fit(x, y, verbose=0, checkpoint=folder, resume=True)
    with pytest.raises(ckpt.CheckpointError, match="learning rate"):
        tiny().fit(x, y, verbose=0, learning_rate=0.5, checkpoint=folder, resume=True)


def test_checkpoint_is_one_npz_without_pickles(tmp_path):
    x, y = tiny_data()
    tiny().fit(x, y, seed=0, verbose=0, epochs=1, checkpoint=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["checkpoint.npz"]
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta.json"]).decode())
        keys = set(z.files)
    assert meta["epoch"] == 1 and meta["batch"] == 0
    assert {"w/conv2d/kernel", "o/momentum:conv2d/kernel", "o/velocity:dense_1/bias"} <= keys


def test_nan_loss_stops_before_the_bad_update_and_keeps_the_checkpoint(tmp_path):
    x, y = tiny_data(48)
    x[20, 3, 3] = np.nan  # sample 20 is in the third batch of 8 (no shuffling)
    m = tiny()
    with pytest.raises(train.TrainingStopped) as e, m._training_state() as state:
        # (Model.fit refuses NaN data up front)
        train.fit(m.analysis, state, x, y, seed=4, verbose=0, shuffle=False, validation_split=0.0,
                  checkpoint=tmp_path, checkpoint_every=0)
    assert (e.value.epoch, e.value.batch) == (0, 2)
    assert "the loss is nan at epoch 1, batch 3/6" in str(e.value)
    assert e.value.checkpoint == tmp_path
    # The weights are those after two good batches: the same as training on those alone.
    ok = tiny()
    ok.fit(x[:16], y[:16], seed=4, verbose=0, shuffle=False, validation_split=0.0, epochs=1)
    assert all(np.array_equal(m.weights[k], ok.weights[k]) for k in ok.weights)
    meta, arrays = ckpt.load(tmp_path)
    assert (meta["epoch"], meta["batch"]) == (0, 2)
    assert all(np.array_equal(arrays[f"w/{k}"], ok.weights[k]) for k in ok.weights)


def test_nan_guard_leaves_batch_norm_statistics_untouched():
    m = cnnc.loads("model bn\ninput (4,)\nDense(6)\nBatchNormalization()\nDense(2, activation='softmax')\n"
                   "compile(optimizer='sgd', loss='sparse_categorical_crossentropy')\n")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 4)).astype(np.float32)
    x[9, 0] = np.inf  # the third batch of 4
    y = rng.integers(0, 2, 12)
    with pytest.raises(train.TrainingStopped) as e, m._training_state() as state:
        # (Model.fit refuses inf data up front)
        train.fit(m.analysis, state, x, y, batch_size=4, shuffle=False, seed=0, verbose=0)
    assert e.value.batch == 2
    ok = cnnc.loads("model bn\ninput (4,)\nDense(6)\nBatchNormalization()\nDense(2, activation='softmax')\n"
                    "compile(optimizer='sgd', loss='sparse_categorical_crossentropy')\n")
    ok.fit(x[:8], y[:8], batch_size=4, shuffle=False, seed=0, verbose=0)
    for k in ("batch_normalization/moving_mean", "batch_normalization/moving_variance"):
        assert np.all(np.isfinite(m.weights[k])) and np.array_equal(m.weights[k], ok.weights[k])


def test_settings_are_checked_and_numpy_integers_accepted():
    m = tiny()
    x, y = tiny_data()
    h = m.fit(x, y, epochs=np.int64(1), batch_size=np.int32(10), verbose=0, seed=np.int64(3))
    assert h.params["steps"] == 3
    for bad in ({"epochs": 0}, {"batch_size": 2.5}, {"validation_split": 1.0}, {"seed": -1},
                {"shuffle": "yes"}, {"verbose": 3}, {"initial_epoch": True}):
        with pytest.raises(UsageError):
            m.fit(x, y, **bad)
    with pytest.raises(UsageError, match="batch_size"):
        m.evaluate(x, y, batch_size=0)
