"""fit against Keras itself (a dev-only oracle; skipped where Keras is absent):
the same initial weights, no shuffling, no dropout, two epochs with a partial last
batch, validation_split and BatchNormalization; weights and history must agree.

Run where Keras is installed, e.g.
    PYTHONPATH=. TF_CPP_MIN_LOG_LEVEL=3 /tmp/kvenv/bin/python -m pytest -m keras tests/test_train_keras.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import cnnc

pytestmark = pytest.mark.keras
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")

SRC = """model k
input (12, 12, 1)
Conv2D(6, (3, 3), activation='relu')
MaxPooling2D((2, 2))
Flatten()
Dense(16, activation='relu')
BatchNormalization()
Dense(4, activation='softmax')
compile(optimizer={opt}, loss='{loss}', metrics=['accuracy'])
"""

OPTIMIZERS = {
    "RMSprop(learning_rate=1e-3)": lambda: keras.optimizers.RMSprop(1e-3),
    "SGD(learning_rate=0.05, momentum=0.9, nesterov=True)":
        lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    # epsilon 1e-3: with 1e-7, Adam turns float32 noise in the near-zero gradients of
    # rarely active ReLU units into full-size steps, in Keras as in cnnc.
    "Adam(learning_rate=2e-3, amsgrad=True, clipnorm=1.0, epsilon=1e-3)":
        lambda: keras.optimizers.Adam(2e-3, amsgrad=True, clipnorm=1.0, epsilon=1e-3),
}


def _keras_model():
    from keras import layers
    return keras.Sequential([keras.Input((12, 12, 1)), layers.Conv2D(6, (3, 3), activation="relu"),
                             layers.MaxPooling2D((2, 2)), layers.Flatten(),
                             layers.Dense(16, activation="relu"), layers.BatchNormalization(),
                             layers.Dense(4, activation="softmax")])


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_fit_matches_keras(opt, loss):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (150, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 4, 150)
    ours = cnnc.loads(SRC.format(opt=opt, loss=loss))
    ours.init_weights(0)
    theirs = _keras_model()
    # Keras numbers layer names per process (conv2d_1, ...): pair the weights by order.
    pairs = list(zip(ours.weights, theirs.weights, strict=True))
    for key, w in pairs:
        assert tuple(w.shape) == ours.weights[key].shape
        w.assign(ours.weights[key])
    theirs.compile(optimizer=OPTIMIZERS[opt](), loss=loss, metrics=["accuracy"])
    ky = keras.utils.to_categorical(y, 4) if loss == "categorical_crossentropy" else y
    # 150 * 0.8 = 120 training samples: batches of 32, 32, 32, 24.
    kh = theirs.fit(x, ky, epochs=2, batch_size=32, shuffle=False, validation_split=0.2, verbose=0)
    h = ours.fit(x, y, epochs=2, batch_size=32, shuffle=False, validation_split=0.2, verbose=0, seed=0)
    for key, w in pairs:
        assert np.allclose(ours.weights[key], w.numpy(), atol=1e-4), key
    for key, values in h.history.items():
        assert np.allclose(values, kh.history[key], atol=1e-5), key


def test_weights_exported_from_keras_predict_as_in_keras(tmp_path):
    # Keras's own weight paths ("sequential/conv2d/kernel") saved to an npz, loaded strictly.
    keras.backend.clear_session()  # restart Keras's layer numbering: conv2d, dense, dense_1
    theirs = _keras_model()
    rng = np.random.default_rng(3)
    for w in theirs.weights:
        w.assign(rng.normal(size=w.shape).astype(np.float32) * 0.3 + (1.0 if "variance" in w.path else 0.0))
    np.savez(tmp_path / "k.npz", **{w.path: w.numpy() for w in theirs.weights})
    x = rng.uniform(0, 1, (20, 12, 12, 1)).astype(np.float32)
    ours = cnnc.loads(SRC.format(opt="'adam'", loss="categorical_crossentropy"))
    ours.load_weights(tmp_path / "k.npz")
    assert np.abs(ours.predict(x) - theirs.predict(x, verbose=0)).max() <= 1e-4


# --- losses and optimizers, one by one ---------------------------------------------------------

def _loss_cases(rng):
    tf = pytest.importorskip("tensorflow")
    from cnnc.backends.numpy import losses as L
    z = rng.normal(size=(6, 4)).astype(np.float32) * 3
    p = tf.nn.softmax(z).numpy()
    ids = rng.integers(0, 4, 6)
    onehot = np.eye(4, dtype=np.float32)[ids]
    s = rng.normal(size=(6, 3)).astype(np.float32)
    sig = tf.sigmoid(s).numpy()
    yb = rng.integers(0, 2, (6, 3)).astype(np.float32)
    K = keras.losses
    return [
        (L.Loss("categorical_crossentropy"), K.CategoricalCrossentropy(), onehot, p),
        (L.Loss("categorical_crossentropy", label_smoothing=0.1), K.CategoricalCrossentropy(label_smoothing=0.1), onehot, p),
        (L.Loss("categorical_crossentropy", from_logits=True), K.CategoricalCrossentropy(from_logits=True), onehot, z),
        (L.Loss("sparse_categorical_crossentropy"), K.SparseCategoricalCrossentropy(), ids, p),
        (L.Loss("sparse_categorical_crossentropy", from_logits=True), K.SparseCategoricalCrossentropy(from_logits=True), ids, z),
        (L.Loss("binary_crossentropy"), K.BinaryCrossentropy(), yb, sig),
        (L.Loss("binary_crossentropy", label_smoothing=0.2), K.BinaryCrossentropy(label_smoothing=0.2), yb, sig),
        (L.Loss("binary_crossentropy", from_logits=True), K.BinaryCrossentropy(from_logits=True), yb, s),
        (L.Loss("mean_squared_error"), K.MeanSquaredError(), yb, s),
        (L.Loss("mean_absolute_error"), K.MeanAbsoluteError(), yb, s),
    ]


def _close(a, b, rel=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.all(np.abs(a - b) <= rel * (1 + np.abs(b)))


def test_losses_match_keras_values_and_gradients():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    for _ in range(3):
        for ours, theirs, y, pred in _loss_cases(rng):
            t = tf.Variable(pred)
            with tf.GradientTape() as tape:
                v = theirs(y, t)
            value, grad = ours.value_and_gradient(y, pred)
            assert _close(value, v.numpy()), ours.name
            assert _close(grad, tape.gradient(v, t).numpy()), ours.name


def test_fused_gradients_match_keras_through_the_activation():
    tf = pytest.importorskip("tensorflow")
    from cnnc.backends.numpy import losses as L
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 4)).astype(np.float32) * 3
    ids = rng.integers(0, 4, 6)
    for ours, theirs, y, act in [
            (L.Loss("categorical_crossentropy", label_smoothing=0.1, output_activation="softmax"),
             keras.losses.CategoricalCrossentropy(label_smoothing=0.1), np.eye(4, dtype=np.float32)[ids],
             keras.activations.softmax),
            (L.Loss("sparse_categorical_crossentropy", output_activation="softmax"),
             keras.losses.SparseCategoricalCrossentropy(), ids, keras.activations.softmax),
            (L.Loss("binary_crossentropy", output_activation="sigmoid"), keras.losses.BinaryCrossentropy(),
             (z > 0.5).astype(np.float32), keras.activations.sigmoid)]:
        t = tf.Variable(z)
        with tf.GradientTape() as tape:
            out = act(t)
            v = theirs(y, out)
        value, grad = ours.value_and_gradient(y, out.numpy())
        assert _close(value, v.numpy()) and _close(grad, tape.gradient(v, t).numpy()), ours.name


@pytest.mark.parametrize("name,kw", [
    ("SGD", {}), ("SGD", {"momentum": 0.9}), ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {"weight_decay": 0.01}), ("SGD", {"clipnorm": 0.5}), ("SGD", {"clipvalue": 0.1}),
    ("SGD", {"global_clipnorm": 0.5}), ("RMSprop", {}), ("RMSprop", {"momentum": 0.5}),
    ("RMSprop", {"centered": True, "momentum": 0.3, "rho": 0.8}), ("Adam", {}),
    ("Adam", {"amsgrad": True}), ("Adam", {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3}),
    ("Adam", {"weight_decay": 0.1, "clipnorm": 1.0}),
])
def test_optimizers_match_keras_over_five_steps(name, kw):
    from cnnc.backends.numpy import optimizers as O
    rng = np.random.default_rng(2)
    shapes = [(3, 4), (4,)]
    start = [rng.normal(size=sh).astype(np.float32) for sh in shapes]
    kvars = [keras.Variable(w.copy()) for w in start]
    theirs = getattr(keras.optimizers, name)(learning_rate=0.05, **kw)
    ours = O.OPTIMIZERS[name](learning_rate=0.05, **kw)
    weights = {f"w{i}": w.copy() for i, w in enumerate(start)}
    for step in range(5):
        grads = [rng.normal(size=sh).astype(np.float32) * (3 if step == 0 else 0.3) for sh in shapes]
        theirs.apply(grads, kvars)
        ours.apply({f"w{i}": g for i, g in enumerate(grads)}, weights)
    assert ours.iterations == int(theirs.iterations.numpy()) == 5
    for i, v in enumerate(kvars):
        assert np.allclose(weights[f"w{i}"], v.numpy(), rtol=1e-5, atol=1e-5)  # float32 rounding


REG_SRC = """model r
input (12, 12, 1)
Conv2D(6, (3, 3), activation='relu', kernel_regularizer=l2(0.01), bias_regularizer='l1')
MaxPooling2D((2, 2))
Flatten()
Dense(16, activation='relu', kernel_regularizer=L1L2(l1=0.001, l2=0.002))
BatchNormalization(gamma_regularizer=l2(0.05), beta_regularizer=L1(0.02))
Dense(4, activation='softmax', kernel_regularizer=keras.regularizers.L2(1e-3), trainable=False)
compile(optimizer=SGD(learning_rate=0.05, momentum=0.9), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
"""


def test_fit_with_regularizers_matches_keras():
    """Penalties in the reported loss (training and validation) and in the updates;
    none for the frozen layer, as in Keras."""
    from keras import layers, regularizers
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (150, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 4, 150)
    ours = cnnc.loads(REG_SRC)
    ours.init_weights(0)
    theirs = keras.Sequential([
        keras.Input((12, 12, 1)),
        layers.Conv2D(6, (3, 3), activation="relu", kernel_regularizer=regularizers.l2(0.01),
                      bias_regularizer="l1"),
        layers.MaxPooling2D((2, 2)), layers.Flatten(),
        layers.Dense(16, activation="relu", kernel_regularizer=regularizers.L1L2(l1=0.001, l2=0.002)),
        layers.BatchNormalization(gamma_regularizer=regularizers.l2(0.05),
                                  beta_regularizer=regularizers.L1(0.02)),
        layers.Dense(4, activation="softmax", kernel_regularizer=regularizers.L2(1e-3), trainable=False)])
    pairs = list(zip(ours.weights, theirs.weights, strict=True))
    for key, w in pairs:
        w.assign(ours.weights[key])
    theirs.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                   loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    kh = theirs.fit(x, y, epochs=2, batch_size=32, shuffle=False, validation_split=0.2, verbose=0)
    h = ours.fit(x, y, epochs=2, batch_size=32, shuffle=False, validation_split=0.2, verbose=0, seed=0)
    for key, w in pairs:
        assert np.allclose(ours.weights[key], w.numpy(), atol=1e-4), key
    for key, values in h.history.items():
        assert np.allclose(values, kh.history[key], atol=1e-5), (key, values, kh.history[key])
    k_eval = theirs.evaluate(x[:40], y[:40], verbose=0, return_dict=True)
    o_eval = ours.evaluate(x[:40], y[:40], verbose=0, return_dict=True)
    assert o_eval["loss"] == pytest.approx(k_eval["loss"], abs=1e-5)
